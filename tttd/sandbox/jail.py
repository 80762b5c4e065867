"""The jail's policy (trusted side): what the candidate sees and may do under bubblewrap.

- **Allow-list filesystem view.** The jail's root is an empty read-only tmpfs. Bound read-only into
  it, at their host paths: the system directories (``/usr``, ``/bin``, ``/sbin``, ``/lib*``; as
  symlinks where the host has symlinks), a copy of a short list of world-readable ``/etc`` entries
  needed to run programs (dynamic-linker cache, alternatives, time zone, name-service config, TLS
  roots; made once per process, see :func:`etc_view`; ``passwd`` and ``group`` name only root
  and nobody), the interpreter's prefix and base prefix, the directories of ``sys.path`` in use (stdlib, site-packages), and the
  task's ``limits.toolchain`` paths, each also at its real path (symlinked venvs); one under /tmp
  or /dev/shm (a venv under /tmp) is staged at ``/.tttd/b/N`` and bound back at its own path by
  the harness once the capped tmpfs covers /tmp. Nothing else: no ``$HOME``, ``/root``, ``/home``, ``/work``,
  ``/srv``, ``/var``, ``/run``, ``/mnt``, ``/opt``, ``/tmp`` of the host, no run directory and no
  project checkout. If the parent's home, working directory or the project checkout lies *inside*
  one of the bound directories (e.g. a checkout in ``/usr/src/app``), an empty read-only tmpfs is
  mounted over it. The harness file is bound read-only at ``/.tttd``; the run's inputs come on
  the harness's stdin (over 1 MiB: a read-only directory ``/.tttd/in``).
- **Writable space**: one tmpfs (mounted by the harness before the candidate runs) capped in bytes
  (``limits.disk_mb``) and inodes (``limits.inodes``), seen as the working directory
  ``/sandbox``, ``/tmp`` and ``/dev/shm``. Nothing else is writable.
- **Namespaces**: own pid, ipc, uts, cgroup (when possible), mount, and network (unless
  ``limits.network``) namespaces; inside, the seccomp filter forbids new namespaces and mounts.
  ``--as-pid-1``: the namespace's init is the harness itself, not dumpable, so no candidate
  process can ptrace it or open its /proc memory or environment (bwrap's own init would run with
  the candidate's uid and no filter in the user-namespace case).
- **Capabilities**: none for the candidate. As root, bubblewrap keeps only what the harness needs
  to mount the tmpfs and switch to a fresh uid, and the switch drops them all; as a normal user
  (user namespace, uid 0 inside) the harness locks root's special rules off (securebits), empties
  the bounding set and clears every capability before the candidate runs.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import threading
from dataclasses import dataclass, field

from tttd.types import Limits

WORKDIR = "/sandbox"  # the candidate's working directory inside the jail
TTTD_DIR = "/.tttd"  # harness + inputs (read-only) and the tmpfs mount point
HARNESS_IN_JAIL = TTTD_DIR + "/harness.py"
IN_DIR_IN_JAIL = TTTD_DIR + "/in"
TMPFS_IN_JAIL = TTTD_DIR + "/w"
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
ETC_ALLOW = ("ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "localtime", "timezone",
             "nsswitch.conf", "host.conf", "hosts", "gai.conf", "protocols", "services", "ssl",
             "ca-certificates", "pki", "os-release", "mime.types", "gcc", "bash.bashrc", "profile")
HIDE_ENV = "TTTD_SANDBOX_HIDE"  # extra host paths (os.pathsep-separated) masked if inside a bound dir

# Protections that together make "full" isolation (what --require-isolation demands).
FULL_ISOLATION = ("bwrap", "allowlist_fs", "capped_writable", "no_namespaces", "no_caps",
                  "pid_namespace", "ipc_namespace", "no_network", "private_tmp", "own_uid_or_userns",
                  "no_ptrace", "init_unreachable", "output_pipes")


@dataclass(frozen=True)
class Platform:
    """What isolation works on this machine (detected once per process, see ``platform_info``)."""

    bwrap: str | None  # path of a working bubblewrap, or None
    root: bool  # the parent runs as root
    separate_uid: bool  # the candidate runs under a fresh uid (root parent)
    seccomp: bool = False  # the seccomp filter is installed (no namespaces / mounts inside)
    disable_userns: bool = False  # --disable-userns too (never chosen by detection: see tttd.sandbox)
    notes: tuple[str, ...] = field(default=())  # why something is weaker than full
    bwrap_source: str = ""  # "system" | "bundled" | "path": which bubblewrap (tttd.sandbox.bwrap)
    cgroup: object = None  # tttd.sandbox.cgroup.Hierarchy when a memory+pids cgroup per run works
    landlock: int = 0  # Landlock ABI used in the weak mode (0: not used)
    runnable: bool = True  # False: no mode works here; nothing is run (check_isolation says why)
    cause: str = ""  # why isolation is not full: the real cause, one clause
    fix: str = ""  # what the user can do about it, one clause

    def seccomp_extra(self, limits: Limits, gpu: bool = False) -> tuple[str, ...]:
        """Calls the seccomp filter denies on top of its base list for a run with ``limits``."""
        from tttd.sandbox import seccomp

        extra: tuple[str, ...] = ()
        if not self.memory_capped(gpu):
            extra += seccomp.MEMFD
        if not self.bwrap:
            extra += seccomp.HOST_IPC
        return extra

    def seccomp_sockets(self, limits: Limits) -> str | None:
        """The weak mode's socket policy (:func:`tttd.sandbox.seccomp.build_filter`): it shares the
        host's network and unix sockets, so no AF_UNIX and, without ``limits.network``, TCP only."""
        if self.bwrap:
            return None
        return "no_unix" if limits.network else "tcp_only"

    def memory_capped(self, gpu: bool = False) -> bool:
        return self.cgroup is not None and not gpu


def needed_paths(toolchain: tuple[str, ...] = ()) -> list[str]:
    """Host directories bound read-only at their own path (outside the system directories)."""
    cands = {sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable)),
             os.path.dirname(os.path.abspath(sys.executable))}
    cands |= set(site_paths())
    cands |= {os.path.normpath(p) for p in toolchain}
    cands |= {os.path.realpath(p) for p in cands}  # symlinked venvs/prefixes: both paths resolve inside
    cands = {os.path.normpath(p) for p in cands if os.path.exists(p)}
    cands = {p for p in cands if not _under(p, SYSTEM_DIRS)}
    return sorted(p for p in cands if not any(p.startswith(q + "/") for q in cands))


def site_paths() -> list[str]:
    """The parent's package directories (site-/dist-packages) in ``sys.path``; the harness runs
    with ``-I -S`` and gets exactly these (never the project checkout or ``PYTHONPATH``)."""
    return [p for p in sys.path if os.path.isabs(p) and ("site-packages" in p or "dist-packages" in p)]


def _under(p: str, roots) -> bool:
    return any(p == r or p.startswith(r.rstrip("/") + "/") for r in roots)


def sensitive_paths() -> list[str]:
    """Host paths that must never be visible even when they lie inside a bound directory."""
    # the folder holding the tttd package (the checkout): this file is tttd/sandbox/jail.py
    checkout = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = {os.path.expanduser("~"), os.getcwd(), checkout}
    out |= {p for p in os.environ.get(HIDE_ENV, "").split(os.pathsep) if os.path.isabs(p)}
    return sorted(os.path.normpath(p) for p in out if p and p != "/")


PASSWD = {"passwd": "root:x:0:0:root:/sandbox:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n",
          "group": "root:x:0:\nnogroup:x:65534:\n"}
_etc_dir: str | None = None
_etc_lock = threading.Lock()


def etc_view() -> str:
    """A copy of the allowed ``/etc`` entries (``ETC_ALLOW``; only what every user may read: files
    o+r, directories o+rx, symlinks as symlinks), bound read-only as the jail's ``/etc`` (one mount
    instead of one per entry). ``passwd`` and ``group`` name only root and nobody (the fresh uid of
    a root parent has no entry, as before). Cached in the temporary directory as
    ``tttd-etc-<uid>-<digest of the sources>`` and shared by this user's processes (a process
    killed with SIGKILL leaves nothing new behind); used only when owned by this user, not a
    symlink and not writable by others, else rebuilt."""
    global _etc_dir
    with _etc_lock:
        if _etc_dir is not None and _trusted_dir(_etc_dir):
            return _etc_dir
        import hashlib
        import tempfile

        from tttd.sandbox.processes import remove_tree

        h = hashlib.sha256(repr(sorted(PASSWD.items())).encode())
        for name in ETC_ALLOW:
            try:
                st = os.lstat(os.path.join("/etc", name))
                h.update(f"{name}:{st.st_mode}:{st.st_size}:{st.st_mtime_ns};".encode())
            except OSError:
                h.update(f"{name}:-;".encode())
        base = tempfile.gettempdir()
        path = os.path.join(base, f"tttd-etc-{os.geteuid()}-{h.hexdigest()[:16]}")
        if not _trusted_dir(path):
            tmp = tempfile.mkdtemp(prefix="tttd-etc-tmp-", dir=base)
            for name in ETC_ALLOW:
                _copy_public(os.path.join("/etc", name), os.path.join(tmp, name))
            for name, text in PASSWD.items():
                with open(os.path.join(tmp, name), "w") as f:
                    f.write(text)
                os.chmod(os.path.join(tmp, name), 0o644)
            open(os.path.join(tmp, ".complete"), "w").close()
            os.chmod(tmp, 0o755)
            try:
                os.rename(tmp, path)  # atomic; fails if another process made it first
            except OSError:
                if _trusted_dir(path):
                    remove_tree(tmp)
                else:  # taken by something not to be trusted: use our private copy
                    path = tmp
        _etc_dir = path
        return path


def _trusted_dir(path: str) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return (stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o022
            and os.path.exists(os.path.join(path, ".complete")))


def _copy_public(src: str, dst: str, depth: int = 0) -> None:
    try:
        st = os.lstat(src)
    except OSError:
        return
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(src), dst)
    elif stat.S_ISREG(st.st_mode) and st.st_mode & 0o004:
        shutil.copyfile(src, dst)
        os.chmod(dst, 0o644)
    elif stat.S_ISDIR(st.st_mode) and st.st_mode & 0o005 == 0o005 and depth < 8:
        os.mkdir(dst, 0o755)
        try:
            names = os.listdir(src)
        except OSError:
            return
        for n in names:
            _copy_public(os.path.join(src, n), os.path.join(dst, n), depth + 1)


def bwrap_argv(plat: Platform, rundir: str, limits: Limits, harness: str, info_fd: int | None = None,
               gpu_argv: list[str] | None = None) -> list[str]:
    """The bubblewrap command line (up to ``--``) for one run. ``rundir`` may hold ``in/`` (inputs
    too large to travel inline), bound read-only at ``/.tttd/in``."""
    assert plat.bwrap
    argv = [plat.bwrap, "--die-with-parent", "--new-session", "--unshare-pid", "--as-pid-1", "--unshare-ipc",
            "--unshare-uts", "--unshare-cgroup-try"]
    if not limits.network:
        argv.append("--unshare-net")
    if plat.root:  # bwrap keeps root's capabilities: keep only what the harness needs before setuid
        argv += ["--cap-drop", "ALL"]
        for cap in ("CAP_SETUID", "CAP_SETGID", "CAP_SYS_ADMIN", "CAP_CHOWN", "CAP_SYS_RESOURCE"):
            argv += ["--cap-add", cap]
    else:  # user namespace, uid 0 inside (bwrap nests another user namespace for any other uid,
        # in which the harness could not mount): the harness mounts the tmpfs, then drops all
        argv += ["--unshare-user", "--uid", "0", "--gid", "0", "--cap-add", "CAP_SYS_ADMIN", "--cap-add", "CAP_SETPCAP",
                 "--cap-add", "CAP_SYS_RESOURCE"]
        if plat.disable_userns:  # same nesting: only usable if the harness mounted nothing
            argv.append("--disable-userns")
    bound: list[str] = []
    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            argv += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            argv += ["--ro-bind", d, d]
            bound.append(d)
    argv += ["--ro-bind", etc_view(), "/etc"]  # one mount instead of one per entry (speed)
    needed = needed_paths(tuple(limits.toolchain))
    made: set[str] = set()
    for i, (p, staged) in enumerate(staging(needed)):
        if staged:  # the capped /tmp (or /dev/shm) will cover it: the harness binds it back
            argv += _parents(staged, made) + ["--ro-bind", p, staged]  # /.tttd traversable by a fresh uid
        else:
            argv += _parents(p, made) + ["--ro-bind", p, p]
    bound += needed
    for s in sensitive_paths():  # mask what lies inside a bound directory (never what is needed)
        if not any(s.startswith(b + "/") for b in bound) or any(s == n or s.startswith(n + "/") for n in needed):
            continue
        inner = [n for n in needed if n.startswith(s + "/")]
        argv += ["--perms", "0555", "--size", "65536", "--tmpfs", s]
        for n in inner:
            argv += _parents(n, made) + ["--ro-bind", n, n]
        argv += ["--remount-ro", s]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    argv += gpu_argv or []
    argv += ["--dir", WORKDIR, "--dir", "/tmp", "--dir", TMPFS_IN_JAIL,
             "--ro-bind", harness, HARNESS_IN_JAIL]
    if os.path.isdir(os.path.join(rundir, "in")):  # inputs too large to travel inline on stdin
        argv += ["--ro-bind", os.path.join(rundir, "in"), IN_DIR_IN_JAIL]
    argv += ["--remount-ro", "/", "--chdir", "/"]
    if info_fd is not None:  # bwrap reports the pid of the namespace's init there
        argv += ["--info-fd", str(info_fd)]
    return argv + ["--"]


SHADOWED = ("/tmp", "/dev/shm", WORKDIR)  # covered by the capped tmpfs inside the jail
STAGE_DIR = TTTD_DIR + "/b"


def staging(needed: list[str]) -> list[tuple[str, str]]:
    """(path, staging path or "") for each needed path: one under /tmp or /dev/shm (a venv under
    /tmp) is bound at ``/.tttd/b/N`` and moved to its real path by the harness once the capped
    tmpfs is on /tmp (see ``harness._mount_jail``)."""
    return [(p, f"{STAGE_DIR}/{i}" if _under(p, SHADOWED) else "") for i, p in enumerate(needed)]


def interpreter(needed: list[str]) -> str:
    """The path bubblewrap executes the harness's interpreter at: its real path (a venv's
    ``bin/python`` under /tmp is a symlink the staging would hide), or its staging path when the
    real one lies under /tmp itself (the harness binds it back before any other code runs)."""
    if not _under(os.path.abspath(sys.executable), SHADOWED):
        return sys.executable
    exe = os.path.realpath(sys.executable)
    for p, staged in staging(needed):
        if staged and _under(exe, (p,)):
            return staged + exe[len(p):]
    return exe


def _parents(path: str, made: set[str]) -> list[str]:
    """``--dir`` (mode 0755) for each missing ancestor of ``path``: bwrap would create them 0700,
    which a fresh uid could not traverse."""
    out, parts = [], path.strip("/").split("/")
    for i in range(1, len(parts)):
        anc = "/" + "/".join(parts[:i])
        if anc not in made and not _under(anc, SYSTEM_DIRS):
            made.add(anc)
            out += ["--perms", "0755", "--dir", anc]
    return out


def protections(plat: Platform, limits: Limits, cpus=None, gpu: bool = False) -> list[str]:
    """Names of the protections active for a run on ``plat`` with ``limits``."""
    p = ["session", "no_ctty", "private_workdir", "env_scrub", "thread_caps", "rlimit_as", "rlimit_cpu",
         "rlimit_fsize", "rlimit_nofile", "rlimit_core", "rlimit_nproc", "data_only_result", "result_cap",
         "output_pipes", "tree_killed"]
    if plat.separate_uid:
        p.append("separate_uid")
    if plat.root and not plat.separate_uid:
        p.remove("rlimit_nproc")  # not enforced for root
    if plat.seccomp:
        p += ["no_new_privs", "no_namespaces", "no_ptrace", "no_tiocsti"]
        extra = plat.seccomp_extra(limits, gpu)
        if "memfd_create" in extra:
            p.append("no_memfd")
        if "shmget" in extra:
            p.append("no_host_ipc")
        sockets = plat.seccomp_sockets(limits)
        if sockets:
            p.append("no_unix_sockets")
            if sockets == "tcp_only":
                p.append("no_datagram_sockets")
    if plat.memory_capped(gpu):
        p.append("memory_cgroup")
    if plat.cgroup is not None:
        p.append("pids_cgroup")
    if plat.bwrap:
        p += ["bwrap", f"bwrap_{plat.bwrap_source or 'path'}", "pid_namespace", "ipc_namespace",
              "init_unreachable", "allowlist_fs", "private_tmp", "capped_writable", "no_caps", "own_uid_or_userns"]
        if not plat.memory_capped(gpu):  # with the cgroup, shm pages are counted there
            p.append("shm_limits")
        if plat.disable_userns:
            p.append("userns_disabled")
        if not limits.network:
            p.append("no_network")
    else:
        p.append("no_caps")  # a fresh uid (root parent) or the user's own uid, never root
        if plat.landlock:
            p += ["landlock_fs", "proc_self_only"]
            if plat.landlock >= 4 and not limits.network:
                p.append("landlock_net")
            if plat.landlock >= 6:
                p.append("landlock_scope")
        if plat.separate_uid or plat.landlock:
            p.append("env_unreadable")  # other uid, or Landlock's ptrace scoping (/proc/PID/environ)
    if cpus:
        p.append("cpu_affinity")
    return p


def isolation_report(plat: Platform) -> dict:
    """{"full": bool, "active": [...], "missing": [...], "notes": [...]} for default limits."""
    active = protections(plat, Limits()) if plat.runnable else []
    missing = [p for p in FULL_ISOLATION if p not in active]
    return {"full": not missing, "active": active, "missing": missing, "notes": list(plat.notes),
            "runnable": plat.runnable, "cause": plat.cause, "fix": plat.fix}
