"""A memory + pids cgroup per run (trusted side): the cap on the candidate's *total* memory.

RLIMIT_AS bounds one process's address space; it does not see System V shared memory that is not
mapped, pages written into a memfd, tmpfs pages, or the sum over a process tree. A cgroup does: the
kernel charges every page a process faults in (anonymous, shmem, memfd, tmpfs, page cache) to its
memory cgroup, and kills inside the group when the limit is reached.

Where the parent may create one:

- **cgroup v2** with the ``memory`` and ``pids`` controllers: as root under the hierarchy's root
  (``<mount>/tttd-<uid>/run-<random>``; the root cgroup is exempt from the "no internal processes"
  rule), otherwise under a directory this user may write that delegates both controllers (e.g.
  systemd's ``user@UID.service``); ``memory.max``, ``memory.swap.max = 0``, ``pids.max``,
  ``memory.oom.group = 1``; ``cgroup.kill`` ends the run.
- **cgroup v1** (hybrid hosts, many containers): a child of this process's own ``memory`` and
  ``pids`` cgroups (``memory.limit_in_bytes`` and ``memory.memsw.limit_in_bytes`` when swap
  accounting exists, ``pids.max``).

The run's processes are moved in before any candidate code runs: the harness waits for its
configuration on stdin, which the parent writes only after the move (see ``runner._execute``).
Nothing works (no writable hierarchy with both controllers): :func:`detect` says why, the
protections list has no ``memory_cgroup``, and the runner denies memfd (seccomp) so at least
those pages cannot escape RLIMIT_AS/RLIMIT_FSIZE.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Hierarchy:
    version: int  # 2 or 1
    memory: str  # directory under which run cgroups are made (v2: memory and pids together)
    pids: str = ""  # v1 only: the pids hierarchy's directory


def _mounts() -> list[tuple[str, str, set[str]]]:
    out = []
    try:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                pre, _, post = line.partition(" - ")
                fields, post_f = pre.split(), post.split()
                if len(fields) > 4 and len(post_f) >= 3:
                    out.append((post_f[0], fields[4], set(post_f[2].split(","))))
    except OSError:
        pass
    return out


def _own(controller: str | None) -> str:
    """This process's cgroup path in the v2 hierarchy (None) or the v1 hierarchy of ``controller``."""
    try:
        with open("/proc/self/cgroup") as f:
            for line in f:
                _, names, path = line.rstrip("\n").split(":", 2)
                if (controller is None and names == "") or (controller and controller in names.split(",")):
                    return path
    except (OSError, ValueError):
        pass
    return "/"


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _v2_base(mount: str) -> str | None:
    """A directory with memory+pids delegated to its children, writable by us, made if needed."""
    tops = [mount] if os.geteuid() == 0 else []
    own = os.path.join(mount, _own(None).lstrip("/"))
    tops += [os.path.dirname(own)] if own != mount else []
    for top in tops:
        try:
            if not {"memory", "pids"} <= set(_read(os.path.join(top, "cgroup.controllers")).split()):
                continue
            if not os.access(top, os.W_OK):
                continue
            sub = set(_read(os.path.join(top, "cgroup.subtree_control")).split())
            if not {"memory", "pids"} <= sub:
                _write(os.path.join(top, "cgroup.subtree_control"), "+memory +pids")
            base = os.path.join(top, f"tttd-{os.geteuid()}")
            os.makedirs(base, exist_ok=True)
            sub = set(_read(os.path.join(base, "cgroup.subtree_control")).split())
            if not {"memory", "pids"} <= sub:
                _write(os.path.join(base, "cgroup.subtree_control"), "+memory +pids")
            return base
        except OSError:
            continue
    return None


def detect() -> tuple[Hierarchy | None, str]:
    """The hierarchy run cgroups go into, or (None, why not). Tried for real: a test cgroup is
    made, limited and removed."""
    if os.environ.get("TTTD_SANDBOX_CGROUP", "1") == "0":
        return None, "memory cgroup disabled by TTTD_SANDBOX_CGROUP=0"
    mounts = _mounts()
    why = "no cgroup hierarchy with the memory and pids controllers is writable by this user"
    for fstype, mnt, _ in mounts:
        if fstype == "cgroup2":
            base = _v2_base(mnt)
            if base:
                h = Hierarchy(2, base)
                if _try(h):
                    return h, ""
    v1 = {c: mnt for fstype, mnt, opts in mounts if fstype == "cgroup" for c in ("memory", "pids") if c in opts}
    if "memory" in v1 and "pids" in v1:
        h = Hierarchy(1, os.path.join(v1["memory"], _own("memory").lstrip("/")),
                      os.path.join(v1["pids"], _own("pids").lstrip("/")))
        if _try(h):
            return h, ""
    return None, why


def _sweep_stale(h: Hierarchy) -> None:
    """Remove the run cgroups of tttd processes that died (SIGKILL) before removing them, killing
    whatever is still inside (a jail left by an older tttd)."""
    import re

    for base in filter(None, (h.memory, h.pids)):
        try:
            names = os.listdir(base)
        except OSError:
            continue
        for n in names:
            m = re.fullmatch(r"run-(\d+)-[0-9a-f]{8}", n)
            if m and not os.path.exists(f"/proc/{m.group(1)}"):
                RunCgroup(h, [os.path.join(base, n)]).remove()


def _try(h: Hierarchy) -> bool:
    _sweep_stale(h)
    try:
        g = RunCgroup.create(h, 64 << 20, 8)
    except OSError:
        return False
    g.remove()
    return True


class RunCgroup:
    """One run's cgroup (both hierarchies in v1)."""

    def __init__(self, h: Hierarchy, dirs: list[str]):
        self.h, self.dirs = h, dirs

    @classmethod
    def create(cls, h: Hierarchy, memory_bytes: int | None, pids: int) -> "RunCgroup":
        """A new run cgroup; ``memory_bytes`` None: no memory limit (GPU evaluations)."""
        name = f"run-{os.getpid()}-{secrets.token_hex(4)}"
        dirs: list[str] = []
        try:
            if h.version == 2:
                d = os.path.join(h.memory, name)
                os.mkdir(d)
                dirs.append(d)
                if memory_bytes is not None:
                    _write(os.path.join(d, "memory.max"), str(memory_bytes))
                for fname, val in (("memory.swap.max", "0" if memory_bytes is not None else "max"),
                                   ("memory.oom.group", "1")):
                    try:
                        _write(os.path.join(d, fname), val)
                    except OSError:
                        pass
                _write(os.path.join(d, "pids.max"), str(pids))
            else:
                m, p = os.path.join(h.memory, name), os.path.join(h.pids, name)
                os.mkdir(m)
                dirs.append(m)
                os.mkdir(p)
                dirs.append(p)
                if memory_bytes is not None:
                    _write(os.path.join(m, "memory.limit_in_bytes"), str(memory_bytes))
                if memory_bytes is not None and os.path.exists(os.path.join(m, "memory.memsw.limit_in_bytes")):
                    _write(os.path.join(m, "memory.memsw.limit_in_bytes"), str(memory_bytes))
                _write(os.path.join(p, "pids.max"), str(pids))
        except OSError:
            cls(h, dirs).remove()
            raise
        return cls(h, dirs)

    def attach(self, pid: int) -> None:
        for d in self.dirs:
            _write(os.path.join(d, "cgroup.procs"), str(pid))

    def oom_killed(self) -> bool:
        """Did the kernel kill in this group because of the memory limit?"""
        d = self.dirs[0]
        try:
            name = "memory.events" if self.h.version == 2 else "memory.oom_control"
            for line in _read(os.path.join(d, name)).splitlines():
                k, _, v = line.partition(" ")
                if k in ("oom_kill", "oom_group_kill") and int(v or 0) > 0:
                    return True
        except (OSError, ValueError):
            pass
        return False

    def procs(self) -> list[int]:
        out: list[int] = []
        for d in self.dirs:
            try:
                out += [int(x) for x in _read(os.path.join(d, "cgroup.procs")).split()]
            except (OSError, ValueError):
                pass
        return sorted(set(out))

    def kill(self) -> None:
        """SIGKILL everything in the group (cgroup.kill on v2; one by one on v1)."""
        if self.h.version == 2:
            try:
                _write(os.path.join(self.dirs[0], "cgroup.kill"), "1")
                return
            except OSError:
                pass
        import signal

        for pid in self.procs():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def remove(self) -> bool:
        """Remove the group (killing what is left); True when gone."""
        ok = True
        for d in reversed(self.dirs):
            for i in range(200):
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    if i % 20 == 0:
                        self.kill()
                    time.sleep(0.005)
            else:
                ok = False
        return ok
