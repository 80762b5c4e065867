"""Making the sandbox's strength visible: no weak mode by accident.

:func:`check_isolation` runs before a command writes anything. For a task that executes candidate
code, isolation weaker than full is refused (:class:`IsolationError`: the CLI prints one line and
exits 2) unless the user opted in (``--allow-weak-isolation`` / config ``allow_weak_isolation``);
then one warning line, once per process, names the real cause, and ``TTTD_SANDBOX_ALLOW_WEAK=1``
is set for the runner (which refuses the weak mode without it: library calls and worker processes
never fall back silently either). ``--require-isolation`` refuses
even with the opt-in. Tasks that never execute candidate code (the demo) are not affected.
"""

from __future__ import annotations

import sys
from typing import Callable

DOC_HINT = "docs/sandbox.md"
_warned = False


class IsolationError(ValueError):
    """Full isolation is not available and the user did not opt in (the CLI prints one line, exit 2)."""


def task_runs_code(task_spec: str) -> bool:
    """Whether a task executes candidate code (``Task.runs_code``; unknown factories: yes)."""
    from tttd.registry import task_factory

    try:
        return bool(getattr(task_factory(task_spec), "runs_code", True))
    except Exception:  # an unknown task is reported by the command itself
        return True


#: what the weak mode still allows (docs/sandbox.md lists the same, one line each)
WEAK_ALLOWS = ("without Landlock they read and write what that uid can and see every process's "
               "command line; without Landlock ABI 4 TCP is open, without ABI 6 they can signal this "
               "user's processes; processes they fork can outlive a killed tttd (unix sockets and "
               "UDP are denied)")


def check_isolation(require: bool, warn: Callable[[str], None] | None = None, allow_weak: bool = False,
                    runs_code: bool = True) -> dict:
    """Detect the sandbox (cached) and return its report; refuse or warn as described above."""
    global _warned
    from tttd.sandbox import isolation_report

    rep = isolation_report()
    if rep["full"]:
        return rep
    cause = rep.get("cause") or "; ".join(rep["notes"][:2]) or "missing " + ", ".join(rep["missing"])
    fix = rep.get("fix") or "install bubblewrap"
    if require:  # asked for explicitly: refused whatever the task
        raise IsolationError(f"sandbox isolation is not full ({cause}); refusing to run because "
                             f"require_isolation is set; fix: {fix} ({DOC_HINT})")
    if not runs_code:
        return rep
    if not rep.get("runnable", True):
        raise IsolationError(f"no sandbox mode can run candidate code here ({cause}); fix: {fix} ({DOC_HINT})")
    if not allow_weak:
        raise IsolationError(f"sandbox isolation unavailable: {cause}; fix: {fix}, or pass "
                             f"--allow-weak-isolation to run candidates with weaker isolation ({DOC_HINT})")
    import os

    from tttd.sandbox.runner import WEAK_ENV

    os.environ[WEAK_ENV] = "1"  # the runner (and worker processes) may now run the weak mode
    if not _warned:
        _warned = True
        msg = (f"WARNING: weak sandbox isolation ({cause}): candidates run as this user (or a fresh uid) in the "
               f"host's namespaces: {WEAK_ALLOWS}; fix: {fix} ({DOC_HINT})")
        (warn or (lambda m: print("tttd: " + m, file=sys.stderr)))(msg)
    return rep
