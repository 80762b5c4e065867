"""Making the sandbox's strength visible: the CLI's loud warning and ``--require-isolation``."""

from __future__ import annotations

import sys
from typing import Callable

README_HINT = "see the README section 'Running tttd in Docker or Podman'"


class IsolationError(ValueError):
    """Full isolation was required and is not available (the CLI prints one line, exit 2)."""


def check_isolation(require: bool, warn: Callable[[str], None] | None = None) -> dict:
    """Detect the sandbox (cached) and return its report. When isolation is weaker than full:
    raise :class:`IsolationError` if ``require``, else print a loud warning (stderr)."""
    from tttd.sandbox import isolation_report

    rep = isolation_report()
    if rep["full"]:
        return rep
    missing = ", ".join(rep["missing"])
    why = "; ".join(rep["notes"][:2]) or "see tttd.sandbox.isolation_report()"
    if require:
        raise IsolationError(f"sandbox isolation is weaker than full (missing: {missing}; {why}); "
                             f"refusing to run because require_isolation is set ({README_HINT})")
    msg = (f"WARNING: sandbox isolation is weaker than full: missing {missing} ({why}). Candidate "
           f"programs may read files this user can read, reach the network and host sockets, and "
           f"fill the disk. Install bubblewrap with user namespaces allowed ({README_HINT}); "
           f"--require-isolation refuses to run without it.")
    (warn or (lambda m: print("tttd: " + m, file=sys.stderr)))(msg)
    return rep
