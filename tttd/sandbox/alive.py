"""The alive pipes (trusted side, issue 31): how a jail learns that its run is over.

For each run tttd makes a pipe and keeps the only write end; the jail's init (the harness as pid 1)
watches the read end. End of file means the tttd process is gone, however it died (SIGKILL
included), or that it ended the run: the init then kills and reaps every process of the jail and
exits. :func:`end_all_runs` ends every run in flight at once (a second Ctrl-C / SIGTERM: the
threads waiting on jails must return before the process can exit).
"""

from __future__ import annotations

import os
import threading

_lock = threading.Lock()
_live: set[int] = set()  # the write ends of the runs in flight


def open_pipe() -> tuple[int, int]:
    """(read end for the jail, write end kept here): both close-on-exec, the write end registered."""
    r, w = os.pipe()
    with _lock:
        _live.add(w)
    return r, w


def release(w: int | None) -> None:
    """The run is ending: its write end is no longer one :func:`end_all_runs` may touch."""
    with _lock:
        _live.discard(w)


def end_all_runs() -> int:
    """End every run in flight now: each write end is replaced by /dev/null with ``dup2`` rather
    than closed, so the pipe's last writer goes away (the jail's init sees end of file) while the
    descriptor number stays owned by its run (closed there later, never twice). Returns how many."""
    with _lock:
        fds = sorted(_live)
        if not fds:
            return 0
        null = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
        try:
            for fd in fds:
                try:
                    os.dup2(null, fd, inheritable=False)
                except OSError:
                    pass
        finally:
            os.close(null)
    return len(fds)


def _register_hard_stop() -> None:
    from tttd import signals

    if end_all_runs not in signals.HARD_STOP_HOOKS:
        signals.HARD_STOP_HOOKS.append(end_all_runs)


_register_hard_stop()
