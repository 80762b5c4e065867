"""One process per run directory (issue 24): an exclusive ``flock`` on ``RUN/.lock``.

Two processes writing one run (``tttd resume`` twice, or ``tttd run --out`` into a run that is
being written) would interleave steps in the logs and race on the checkpoint. The lock is taken
before anything is written (run creation, resume) and held until the run ends; the kernel drops
it when the process dies, even by ``kill -9``, so a crashed run never stays locked. A second
process is refused at once with one line (exit 2). Within one process the lock is re-entrant
(per resolved path), so library code may restore and run a directory from several objects.

NFS and other network file systems may not honour ``flock``: the lock then protects nothing
(documented in docs/faults.md).
"""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

from tttd.rundir import NotARunError

LOCK_FILE = ".lock"
_held: dict[str, int] = {}
_guard = threading.Lock()


class RunLockedError(NotARunError):
    """Another process holds the run directory (the CLI prints it as one line, exit 2)."""


def _holder(path: Path) -> str:
    """' (pid N)' of the process holding the lock, read from /proc/locks when possible."""
    try:
        ino = os.stat(path).st_ino
        with open("/proc/locks") as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 6 and parts[1] == "FLOCK" and parts[5].split(":")[-1] == str(ino):
                    return f" (pid {parts[4]})"
    except (OSError, ValueError, IndexError):
        pass
    return ""


def _locked(path: Path, lock: Path) -> RunLockedError:
    return RunLockedError(f"another tttd process{_holder(lock)} is writing {path} (it holds {lock}); "
                          "wait for it to finish or stop it, then `tttd resume` this run")


def acquire(run_dir: str | Path) -> None:
    """Lock ``run_dir`` for this process (creating the directory and its lock file if needed);
    :class:`RunLockedError` when another process holds it."""
    path = Path(run_dir)
    key = str(path.resolve())
    with _guard:
        if key in _held:
            return
        path.mkdir(parents=True, exist_ok=True)
        lock = path / LOCK_FILE
        fd = os.open(lock, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)  # read-only: a disk may still be remounted ro
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise _locked(path, lock) from None
        except OSError:
            os.close(fd)  # a file system without flock: nothing to hold
            return
        _held[key] = fd


def check_free(run_dir: str | Path) -> None:
    """:class:`RunLockedError` when another process holds ``run_dir`` now (checked without keeping
    the lock and without creating anything: for refusals said before a model loads)."""
    path = Path(run_dir)
    lock = path / LOCK_FILE
    if held(path) or not lock.is_file():
        return
    try:
        fd = os.open(lock, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise _locked(path, lock) from None
    except OSError:
        pass  # a file system without flock: nothing to check
    finally:
        os.close(fd)  # closing drops a lock taken here


def release(run_dir: str | Path) -> None:
    """Drop this process's lock on ``run_dir`` (no-op when it holds none)."""
    key = str(Path(run_dir).resolve())
    with _guard:
        fd = _held.pop(key, None)
    if fd is not None:
        os.close(fd)


def held(run_dir: str | Path) -> bool:
    return str(Path(run_dir).resolve()) in _held
