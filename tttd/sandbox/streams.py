"""Waiting on one run (trusted side): the result pipe read with a cap, stdout/stderr tails read
from pipes (never host files), bubblewrap's namespace init as a pidfd, and moving the run's
processes into its cgroup before any candidate code runs."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time


class _Tail:
    """The last ``cap`` bytes of a stream read from a pipe, and how many were dropped."""

    def __init__(self, cap: int):
        self.cap, self.buf, self.cut = cap, bytearray(), 0

    def read(self, fd: int) -> bool:
        """Read what is available; False at end of file."""
        while True:
            try:
                b = os.read(fd, 1 << 16)
            except BlockingIOError:
                return True
            except OSError:
                return False
            if not b:
                return False
            self.buf += b
            if len(self.buf) > 2 * self.cap:
                drop = len(self.buf) - self.cap
                del self.buf[:drop]
                self.cut += drop

    def text(self) -> tuple[str, int]:
        extra = max(0, len(self.buf) - self.cap)
        return bytes(self.buf[extra:]).decode("utf-8", "replace"), self.cut + extra


def _move_into(group, pid: int) -> None:
    """Put ``pid`` and every descendant into ``group`` (parents first: a child forked meanwhile
    inherits the group or shows up in the listing that follows)."""
    todo, seen = [pid], set()
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        try:
            group.attach(p)
        except ProcessLookupError:
            continue
        except OSError as e:
            if e.errno == 3:  # ESRCH: gone already
                continue
            raise
        try:
            for t in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{t}/children") as f:
                    todo += [int(x) for x in f.read().split()]
        except (OSError, ValueError):
            pass


def _wait_and_read(proc: subprocess.Popen, timeout: float, res_r: int, frame: bytearray, cap: int,
                   tails: dict | None = None) -> tuple[bool, bool]:
    """Wait for ``proc`` at most ``timeout`` s while reading the result pipe into ``frame`` and the
    output pipes into ``tails``. Returns (exited, over_cap); stops early when more than ``cap``
    bytes of result arrive."""
    tails = tails or {}
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        pidfd = None
    poller = select.poll()
    poller.register(res_r, select.POLLIN)
    for fd in tails:
        poller.register(fd, select.POLLIN)
    if pidfd is not None:
        poller.register(pidfd, select.POLLIN)
    end = time.monotonic() + timeout
    pipe_open = True
    try:
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return proc.poll() is not None, False
            events = poller.poll(min(left, 0.05 if pidfd is None else left) * 1000)
            for fd, ev in events:
                if fd == res_r and pipe_open:
                    got = _read_some(res_r, frame, cap)
                    if got is None:
                        return False, True
                    if got == 0 and ev & (select.POLLHUP | select.POLLERR):
                        poller.unregister(res_r)
                        pipe_open = False
                elif fd in tails and not tails[fd].read(fd):
                    poller.unregister(fd)
            if proc.poll() is not None:
                return True, False
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _read_some(fd: int, frame: bytearray, cap: int) -> int | None:
    """Read what is available; None when ``frame`` would exceed ``cap``."""
    total = 0
    while True:
        try:
            b = os.read(fd, 1 << 20)
        except BlockingIOError:
            return total
        if not b:
            return total
        if len(frame) + len(b) > cap:
            return None
        frame += b
        total += len(b)


def _drain(fd: int, frame: bytearray, cap: int) -> bool:
    """Read the rest of the pipe after every writer is gone; True when over ``cap``."""
    return _read_some(fd, frame, cap) is None


def _ns_init_pidfd(info_r: int, out: list | None = None) -> int | None:
    """Read bwrap's ``--info-fd`` JSON ({"child-pid": N}) and return a pidfd for that process (a
    pidfd cannot be fooled by pid reuse). None if bwrap failed before reporting."""
    buf = b""
    try:
        poller = select.poll()
        poller.register(info_r, select.POLLIN)
        end = time.monotonic() + 10
        while time.monotonic() < end and poller.poll(max(0.0, end - time.monotonic()) * 1000):
            chunk = os.read(info_r, 4096)
            if not chunk:
                break
            buf += chunk
            if buf.rstrip().endswith(b"}"):
                break
        pid = int(json.loads(buf)["child-pid"])
        fd = os.pidfd_open(pid)
        if out is not None:
            out.append(pid)
        return fd
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    finally:
        os.close(info_r)


def _end_namespace(pidfd: int | None, alive_w: int | None = None, grace_s: float = 1.0) -> None:
    """End the jail: close ``alive_w`` (the jail's init then kills and reaps every process in the
    namespace itself, so their CPU time is accounted, and exits), wait at most ``grace_s`` for
    that; then SIGKILL the init and wait until it has exited, i.e. until the kernel has killed
    every process in the namespace (daemons included)."""
    if alive_w is not None:
        try:
            os.close(alive_w)
        except OSError:
            pass
    if pidfd is None:
        return
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    if alive_w is not None and poller.poll(grace_s * 1000):
        return
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    poller.poll(10_000)
