"""Process and file cleanup for tttd.sandbox (trusted side): wait with a pidfd, kill a run's whole
tree, sweep up anything it left behind (by uid, or by session/group/ancestry/env marker), and
remove a run directory whatever the candidate made of it (:func:`remove_tree`)."""

from __future__ import annotations

import os
import signal
import subprocess
import time


class TreePopen(subprocess.Popen):
    """A Popen that keeps the kernel's resource usage of its child when it reaps it (``wait4``):
    the CPU time of that process *and of every descendant it or they reaped*. Under bwrap the
    jail's init is reaped by bwrap, and the init reaps whatever the kernel kills when the pid
    namespace ends, so ``cpu_s`` covers every process of the jail, children the candidate never
    waited for included; the candidate cannot hide from it."""

    rusage = None

    def _wait4(self, pid, flags):
        got, status, ru = os.wait4(pid, flags)
        if got == self.pid and got != 0:
            self.rusage = ru
        return got, status

    def _try_wait(self, wait_flags):
        try:
            return self._wait4(self.pid, wait_flags)
        except ChildProcessError:
            return self.pid, 0

    def _internal_poll(self, _deadstate=None, **_):
        # Popen.poll's logic (its private signature differs between Python versions), reaping
        # through _try_wait, i.e. wait4
        if self.returncode is None:
            if not self._waitpid_lock.acquire(False):
                return None  # another thread is waiting: it will set returncode
            try:
                if self.returncode is not None:
                    return self.returncode
                pid, sts = self._try_wait(os.WNOHANG)
                if pid == self.pid:
                    self._handle_exitstatus(sts)
            except OSError:
                if _deadstate is not None:
                    self.returncode = _deadstate
            finally:
                self._waitpid_lock.release()
        return self.returncode

    @property
    def cpu_s(self) -> float | None:
        return None if self.rusage is None else self.rusage.ru_utime + self.rusage.ru_stime


def _scan_procs(pred):
    """Yield (pid, info) for live processes matching ``pred(info)``; info has uid, ppid, sid, pgid."""
    try:
        pids = [int(d) for d in os.listdir("/proc") if d.isdigit()]
    except OSError:
        return
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                raw = f.read()
            rest = raw[raw.rindex(b")") + 2:].split()
            if rest[0] in (b"Z", b"X"):
                continue
            with open(f"/proc/{pid}/status", "rb") as f:
                uid_line = next(ln for ln in f if ln.startswith(b"Uid:"))
            info = {"pid": pid, "ppid": int(rest[1]), "pgid": int(rest[2]), "sid": int(rest[3]),
                    "uid": int(uid_line.split()[1])}
        except (OSError, ValueError, IndexError, StopIteration):
            continue
        if pred(info):
            yield pid, info


def _uid_procs(uid: int) -> list[int]:
    """Live (non-zombie) processes whose /proc entry belongs to ``uid`` (a stat per process)."""
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.stat("/proc/" + d).st_uid != uid:
                    continue
                with open(f"/proc/{d}/stat", "rb") as f:
                    raw = f.read()
                if raw[raw.rindex(b")") + 2:raw.rindex(b")") + 3] not in (b"Z", b"X"):
                    out.append(int(d))
            except (OSError, ValueError):
                continue
    return out


def _has_token(pid: int, token: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            return token in f.read(1 << 16)
    except OSError:
        return False


def _sweep(root_pid: int, uid: int | None, token: str) -> int:
    """SIGKILL every process of this run still alive; returns how many were found."""
    found = 0
    me = os.getpid()
    tok = f"TTTD_SANDBOX={token}".encode()
    for _ in range(50):
        if uid is not None:
            alive = _uid_procs(uid)
            if alive:  # one kill(-1) as that uid reaches all of them at once, forks included
                subprocess.run(["/bin/sh", "-c", f'[ "$(id -u)" = {uid} ] && kill -9 -1'], user=uid,
                               group=uid, extra_groups=[], stdin=subprocess.DEVNULL, cwd="/",
                               capture_output=True, timeout=10, env={"PATH": "/usr/bin:/bin"})
        else:
            procs = {pid: st for pid, st in _scan_procs(lambda st: st["pid"] != me)}
            tree = {pid for pid, st in procs.items()
                    if st["sid"] == root_pid or st["pgid"] == root_pid or _has_token(pid, tok)}
            grew = True
            while grew:  # descendants of anything in the tree
                new = {pid for pid, st in procs.items() if st["ppid"] in tree} - tree
                grew = bool(new)
                tree |= new
            alive = sorted(tree)
            for pid in alive:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
        if not alive:
            return found
        found += len(alive)
        time.sleep(0.01)
    return found


def sweep_stale_scratch(prefix: str) -> int:
    """Remove this user's run directories (``<tmp>/<prefix><pid>-*``) whose tttd process is gone:
    a run killed with SIGKILL cannot clean up after itself. Returns how many were removed."""
    import re
    import tempfile

    base, n = tempfile.gettempdir(), 0
    try:
        names = os.listdir(base)
    except OSError:
        return 0
    for name in names:
        m = re.fullmatch(re.escape(prefix) + r"(\d+)-[A-Za-z0-9_]+", name)
        if not m or os.path.exists(f"/proc/{m.group(1)}"):
            continue
        path = os.path.join(base, name)
        try:
            st = os.lstat(path)
        except OSError:
            continue
        if st.st_uid == os.geteuid() and not os.path.islink(path) and remove_tree(path):
            n += 1
    return n


def _signal_of(rc: int, bwrap: bool) -> int | None:
    if rc < 0:
        return -rc
    if bwrap and rc > 128 and rc - 128 < 65:  # bwrap reports a child killed by signal N as 128+N
        return rc - 128
    return None


def _kill_tree(proc: subprocess.Popen, bwrap: bool) -> None:
    """SIGKILL the run. Under bwrap, kill the pid namespace's init first: the kernel then kills
    every process in the namespace before bwrap sees its child exit, so once bwrap has exited
    nothing is left (killing bwrap itself would leave that teardown asynchronous)."""
    if bwrap and proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
                kids = [int(x) for x in f.read().split()]
            for k in kids:
                os.kill(k, signal.SIGKILL)
            if kids:
                proc.wait(timeout=5)
        except (OSError, ValueError, subprocess.TimeoutExpired):
            pass
    _kill_group(proc)


def _kill_group(proc: subprocess.Popen) -> None:
    for fn in (lambda: os.killpg(proc.pid, signal.SIGKILL), proc.kill):
        try:
            fn()
        except OSError:
            pass


def _signame(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return str(sig)


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _open_dir(name: str, dir_fd: int | None) -> int:
    """Open a directory (never through a symlink), making it readable/searchable first if needed."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except PermissionError:
        pfd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            os.chmod(f"/proc/self/fd/{pfd}", 0o700)  # the inode itself: a symlink cannot redirect it
        finally:
            os.close(pfd)
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)


def remove_tree(path: str) -> bool:
    """Delete ``path`` and everything below it; True when it is gone. Iterative (any depth: one
    directory fd open at a time, names kept on a heap-allocated stack), never follows symlinks,
    restores permissions a candidate removed, and never raises (a failure leaves the path and
    returns False; callers report it)."""
    try:
        os.lstat(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    try:
        _remove_tree(path)
    except OSError:
        pass
    return not os.path.lexists(path)


def _remove_tree(path: str) -> None:
    try:
        top = _open_dir(path, None)
    except NotADirectoryError:
        os.unlink(path)
        return
    except OSError:
        if os.path.islink(path) or not os.path.isdir(path):
            os.unlink(path)
            return
        raise
    fd = top
    stack: list[tuple[str, list[str]]] = []  # (name of the directory fd is in, its pending subdirs)
    pending = _clear_files(fd)
    try:
        while True:
            if pending:
                name = pending.pop()
                try:
                    child = _open_dir(name, fd)
                except (NotADirectoryError, OSError):
                    _unlink_any(name, fd)
                    continue
                stack.append((name, pending))
                os.close(fd)
                fd = child
                pending = _clear_files(fd)
                continue
            if not stack:
                break
            name, pending = stack.pop()
            up = os.open("..", _DIR_FLAGS & ~os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = up
            os.rmdir(name, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(path)


def _clear_files(fd: int) -> list[str]:
    """Unlink every non-directory in the directory ``fd``; return the names of its subdirectories."""
    dirs = []
    if os.fstat(fd).st_mode & 0o300 != 0o300:
        os.chmod(f"/proc/self/fd/{fd}", 0o700)
    with os.scandir(fd) as it:
        entries = list(it)
    for e in entries:
        try:
            is_dir = e.is_dir(follow_symlinks=False)
        except OSError:
            is_dir = False
        if is_dir:
            dirs.append(e.name)
        else:
            _unlink_any(e.name, fd)
    return dirs


def _unlink_any(name: str, fd: int) -> None:
    try:
        os.unlink(name, dir_fd=fd)
    except IsADirectoryError:
        pass
    except FileNotFoundError:
        pass
