"""Python subprocesses that never import from the current directory (issue 36).

``python -m MODULE`` and ``python -c CODE`` put the current directory first on ``sys.path``: a user
who clones tttd into ``~/tttd`` and works from ``~`` then imports that folder (a namespace package
with no ``__version__``) instead of the installed tttd, and a folder named ``psutil`` or ``pip``
shadows those. Every Python subprocess tttd starts for itself uses :func:`python_argv`:
``-P`` (Python 3.11+: no unsafe path is prepended), or on 3.10 a ``-c`` prologue that drops the
current directory's entry before running the module (the explicit form of the same thing).
"""

from __future__ import annotations

import sys

#: Python 3.10 has no ``-P``: run the module with sys.path[0] ('' for -c) removed first.
_RUN_MODULE = ("import sys; del sys.path[0]; import runpy; "
               "runpy.run_module({module!r}, run_name='__main__', alter_sys=True)")


def python_argv(module: str | None = None, code: str | None = None, executable: str | None = None) -> list[str]:
    """argv for ``python -m module`` (or ``python -c code``) without the current directory on
    ``sys.path``; arguments follow the returned list."""
    exe = executable or sys.executable
    if (module is None) == (code is None):
        raise ValueError("give exactly one of module and code")
    if sys.version_info >= (3, 11):
        return [exe, "-P", "-m", module] if module is not None else [exe, "-P", "-c", code]
    if module is not None:
        return [exe, "-c", _RUN_MODULE.format(module=module)]
    return [exe, "-c", "import sys; del sys.path[0]\n" + code]
