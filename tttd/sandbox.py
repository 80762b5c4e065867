"""Run untrusted, LLM-written code: process isolation, limits, timeouts, data-only results.

Every candidate is treated as hostile (it is written under pressure to score high by any means).
:func:`run_program` execs Python source as a module in a fresh process and calls ``entry(**args)``;
:func:`run_command` runs a command line (e.g. a compiled candidate); :func:`run` dispatches on a
:class:`~tttd.types.Program`. Both always return a :class:`~tttd.types.SandboxResult` with a status
``ok | error | timeout | memory | killed | bad_output`` (they raise only on bad *arguments*).

What is protected (``SandboxResult.protections`` lists what was active for that run):

- ``session``: own session and process group; on timeout or exit the whole tree is SIGKILLed.
- ``private_workdir``: a fresh empty temporary directory, removed afterwards.
- ``env_scrub``: only PATH, HOME (= workdir), LANG, USER, TMPDIR and ``thread_caps`` (OMP, MKL,
  OpenBLAS, NumExpr, vecLib, BLIS thread counts = ``limits.threads``); parent secrets are not seen.
- ``rlimit_as`` (memory), ``rlimit_cpu``, ``rlimit_fsize`` (every file incl. stdout/stderr),
  ``rlimit_nofile``, ``rlimit_core`` (0) always; ``rlimit_nproc`` where the kernel enforces it
  (not for root: as root the candidate runs under a fresh uid, see ``separate_uid``).
- ``separate_uid`` (parent is root): the candidate runs as a fresh, random, unprivileged uid, so it
  cannot signal the parent, cannot write root-owned files, RLIMIT_NPROC bounds fork bombs, and
  every process it leaves behind (daemons that ``setsid`` away included) is found by uid and killed.
- ``bwrap`` (bubblewrap, detected once per process; disable with ``TTTD_SANDBOX_BWRAP=0``):
  ``pid_namespace`` (the candidate sees only its own processes; ``kill(-1)`` and ``getppid()``
  stay inside; the namespace dies with the run), ``no_network`` (own network namespace with only
  loopback, unless ``limits.network``), ``ro_root`` (the host filesystem read-only),
  ``private_tmp`` (/tmp and /dev/shm are small private tmpfs), ``ipc_namespace``, ``no_caps``.
- ``data_only_result``: results come back as JSON + raw numeric arrays, parsed strictly in the
  trusted process with size checks before reading (tttd/_sandbox_data.py). No pickle, no eval.
  stdout/stderr go to files; only their last ``limits.output_bytes`` are read.

What is NOT protected:

- kernel exploits, CPU side channels (Spectre etc.), timing/resource contention with other work;
- without bwrap: the network, and the host filesystem (readable; writable wherever the candidate's
  uid may write: as root with ``separate_uid`` that is world-writable places such as /tmp; as a
  normal user, everything that user may write). Without bwrap and without root the candidate runs
  as the same user: it can signal the parent and other processes of that user, and leftovers are
  found only by session, process group, ancestry and an environment marker (an adversary that
  changes all of them can escape the final kill);
- disk use in the workdir is bounded per file (RLIMIT_FSIZE), not in total; the private /tmp and
  /dev/shm tmpfs use RAM (each capped at ``limits.file_size_mb``) outside RLIMIT_AS;
- RLIMIT_AS bounds virtual memory per process, not the sum over a tree (bounded by nproc x as);
- forged results: the harness writes the result only after ``entry`` returns, under a random name
  passed on stdin (not argv/env), from references captured before the candidate runs, so
  monkeypatching builtins/json/numpy/sys.exit, pre-writing result files or exiting early yields
  no ``ok``. A candidate that introspects the harness (``sys._getframe``, ``gc``, ``ctypes``) can
  make it write arbitrary *data*; that is no worse than returning that data, because the trusted
  verifier always recomputes the score from the data.

Deviation from the paper's code (SPEC.md 6.1, 7.4): pickled results, no memory/network limits and
writable filesystem are replaced by the above; one wall budget (``limits.wall_s``) that always ends
in a kill of the whole tree.
"""

from __future__ import annotations

import json
import os
import secrets
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any

from tttd import _sandbox_data as data
from tttd._sandbox_procs import _kill_tree, _scan_procs, _signal_of, _signame, _sweep, _wait
from tttd._sandbox_data import BadData, finite_array
from tttd.types import Limits, Program, SandboxResult

__all__ = [
    "Limits", "Program", "SandboxResult", "BadData", "finite_array", "platform_info",
    "run", "run_command", "run_program",
]

HARNESS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_sandbox_harness.py")
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "BLIS_NUM_THREADS")
_EXIT_MEMORY, _EXIT_BAD_OUTPUT, _EXIT_SETUP = 3, 4, 5
_MEMORY_MARKERS = ("MemoryError", "std::bad_alloc", "Cannot allocate memory", "out of memory")


@dataclass(frozen=True)
class Platform:
    """What isolation works on this machine (detected once per process)."""

    bwrap: str | None  # path of a working bubblewrap, or None
    root: bool  # the parent runs as root
    separate_uid: bool  # the candidate runs under a fresh uid (root parent, interpreter reachable)


_platform: Platform | None = None
_platform_lock = threading.Lock()


def platform_info(refresh: bool = False) -> Platform:
    """Detect (once, cached) whether bubblewrap works here and whether the candidate can run under
    its own uid. ``TTTD_SANDBOX_BWRAP=0`` disables bubblewrap (to test the fallback)."""
    global _platform
    with _platform_lock:
        if _platform is None or refresh:
            root = os.geteuid() == 0
            bw = shutil.which("bwrap") if os.environ.get("TTTD_SANDBOX_BWRAP", "1") != "0" else None
            options = [(bw, True), (bw, False)] if bw else []
            options += [(None, True), (None, False)]
            for bwrap, sep in options:
                if sep and not root:
                    continue
                cand = Platform(bwrap=bwrap, root=root, separate_uid=sep)
                if (bwrap is None and not sep) or _probe(cand):
                    _platform = cand
                    break
        return _platform


def _probe(plat: Platform) -> bool:
    """Start the real harness path once: interpreter, stdlib and site packages must load."""
    try:
        res = _execute({"mode": "command", "command": [sys.executable, "-I", "-S", "-c", _PROBE_CODE, *_site_paths()]},
                       Limits(wall_s=20, memory_mb=1024), {}, None, lambda res, w, rc: None, plat)
    except (OSError, subprocess.SubprocessError):
        return False
    return res.status == "ok" and res.returncode == 0


_PROBE_CODE = "import sys, os, json\nfor p in sys.argv[1:]: os.listdir(p)"


def _hidden_roots() -> list[str]:
    """Directories a bwrap sandbox mounts an empty tmpfs over: /tmp, and every top-most directory
    on the way to the interpreter/packages that others may not traverse (e.g. /root with a pyenv
    inside); the needed paths are then bound back read-only, which hides the rest (secrets)."""
    roots = {"/tmp"}
    for p in _needed_paths():
        parts = p.strip("/").split("/")
        for i in range(1, len(parts)):
            anc = "/" + "/".join(parts[:i])
            try:
                if os.stat(anc).st_mode & 0o005 != 0o005:
                    roots.add(anc)
                    break
            except OSError:
                break
    return sorted(roots)


def _needed_paths() -> list[str]:
    cands = {os.path.dirname(HARNESS), sys.prefix, sys.base_prefix,
             os.path.dirname(os.path.realpath(sys.executable)), *_site_paths()}
    cands = {p for p in cands if os.path.isdir(p)}
    return sorted(p for p in cands if not any(p.startswith(q + "/") for q in cands))


def _bwrap_argv(plat: Platform, workdir: str, limits: Limits, info_fd: int | None = None) -> list[str]:
    tmpfs_bytes = str(max(1, limits.file_size_mb) * 2**20)
    argv = [plat.bwrap, "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc",
            "--unshare-uts", "--unshare-cgroup-try"]
    if not limits.network:
        argv.append("--unshare-net")
    if plat.root:  # bwrap keeps root's capabilities: keep only what the harness needs to drop its uid
        argv += ["--cap-drop", "ALL"]
        if plat.separate_uid:
            argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    argv += ["--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev"]
    roots = _hidden_roots()
    for r in roots:
        argv += ["--perms", "1777" if r == "/tmp" else "0755", "--size", tmpfs_bytes, "--tmpfs", r]
    argv += ["--perms", "1777", "--size", tmpfs_bytes, "--tmpfs", "/dev/shm"]
    made: set[str] = set()

    def parents(path: str) -> list[str]:  # bwrap would create missing mount points with mode 0700
        out, parts = [], path.strip("/").split("/")
        for i in range(1, len(parts)):
            anc = "/" + "/".join(parts[:i])
            if anc not in made and any(anc.startswith(r + "/") for r in roots):
                made.add(anc)
                out += ["--perms", "0755", "--dir", anc]
        return out

    for p in _needed_paths():
        if any(p == r or p.startswith(r + "/") for r in roots):
            argv += parents(p) + ["--ro-bind", p, p]
    argv += parents(workdir) + ["--bind", workdir, workdir, "--chdir", workdir]
    if info_fd is not None:  # bwrap reports the pid of the namespace's init there
        argv += ["--info-fd", str(info_fd)]
    return argv + ["--"]
    return argv


def _site_paths() -> list[str]:
    # The harness runs with -S (saves ~20 ms of site processing); it gets the parent's package dirs.
    return [p for p in sys.path if os.path.isabs(p) and ("site-packages" in p or "dist-packages" in p)]


def _check_limits(limits: Limits) -> None:
    if not isinstance(limits, Limits):
        raise ValueError(f"limits must be a tttd.types.Limits, got {type(limits).__name__}")
    if not limits.wall_s > 0:
        raise ValueError(f"limits.wall_s must be > 0, got {limits.wall_s}")
    for name in ("memory_mb", "file_size_mb", "open_files", "processes", "threads", "output_bytes", "result_mb"):
        if int(getattr(limits, name)) < 1:
            raise ValueError(f"limits.{name} must be >= 1, got {getattr(limits, name)}")
    if limits.cpu_s is not None and not limits.cpu_s > 0:
        raise ValueError(f"limits.cpu_s must be > 0 or None, got {limits.cpu_s}")


def _count_uid_processes(uid: int) -> int:
    return sum(1 for _ in _scan_procs(lambda st: st["uid"] == uid))


def _rlimits(limits: Limits, nproc_base: int) -> dict[str, list[int]]:
    cpu = int(limits.cpu_s if limits.cpu_s is not None else limits.wall_s * max(1, limits.threads) + 1)
    cpu = max(1, cpu + (1 if limits.cpu_s is not None and limits.cpu_s % 1 else 0))
    mb = 2**20
    return {
        "RLIMIT_AS": [limits.memory_mb * mb] * 2,
        "RLIMIT_CPU": [cpu, cpu + 1],
        "RLIMIT_FSIZE": [limits.file_size_mb * mb] * 2,
        "RLIMIT_NOFILE": [limits.open_files] * 2,
        "RLIMIT_NPROC": [nproc_base + limits.processes] * 2,
        "RLIMIT_CORE": [0, 0],
    }


def _env(limits: Limits, workdir: str, plat: Platform, token: str) -> dict[str, str]:
    path = os.pathsep.join(dict.fromkeys([os.path.dirname(sys.executable), "/usr/local/bin", "/usr/bin", "/bin"]))
    env = {"PATH": path, "HOME": workdir, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "USER": "sandbox",
           "LOGNAME": "sandbox", "TMPDIR": "/tmp" if plat.bwrap else workdir, "TTTD_SANDBOX": token}
    env.update({k: str(limits.threads) for k in THREAD_VARS})
    return env


def _protections(plat: Platform, limits: Limits, cpus: Any) -> list[str]:
    p = ["session", "private_workdir", "env_scrub", "thread_caps", "rlimit_as", "rlimit_cpu",
         "rlimit_fsize", "rlimit_nofile", "rlimit_core", "rlimit_nproc", "data_only_result"]
    if plat.separate_uid:
        p.append("separate_uid")
    if plat.root and not plat.separate_uid:
        p.remove("rlimit_nproc")  # not enforced for root
    if plat.bwrap:
        p += ["bwrap", "pid_namespace", "ipc_namespace", "ro_root", "private_tmp", "no_caps"]
        if not limits.network:
            p.append("no_network")
    if cpus:
        p.append("cpu_affinity")
    return p


# ------------------------------------------------------------------------------------------------
# One run.
# ------------------------------------------------------------------------------------------------

def _execute(cfg: dict, limits: Limits, files: dict[str, bytes], cpus: Any, collect,
             plat: Platform | None = None) -> SandboxResult:
    """Create the run directory, start the harness (under bwrap when available), wait at most
    ``limits.wall_s``, kill everything left, read output tails, and call ``collect`` to turn the
    exit into a result. Always cleans up."""
    plat = plat or platform_info()
    rundir = tempfile.mkdtemp(prefix="tttd-sbx-")
    workdir = os.path.join(rundir, "work")
    uid = 2**30 + secrets.randbelow(2**30) if plat.separate_uid else None
    token = secrets.token_hex(8)
    out_fd = err_fd = -1
    ns_init = None
    proc = None
    try:
        os.mkdir(workdir, 0o700)
        for name, content in files.items():
            path = os.path.join(workdir, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(content)
        if uid is not None:
            os.chmod(rundir, 0o711)
            os.chmod(workdir, 0o711)  # bwrap (root without CAP_DAC_OVERRIDE) must chdir into it
            for d, dirs, fnames in os.walk(workdir):
                for n in [d] + [os.path.join(d, x) for x in dirs + fnames]:
                    os.chown(n, uid, uid)
        out_fd = os.open(os.path.join(rundir, "stdout"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        err_fd = os.open(os.path.join(rundir, "stderr"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        nproc_base = 0 if uid is not None else _count_uid_processes(os.getuid())
        cfg = dict(cfg, workdir=workdir, uid=uid, gid=uid, cpus=list(cpus) if cpus else None,
                   rlimits=_rlimits(limits, nproc_base))
        argv = [sys.executable, "-I", "-S", HARNESS]
        info_r = info_w = None
        if plat.bwrap:
            info_r, info_w = os.pipe()
            argv = _bwrap_argv(plat, workdir, limits, info_w) + argv
        t0 = time.perf_counter()
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=out_fd, stderr=err_fd, cwd=workdir,
                                    env=_env(limits, workdir, plat, token), start_new_session=True,
                                    close_fds=True, pass_fds=(info_w,) if info_w is not None else ())
        finally:
            if info_w is not None:
                os.close(info_w)
        if info_r is not None:
            ns_init = _ns_init_pidfd(info_r)
        try:
            proc.stdin.write(json.dumps(cfg).encode())
            proc.stdin.close()
        except OSError:
            pass
        timed_out = not _wait(proc, limits.wall_s)
        wall = time.perf_counter() - t0
        # Kill what is left: under bwrap the namespace init (the kernel empties the namespace
        # before that pidfd reports the exit); otherwise the group, then a sweep.
        _end_namespace(ns_init)
        _kill_tree(proc, bool(plat.bwrap))
        _sweep(proc.pid, uid, token)
        rc = proc.wait()
        stdout, cut_out = data.read_tail(out_fd, limits.output_bytes)
        stderr, cut_err = data.read_tail(err_fd, limits.output_bytes)
        res = SandboxResult(status="ok", stdout=stdout, stderr=stderr, wall_s=wall, returncode=rc,
                            protections=_protections(plat, limits, cpus))
        sig = _signal_of(rc, bool(plat.bwrap))
        if timed_out:
            res.status, res.message = "timeout", f"wall time limit of {limits.wall_s:g} s exceeded"
        elif sig == signal.SIGXCPU:
            res.status, res.message = "timeout", "CPU time limit exceeded"
        elif sig is not None:
            res.status, res.message = "killed", f"killed by signal {_signame(sig)}"
        elif rc == _EXIT_SETUP and "tttd-sandbox: setup failed" in stderr:
            res.status, res.message = "error", "sandbox setup failed: " + _last_line(stderr)
        elif rc != 0 and any(m in stderr[-2000:] for m in _MEMORY_MARKERS):
            res.status, res.message = "memory", f"out of memory (limit {limits.memory_mb} MiB)"
        else:
            collect(res, workdir, rc)
        if cut_out or cut_err:
            res.message += f" (output tails kept: {cut_out} stdout / {cut_err} stderr bytes cut)"
        return res
    finally:
        if proc is not None and proc.returncode is None:
            _end_namespace(ns_init)
            _kill_tree(proc, bool(plat.bwrap))
            proc.wait()
            _sweep(proc.pid, uid, token)
        if ns_init is not None:
            os.close(ns_init)
        for fd in (out_fd, err_fd):
            if fd >= 0:
                os.close(fd)
        _rmtree(rundir)


def _ns_init_pidfd(info_r: int) -> int | None:
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
        return os.pidfd_open(pid)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    finally:
        os.close(info_r)


def _end_namespace(pidfd: int | None) -> None:
    """SIGKILL the pid namespace's init and wait until it has exited, i.e. until the kernel has
    killed and reaped every process in the namespace (daemons included)."""
    if pidfd is None:
        return
    try:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    poller.poll(10_000)


def _last_line(text: str) -> str:
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1][:500] if lines else ""


def _rmtree(path: str) -> None:
    def onerror(fn, p, exc):  # a candidate may have chmod-ed things away (same-uid mode)
        try:
            os.chmod(os.path.dirname(p), 0o700)
            os.chmod(p, 0o700)
            fn(p)
        except OSError:
            pass

    shutil.rmtree(path, onerror=onerror)
    if os.path.exists(path):
        shutil.rmtree(path, ignore_errors=True)


# ------------------------------------------------------------------------------------------------
# Public API.
# ------------------------------------------------------------------------------------------------

def run_program(source: str, entry: str = "main", args: dict[str, Any] | None = None,
                limits: Limits | None = None, inject: dict[str, Any] | None = None,
                cpus: Any = None) -> SandboxResult:
    """Exec ``source`` as the module ``candidate`` in the sandbox, call ``entry(**args)`` and return
    its value as data (JSON values, numpy numeric/bool arrays; tuples come back as lists, numpy
    scalars as Python scalars). ``inject`` names are defined in the module's globals first."""
    limits = limits or Limits()
    _check_limits(limits)
    if not isinstance(source, str):
        raise ValueError(f"source must be a str, got {type(source).__name__}")
    if not (isinstance(entry, str) and entry.isidentifier()):
        raise ValueError(f"entry must be a Python identifier, got {entry!r}")
    args, inject = dict(args or {}), dict(inject or {})
    for what, d in (("args", args), ("inject", inject)):
        bad = [k for k in d if not (isinstance(k, str) and k.isidentifier())]
        if bad:
            raise ValueError(f"{what} keys must be Python identifiers, got {bad[:3]!r}")
    arrays: list = []
    doc = {"args": data.encode_inputs(args, arrays, "args"),
           "inject": data.encode_inputs(inject, arrays, "inject")}
    files = {"candidate.py": source.encode("utf-8", "surrogatepass")}
    doc["arrays"] = []
    for i, a in enumerate(arrays):
        files[f"_tttd_in_{i}.bin"] = a.tobytes()
        doc["arrays"].append({"file": f"_tttd_in_{i}.bin", "dtype": a.dtype.str, "shape": list(a.shape)})
    files["_tttd_input.json"] = json.dumps(doc, allow_nan=True).encode()
    name = "_tttd_result_" + secrets.token_hex(16)
    result_bytes = limits.result_mb * 2**20
    cfg = {"mode": "program", "entry": entry, "source_file": "candidate.py", "input_file": "_tttd_input.json",
           "result_name": name, "sys_path": _site_paths(), "max_depth": data.MAX_DEPTH,
           "max_elements": data.MAX_ELEMENTS, "max_array_bytes": result_bytes,
           "max_json_bytes": min(result_bytes, data.MAX_JSON_BYTES)}

    def collect(res: SandboxResult, workdir: str, rc: int) -> None:
        if rc == _EXIT_MEMORY:
            res.status, res.message = "memory", f"out of memory (limit {limits.memory_mb} MiB)"
        elif rc == _EXIT_BAD_OUTPUT:
            res.status, res.message = "bad_output", _last_line(res.stderr) or "return value is not data"
        elif rc != 0:
            res.status, res.message = "error", _last_line(res.stderr) or f"exit code {rc}"
        else:
            try:
                res.value = data.read_result(workdir, name, result_bytes)
            except FileNotFoundError:
                res.status = "error"
                res.message = f"the program exited (code 0) before {entry}() returned: no result"
            except BadData as e:
                res.status, res.message = "bad_output", str(e)

    return _execute(cfg, limits, files, cpus, collect)


def run_command(cmd: list[str], files: dict[str, str | bytes] | None = None, limits: Limits | None = None,
                result_file: str = "result.json", cpus: Any = None) -> SandboxResult:
    """Run ``cmd`` (no shell) in the sandbox after writing ``files`` into its working directory.
    ``value`` is the JSON in ``result_file`` if the command wrote one (strictly parsed; malformed
    -> bad_output), else None; status ok/error follows the exit code."""
    limits = limits or Limits()
    _check_limits(limits)
    if not (isinstance(cmd, (list, tuple)) and cmd and all(isinstance(c, str) for c in cmd)):
        raise ValueError(f"cmd must be a non-empty list of str, got {cmd!r:.200}")
    if "\0" in "".join(cmd):
        raise ValueError("cmd contains a NUL byte")
    out: dict[str, bytes] = {}
    for name, content in (files or {}).items():
        _check_relpath(name, "files")
        if name.startswith("_tttd"):
            raise ValueError(f"file names starting with '_tttd' are reserved, got {name!r}")
        out[name] = content.encode("utf-8") if isinstance(content, str) else bytes(content)
    if result_file is not None:
        _check_relpath(result_file, "result_file")
    cfg = {"mode": "command", "command": list(cmd)}
    result_bytes = limits.result_mb * 2**20

    def collect(res: SandboxResult, workdir: str, rc: int) -> None:
        if rc != 0:
            res.status, res.message = "error", _last_line(res.stderr) or f"exit code {rc}"
        if result_file is None:
            return
        try:
            value = data.check_tree(data.read_json(os.path.join(workdir, result_file), result_bytes))
        except FileNotFoundError:
            return
        except BadData as e:
            if res.status == "ok":
                res.status, res.message = "bad_output", str(e)
            return
        res.value = value

    return _execute(cfg, limits, out, cpus, collect)


def _check_relpath(name: Any, what: str) -> None:
    if not isinstance(name, str) or not name or name.startswith("/") or "\0" in name \
            or any(part in ("", ".", "..") for part in name.split("/")):
        raise ValueError(f"{what}: {name!r} must be a plain relative path inside the working directory")


def run(program: Program, cpus: Any = None) -> SandboxResult:
    """Run a :class:`Program`: its ``command`` if set, else its ``source``."""
    if not isinstance(program, Program):
        raise ValueError(f"expected a tttd.types.Program, got {type(program).__name__}")
    if program.command is not None:
        return run_command(program.command, files=program.files, limits=program.limits, cpus=cpus)
    if program.source is None:
        raise ValueError("a Program needs either source or command")
    return run_program(program.source, entry=program.entry, args=program.args, limits=program.limits,
                       inject=program.inject, cpus=cpus)
