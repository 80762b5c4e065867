"""Faults a long run meets that are nobody's bug: a full or read-only disk, a vanished run
directory, lost evaluation workers (issue 24). docs/faults.md says, per fault, what tttd does and
what the user should do.

Every fault here stops the run the same way: the step in flight is abandoned (nothing of it is
committed; :mod:`tttd.rundir`'s commit protocol makes that safe at any point), the run directory
stays resumable at the last completed step, and the CLI prints one line and exits non-zero
(:attr:`RunFault.exit_code`). ``tttd resume`` then repeats the abandoned step exactly.

Infrastructure failures of an evaluation (a Ray worker or node that died, a jail killed from
outside, an executor that could not run the program) are not the candidate's fault: they are
retried (:data:`INFRA_RETRIES` times) and never scored. Turning them into the task's failure
reward would teach the policy that a good program is bad; when the retries are spent the step
stops instead (:class:`InfrastructureError`).
"""

from __future__ import annotations

import errno
import os
import signal
import shutil
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable

#: Sandbox status of an evaluation lost to the infrastructure (see :func:`is_infrastructure`).
LOST = "lost"
#: How many times one lost evaluation is started again before the step stops.
INFRA_RETRIES = int(os.environ.get("TTTD_INFRA_RETRIES", "2"))

_DISK_ERRNOS = {errno.ENOSPC: "full", errno.EDQUOT: "full", errno.EROFS: "read-only",
                errno.ENOENT: "vanished", errno.EIO: "failing", errno.ESTALE: "vanished"}


class RunFault(Exception):
    """A fault that stopped the run at a safe point; ``str(exc)`` is the one line to print."""

    exit_code = 1


class DiskFault(RunFault):
    """The run directory cannot be written (full, read-only, vanished, I/O errors)."""


class InfrastructureError(RunFault):
    """Evaluations kept failing for reasons outside the candidate (after bounded retries)."""


# ------------------------------------------------------------------------------ the disk


def _mount_of(path: Path) -> Path:
    p = path.resolve() if path.exists() else path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    while not os.path.ismount(p) and p != p.parent:
        p = p.parent
    return p


def _errno_in_chain(exc: BaseException | None) -> int | None:
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, OSError) and exc.errno in _DISK_ERRNOS:
            return exc.errno
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def _probe(path: Path, nbytes: int = 256 * 1024) -> int | None:
    """Try to write (then remove) ``nbytes`` in ``path``: the errno that stops it, or None."""
    probe = path / f".tttd-probe-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as exc:
        return exc.errno
    try:
        os.write(fd, b"\0" * nbytes)
        os.fsync(fd)
        return None
    except OSError as exc:
        return exc.errno
    finally:
        os.close(fd)
        try:
            os.unlink(probe)
        except OSError:
            pass


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


def disk_fault(exc: BaseException, run_dir: str | Path, step: int, committed: bool = False) -> DiskFault | None:
    """The :class:`DiskFault` behind ``exc`` (raised while step ``step`` ran or committed), or None
    when the run directory is writable and ``exc`` is something else.

    Libraries do not always keep the errno (torch's writer reports a full disk as "unexpected
    pos ..."), so the run directory is probed too: gone, read-only, or unable to take 256 KiB."""
    path = Path(run_dir)
    code = _errno_in_chain(exc)
    if not (path / "config.json").exists():
        code = errno.ENOENT
    elif code is None or code == errno.ENOENT:
        code = _probe(path)
        if code not in _DISK_ERRNOS:
            return None
    mount = _mount_of(path)
    kind = _DISK_ERRNOS[code]
    where = f"the run directory {path}"
    if kind == "vanished":
        return DiskFault(f"{where} vanished (deleted or unmounted) during step {step}; nothing more "
                         "can be saved. Restore it (or its disk) and run `tttd resume` on it")
    try:
        usage = shutil.disk_usage(mount)
        free = f", {_size(usage.free)} free of {_size(usage.total)}"
    except OSError:
        free = ""
    what = {"full": f"the disk holding it ({mount}{free}) is full (ENOSPC)",
            "read-only": f"its disk ({mount}) is read-only (EROFS)",
            "failing": f"its disk ({mount}) reports I/O errors (EIO)"}[kind]
    fix = {"full": "free space", "read-only": "make it writable", "failing": "check the disk"}[kind]
    kept = (f"step {step} was committed before it" if committed else
            f"step {step} was not committed and the run stops at its last completed step")
    return DiskFault(f"cannot write {where}: {what}; {kept}. {fix[0].upper() + fix[1:]}, then "
                     f"`tttd resume {path}` continues exactly")


def discard_uncommitted(run_dir: str | Path, step: int) -> None:
    """Remove step ``step``'s half-written checkpoint (frees its space; resume would anyway)."""
    tmp = Path(run_dir) / "checkpoint" / f"step-{step:06d}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------------------ lost evaluations


def is_infrastructure(result: Any) -> bool:
    """Whether a sandbox result failed for reasons outside the candidate.

    ``lost`` (the executor's worker or node died, or the jail was killed from outside) and a
    sandbox that could not be set up before the candidate ran. A candidate's own crash, timeout,
    memory or output is never infrastructure."""
    status = getattr(result, "status", None)
    if status == LOST:
        return True
    return status == "error" and str(getattr(result, "message", "")).startswith(
        ("executor failure:", "sandbox setup failed"))


class RetryingSubmit:
    """``submit(program) -> Future[SandboxResult]`` that starts a program again when its result
    is an infrastructure failure (at most ``retries`` times). A result still lost after that is
    returned as it is and remembered in :attr:`exhausted`; the loop then stops the step."""

    def __init__(self, submit: Callable[[Any], Future], retries: int = INFRA_RETRIES,
                 on_result: Callable[[Any, Any], None] | None = None):
        self._submit = submit
        self._on_result = on_result  # (result, program): every attempt, for the spend ledger
        self.retries = int(retries)
        self.retried = 0
        self.exhausted: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, program: Any) -> Future:
        out: Future = Future()
        self._start(program, out, 0)
        return out

    def _start(self, program: Any, out: Future, attempt: int) -> None:
        try:
            inner = self._submit(program)
        except Exception as exc:  # noqa: BLE001 - the executor could not even take it
            from tttd.types import SandboxResult

            self._done(program, out, attempt, SandboxResult(status=LOST, message=f"executor failure: {exc}"))
            return
        inner.add_done_callback(lambda f: self._done(program, out, attempt, f.result()))

    def _done(self, program: Any, out: Future, attempt: int, result: Any) -> None:
        if self._on_result is not None:
            self._on_result(result, program)
        if is_infrastructure(result):
            if attempt < self.retries:
                with self._lock:
                    self.retried += 1
                self._start(program, out, attempt + 1)
                return
            with self._lock:
                self.exhausted.append(str(getattr(result, "message", "")) or str(result.status))
        out.set_result(result)

    def take_retried(self) -> int:
        with self._lock:
            got, self.retried = self.retried, 0
        return got

    def take_exhausted(self) -> list[str]:
        with self._lock:
            got, self.exhausted = self.exhausted, []
        return got


def infrastructure_error(messages: list[str], step: int, run_dir: str | Path, retries: int) -> InfrastructureError:
    first = messages[0][:200] if messages else "unknown"
    return InfrastructureError(
        f"{len(messages)} evaluation(s) of step {step} failed for reasons outside the candidate "
        f"{retries + 1} times ({first}); the step was not committed (nothing was scored or trained "
        f"on). Check the executor (workers, nodes, memory), then `tttd resume {run_dir}` continues exactly")


class FaultInjected(RuntimeError):
    pass


def fault_point(point: str, step: int) -> None:
    """Fault injection for the crash-recovery tests; a no-op unless ``TTTD_FAULT`` is set.

    ``TTTD_FAULT=POINT:STEP`` sends SIGKILL to this process when the loop reaches POINT (sample,
    evaluate, train, checkpoint, commit) in STEP; ``POINT:STEP:raise`` raises FaultInjected.
    """
    spec = os.environ.get("TTTD_FAULT")
    if not spec:
        return
    where, at, *mode = spec.split(":")
    if where == point and int(at) == step:
        if mode == ["raise"]:
            raise FaultInjected(f"fault injected at {point} of step {step}")
        os.kill(os.getpid(), signal.SIGKILL)
