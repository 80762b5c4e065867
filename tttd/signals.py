"""Ctrl-C and SIGTERM stop a run at a safe point (issue 24).

The first SIGINT or SIGTERM (a terminal's Ctrl-C, a cluster scheduler's preemption) asks the run
to stop after the step in flight commits: :func:`requested` names the signal, the loop checks it
at each step boundary and raises :class:`Stopped`. A second signal stops at once
(:class:`HardStop`, a BaseException like KeyboardInterrupt): the step in flight is abandoned,
which the commit protocol makes as safe as ``kill -9`` (it is repeated on resume). Outside the
steps (loading a model, restoring a checkpoint) the first signal already stops at once: there is
no step to finish.

Handlers are installed only from the main thread and restored on exit; nested uses share one
installation. In any other thread :func:`handling` does nothing and the process keeps Python's
defaults.
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from typing import Iterator

from tttd.faults import RunFault

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(RunFault):
    """The run stopped at a step boundary after a signal (one line; exit 128 + signal)."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + int(signum)


class HardStop(BaseException):
    """A second signal (or a first one outside the steps): stop now."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)
        self.exit_code = 128 + int(signum)


class _State:
    depth = 0
    saved: dict[int, object] = {}
    requested: int | None = None
    in_steps = False
    notice = False  # print a notice at the first signal


#: called (in the main thread, from the handler) before :class:`HardStop` is raised: work still
#: running in other threads must end now, or the process would wait for it before exiting (the
#: sandbox registers :func:`tttd.sandbox.alive.end_all_runs`, issue 31)
HARD_STOP_HOOKS: list = []


def _handler(signum: int, _frame) -> None:
    if _State.requested is not None or not _State.in_steps:
        _State.requested = signum
        for hook in list(HARD_STOP_HOOKS):
            try:
                hook()
            except Exception:
                pass
        raise HardStop(signum)
    _State.requested = signum
    if _State.notice:  # os.write: a handler must not re-enter a buffered stream being written
        try:
            os.write(2, f"tttd: {signal.Signals(signum).name} received: stopping after the step in "
                        "flight commits (send it again to stop at once)\n".encode())
        except OSError:
            pass


@contextmanager
def handling(notice: bool | None = None) -> Iterator[None]:
    """Install the two-stage handlers for SIGINT and SIGTERM while the block runs; ``notice``:
    say on stderr, at the first signal, that the run stops after the step in flight."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if _State.depth == 0:
        _State.requested = None
        _State.saved = {s: signal.signal(s, _handler) for s in SIGNALS}
    own_notice = notice is not None and _State.depth == 0
    if own_notice:
        _State.notice = bool(notice)
    _State.depth += 1
    try:
        yield
    finally:
        _State.depth -= 1
        if own_notice:
            _State.notice = False
        if _State.depth == 0:
            for s, old in _State.saved.items():
                signal.signal(s, old)
            _State.saved = {}
            _State.requested = None


@contextmanager
def steps() -> Iterator[None]:
    """Mark the loop's steps: inside, a first signal waits for the step boundary."""
    before = _State.in_steps
    _State.in_steps = True
    try:
        yield
    finally:
        _State.in_steps = before


def requested() -> int | None:
    """The signal that asked the run to stop, or None."""
    return _State.requested


def stop_message(signum: int, next_step: int, run_dir: str) -> str:
    name = signal.Signals(signum).name
    # next_step (0-based) is the number of committed steps: the person-facing number of the last
    # one, as the progress line counts (issue 32: it said one less)
    return f"stopped by {name} after step {next_step} (committed); continue with: tttd resume {run_dir}"


def stopped_at_once(exc: BaseException, run_dir: str) -> Stopped:
    """The :class:`Stopped` to report for a :class:`HardStop` (or a stray KeyboardInterrupt)."""
    from pathlib import Path

    signum = getattr(exc, "signum", signal.SIGINT)
    name = signal.Signals(signum).name
    if not (Path(run_dir) / "config.json").exists():
        return Stopped(f"stopped at once by {name} before the run started; nothing was written", signum)
    return Stopped(f"stopped at once by {name}; the step in flight was abandoned (it is repeated on "
                   f"resume) and the last completed step is kept: tttd resume {run_dir}", signum)
