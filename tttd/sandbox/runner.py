"""Running one candidate (trusted side): platform detection, the run directory, spawning the
harness (in the jail when bubblewrap works), streaming the result, verdicts, cleanup; and the
public entry points :func:`run_program`, :func:`run_command` and :func:`run`."""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

from tttd.sandbox import alive, gpu, jail, seccomp
from tttd.sandbox import results as data
from tttd.sandbox.jail import Platform
from tttd.sandbox.processes import (TreePopen, _kill_tree, _scan_procs, _signal_of, _signame, _sweep,
                                    remove_tree, sweep_stale_scratch)
from tttd.sandbox.results import BadData
from tttd.sandbox.streams import _drain, _end_namespace, _move_into, _ns_init_pidfd, _Tail, _wait_and_read
from tttd.types import Limits, Program, SandboxResult

HARNESS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "harness.py")
#: set to "1" (by ``check_isolation`` when the user passed --allow-weak-isolation, inherited by
#: worker processes) to let candidates run without bubblewrap; otherwise such a run is refused
WEAK_ENV = "TTTD_SANDBOX_ALLOW_WEAK"
LANDLOCK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "landlock.py")
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "BLIS_NUM_THREADS")
_EXIT_MEMORY, _EXIT_BAD_OUTPUT, _EXIT_SETUP = 3, 4, 5
PROC_READ = ("/proc/self", "/proc/thread-self", "/proc/cpuinfo", "/proc/meminfo", "/proc/stat")  # weak mode
SCRATCH_PREFIX = "tttd-sbx-"  # + the pid of the tttd process that made it + "-" + random
INLINE_BYTES = 1 << 20  # inputs up to this size go inline in the harness's stdin (no files, no mount)
_MEMORY_MARKERS = ("MemoryError", "std::bad_alloc", "Cannot allocate memory", "out of memory")

_platform: Platform | None = None
_platform_lock = threading.Lock()


def platform_info(refresh: bool = False) -> Platform:
    """Detect (once, cached) the strongest isolation that works here (:mod:`tttd.sandbox.detect`):
    bubblewrap (system, else bundled), else the opt-in weak mode; a memory+pids cgroup where
    possible. ``TTTD_SANDBOX_BWRAP=0`` disables bubblewrap (to test the weak mode)."""
    global _platform
    with _platform_lock:
        if _platform is None or refresh:
            from tttd.sandbox.detect import detect

            _platform = detect(_execute)
            sweep_stale_scratch(SCRATCH_PREFIX)  # once per process: what runs killed with -9 left
        return _platform


def _probe(plat: Platform) -> tuple[bool, str]:
    from tttd.sandbox.detect import probe

    return probe(plat, _execute)


def _check_limits(limits: Limits) -> None:
    if not isinstance(limits, Limits):
        raise ValueError(f"limits must be a tttd.types.Limits, got {type(limits).__name__}")
    if not limits.wall_s > 0:
        raise ValueError(f"limits.wall_s must be > 0, got {limits.wall_s}")
    for name in ("memory_mb", "file_size_mb", "open_files", "processes", "threads", "output_bytes", "result_mb",
                 "disk_mb", "inodes"):
        if int(getattr(limits, name)) < 1:
            raise ValueError(f"limits.{name} must be >= 1, got {getattr(limits, name)}")
    if limits.cpu_s is not None and not limits.cpu_s > 0:
        raise ValueError(f"limits.cpu_s must be > 0 or None, got {limits.cpu_s}")
    tc = limits.toolchain
    if isinstance(tc, str) or not all(isinstance(p, str) and os.path.isabs(p) for p in tc):
        raise ValueError(f"limits.toolchain must be a sequence of absolute paths, got {tc!r:.200}")


def _count_uid_processes(uid: int) -> int:
    return sum(1 for _ in _scan_procs(lambda st: st["uid"] == uid))


def _rlimits(limits: Limits, nproc_base: int, gpu: bool = False, init: bool = False) -> dict[str, list[int]]:
    """The candidate's rlimits. With GPUs, RLIMIT_AS is not set: the CUDA driver reserves far more
    virtual address space than any memory limit (host memory is then not capped by tttd)."""
    cpu = int(limits.cpu_s if limits.cpu_s is not None else limits.wall_s * max(1, limits.threads) + 1)
    cpu = max(1, cpu + (1 if limits.cpu_s is not None and limits.cpu_s % 1 else 0))
    mb = 2**20
    as_limit = -1 if gpu else limits.memory_mb * mb  # -1 = RLIM_INFINITY
    return {
        "RLIMIT_AS": [as_limit] * 2,
        "RLIMIT_CPU": [cpu, cpu + 1],
        "RLIMIT_FSIZE": [limits.file_size_mb * mb] * 2,
        "RLIMIT_NOFILE": [limits.open_files] * 2,
        # + the harness in command mode, + the jail's init (the harness as pid 1) under bwrap and
        # its thread watching the parent (tttd.sandbox.harness._watch_parent)
        "RLIMIT_NPROC": [nproc_base + limits.processes + 1 + 2 * int(init)] * 2,
        "RLIMIT_CORE": [0, 0],
    }


def _env(limits: Limits, workdir: str, plat: Platform, token: str, gpu_env: dict[str, str]) -> dict[str, str]:
    bins = [os.path.join(p, "bin") for p in limits.toolchain if os.path.isdir(os.path.join(p, "bin"))]
    path = os.pathsep.join(dict.fromkeys([os.path.dirname(sys.executable), *bins, "/usr/local/bin", "/usr/bin", "/bin"]))
    env = {"PATH": path, "HOME": workdir, "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "USER": "sandbox",
           "LOGNAME": "sandbox", "TMPDIR": "/tmp" if plat.bwrap else workdir, "TTTD_SANDBOX": token,
           "CUDA_VISIBLE_DEVICES": ""}
    env.update({k: str(limits.threads) for k in THREAD_VARS})
    env.update(gpu_env)
    return env


def _protections(plat: Platform, limits: Limits, cpus: Any, devices: tuple[int, ...] = ()) -> list[str]:
    p = jail.protections(plat, limits, cpus, gpu=bool(devices))
    if devices:  # see _rlimits
        p.remove("rlimit_as")
        p.append("gpu_devices_only" if plat.bwrap else "gpu_env_only")
    return p


# ------------------------------------------------------------------------------------------------
# One run.
# ------------------------------------------------------------------------------------------------

def _write_inputs(in_dir: str, files: dict[str, bytes], readable: bool) -> None:
    os.mkdir(in_dir, 0o755 if readable else 0o700)
    for name, content in files.items():
        path = os.path.join(in_dir, name)
        parent = os.path.dirname(path)
        if parent != in_dir:
            os.makedirs(parent, 0o755 if readable else 0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o644 if readable else 0o600)
        with open(fd, "wb") as f:
            f.write(content)


def _execute(cfg: dict, limits: Limits, files: dict[str, bytes], cpus: Any, collect,
             plat: Platform | None = None, devices: tuple[int, ...] = ()) -> SandboxResult:
    """Create the run directory, start the harness (in the jail when available), move it into the
    run's cgroup, stream its result frame (at most ``limits.result_mb``) and the tails of its
    stdout/stderr pipes, wait at most ``limits.wall_s``, kill everything left, and call
    ``collect(res, rc, frame)`` to turn the exit into a result. Always cleans up; raises only on
    bad arguments (ValueError)."""
    plat = plat or platform_info()
    if not plat.runnable:
        return SandboxResult(status="error", message="no sandbox mode works here, nothing was run: "
                             + (plat.cause or "; ".join(plat.notes[:2])), protections=[])
    if not plat.bwrap and not cfg.get("probe") and os.environ.get(WEAK_ENV) != "1":
        return SandboxResult(status="error", protections=[], message=(
            "full isolation is unavailable here (" + (plat.cause or "no bubblewrap") + ") and the weak mode "
            "was not allowed: nothing was run (--allow-weak-isolation, or TTTD_SANDBOX_ALLOW_WEAK=1)"))
    if not plat.bwrap and not plat.seccomp:
        return SandboxResult(status="error", message="refusing to run a candidate without bubblewrap and "
                             "without the seccomp filter", protections=[])
    if not plat.bwrap and plat.root and not plat.separate_uid:
        return SandboxResult(status="error", message="refusing to run a candidate as root: without "
                             "bubblewrap a root parent runs it under a fresh uid only", protections=[])
    devices = gpu.check_devices(devices)
    gpu_argv, gpu_env = [], {}
    if devices:
        gpu_argv, gpu_env = gpu.device_binds(devices) if plat.bwrap else ([], gpu.device_binds(devices)[1])
    rundir = tempfile.mkdtemp(prefix=f"{SCRATCH_PREFIX}{os.getpid()}-")  # the pid: see sweep_stale_scratch
    uid = 2**30 + secrets.randbelow(2**30) if plat.separate_uid else None
    token = secrets.token_hex(8)
    ns_init = None
    proc = None
    group = None
    res_r = res_w = out_r = err_r = out_w = err_w = alive_r = alive_w = None
    try:
        in_dir = os.path.join(rundir, "in")
        inline = None
        if sum(len(c) for c in files.values()) <= INLINE_BYTES:  # small inputs travel on stdin
            inline = {name: base64.b64encode(c).decode("ascii") for name, c in files.items()}
        else:
            _write_inputs(in_dir, files, readable=uid is not None)
        if plat.bwrap:
            workdir = jail.WORKDIR
        else:
            workdir = os.path.join(rundir, "work")
            os.mkdir(workdir, 0o700)
            if uid is not None:
                os.chown(workdir, uid, uid)
        if uid is not None:
            os.chmod(rundir, 0o711)
        nproc_base = 0 if uid is not None else _count_uid_processes(os.getuid())
        res_r, res_w = os.pipe()
        os.set_blocking(res_r, False)
        # only this process holds alive_w: the jail's init exits when it reads end of file, i.e.
        # when this process is gone however it died (SIGKILL included), which ends the namespace
        alive_r, alive_w = alive.open_pipe()
        out_r, out_w = os.pipe()  # stdout/stderr: pipes, never a file on the host disk
        err_r, err_w = os.pipe()
        for fd in (out_r, err_r):
            os.set_blocking(fd, False)
        if plat.cgroup is not None:
            from tttd.sandbox.cgroup import RunCgroup

            mem = (limits.memory_mb + limits.disk_mb + 64) * 2**20 if not devices else None
            try:
                group = RunCgroup.create(plat.cgroup, mem, limits.processes + 8)
            except OSError as e:  # never run with fewer protections than the platform reports
                return SandboxResult(status="error", protections=[],
                                     message=f"sandbox setup failed: cannot create the run's cgroup ({e})")
        needed = jail.needed_paths(tuple(limits.toolchain))
        extra = plat.seccomp_extra(limits, bool(devices))
        cfg = dict(cfg, workdir=workdir, uid=uid, gid=uid, cpus=list(cpus) if cpus else None,
                   rlimits=_rlimits(limits, nproc_base, gpu=bool(devices), init=bool(plat.bwrap)), result_fd=res_w, token=cfg.get("token") or secrets.token_hex(8),
                   alive_fd=alive_r, parent_pid=None if plat.bwrap else os.getpid(),
                   in_dir=jail.IN_DIR_IN_JAIL if plat.bwrap else in_dir, inline=inline,
                   copy=cfg.get("copy", sorted(files)),
                   drop_caps=bool(plat.bwrap) and not plat.root, init=bool(plat.bwrap),
                   seccomp=seccomp.build_filter(extra=extra, sockets=plat.seccomp_sockets(limits)).hex()
                   if plat.seccomp else None,
                   landlock={"module": LANDLOCK, "network": bool(limits.network), "write": [workdir],
                             # /proc: the candidate's own process only (resolved by the harness), never
                             # the command lines of the host's other processes
                             "read": ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc", *PROC_READ,
                                      "/sys", in_dir, *needed]} if plat.landlock and not plat.bwrap else None,
                   jail={"tmpfs": jail.TMPFS_IN_JAIL, "bytes": limits.disk_mb * 2**20, "inodes": limits.inodes,
                         "shm": None if plat.memory_capped(bool(devices)) else _shm_limits(limits),
                         "rebind": [[st, p] for p, st in jail.staging(needed) if st]}
                   if plat.bwrap else None)
        harness = jail.HARNESS_IN_JAIL if plat.bwrap else HARNESS
        argv = [jail.interpreter(needed) if plat.bwrap else sys.executable, "-I", "-S", harness]
        info_r = info_w = None
        if plat.bwrap:
            info_r, info_w = os.pipe()
            try:
                argv = jail.bwrap_argv(plat, rundir, limits, HARNESS, info_w, gpu_argv) + argv
            except BaseException:
                os.close(info_r)
                os.close(info_w)
                raise
        t0 = time.perf_counter()
        try:
            proc = TreePopen(argv, stdin=subprocess.PIPE, stdout=out_w, stderr=err_w,
                                    cwd=rundir if plat.bwrap else workdir,
                                    env=_env(limits, workdir, plat, token, gpu_env), start_new_session=True,
                                    close_fds=True, pass_fds=(res_w, alive_r) + ((info_w,) if info_w is not None else ()))
        finally:
            for fd in (res_w, out_w, err_w, alive_r):
                os.close(fd)
            res_w = out_w = err_w = alive_r = None
            if info_w is not None:
                os.close(info_w)
        init_pid: list[int] = []
        if info_r is not None:
            ns_init = _ns_init_pidfd(info_r, init_pid)
        if group is not None:  # before the harness reads its configuration: nothing has run yet
            # (the jail's init and what it started; bwrap's own monitor outside stays out)
            _move_into(group, init_pid[0] if init_pid else proc.pid)
        try:
            proc.stdin.write(json.dumps(cfg).encode())
            proc.stdin.close()
        except OSError:
            pass
        cap = limits.result_mb * 2**20 + data.FRAME_OVERHEAD
        frame = bytearray()
        tails = {out_r: _Tail(limits.output_bytes), err_r: _Tail(limits.output_bytes)}
        exited, over = _wait_and_read(proc, limits.wall_s, res_r, frame, cap, tails)
        timed_out = not exited and not over
        wall = time.perf_counter() - t0
        # Kill what is left: under bwrap the namespace's init kills and reaps everything once the
        # alive pipe closes (else it is killed: the kernel empties the namespace before that pidfd
        # reports the exit); otherwise the group, then a sweep.
        alive.release(alive_w)
        _end_namespace(ns_init, alive_w)
        alive_w = None
        _kill_tree(proc, bool(plat.bwrap))
        if group is not None:
            group.kill()
        _sweep(proc.pid, uid, token)
        rc = proc.wait()
        if not over:
            over = _drain(res_r, frame, cap)
        for fd, t in tails.items():
            t.read(fd)
        stdout, cut_out = tails[out_r].text()
        stderr, cut_err = tails[err_r].text()
        res = SandboxResult(status="ok", stdout=stdout, stderr=stderr, wall_s=wall, returncode=rc,
                            protections=_protections(plat, limits, cpus, devices),
                            cpu_s=proc.cpu_s if plat.bwrap else None)
        sig = _signal_of(rc, bool(plat.bwrap))
        oom = group is not None and group.oom_killed()
        if over:
            res.status = "bad_output"
            res.message = f"the result is larger than the limit of {limits.result_mb} MiB (rejected unread)"
        elif timed_out:
            res.status, res.message = "timeout", f"wall time limit of {limits.wall_s:g} s exceeded"
        elif plat.bwrap and rc < 0:  # issue 24: bwrap itself killed, not by us and not by the candidate
            # (it cannot signal the jail): an infrastructure failure (tttd.faults), retried, never scored
            res.status, res.message = "lost", f"the jail was killed from outside by {_signame(-rc)} (OOM killer?)"
        elif sig == signal.SIGXCPU:
            res.status, res.message = "timeout", "CPU time limit exceeded"
        elif oom:
            res.status = "memory"
            res.message = f"out of memory (the run's total limit, {limits.memory_mb} MiB + {limits.disk_mb} MiB disk)"
        elif sig is not None and cfg["mode"] != "command":
            res.status, res.message = "killed", f"killed by signal {_signame(sig)}"
        elif rc == _EXIT_SETUP and "tttd-sandbox: setup failed" in stderr:
            res.status, res.message = "error", "sandbox setup failed: " + _last_line(stderr)
        elif rc != 0 and cfg["mode"] != "command" and any(m in stderr[-2000:] for m in _MEMORY_MARKERS):
            res.status, res.message = "memory", f"out of memory (limit {limits.memory_mb} MiB)"
        else:
            try:
                collect(res, rc, frame)
            except Exception as e:  # never raise on candidate data
                res.status, res.value = "bad_output", None
                res.message = f"undecodable result ({type(e).__name__})"
        if cut_out or cut_err:
            res.message += f" (output tails kept: {cut_out} stdout / {cut_err} stderr bytes cut)"
        return res
    finally:
        if proc is not None and proc.returncode is None:
            _end_namespace(ns_init)
            _kill_tree(proc, bool(plat.bwrap))
            proc.wait()
            _sweep(proc.pid, uid, token)
        if group is not None and not group.remove():
            print("tttd.sandbox: warning: could not remove a run cgroup", file=sys.stderr)
        alive.release(alive_w)
        for fd in (ns_init, res_r, res_w, out_r, err_r, out_w, err_w, alive_r, alive_w):
            if fd is not None:
                os.close(fd)
        if not remove_tree(rundir):
            print(f"tttd.sandbox: warning: could not remove {rundir}", file=sys.stderr)


def _shm_limits(limits: Limits) -> dict[str, int]:
    """System V shared memory of the jail's own IPC namespace: at most ``memory_mb`` in all. Only
    without a memory cgroup (which counts those pages already; the proc mount costs ~5 ms)."""
    total = limits.memory_mb * 2**20
    return {"shmmax": total, "shmall": total // 4096, "shmmni": 64}


def _last_line(text: str) -> str:
    """The error line of a traceback; a SyntaxError (which names its line only in the frame line
    above it) gets that line number (issue 36): ``SyntaxError: invalid syntax (line 3)``."""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    if not lines:
        return ""
    last = lines[-1][:500]
    if last.startswith(("SyntaxError", "IndentationError", "TabError")) and "line " not in last:
        import re

        for ln in reversed(lines[:-1]):
            m = re.match(r'\s*File "[^"]*", line (\d+)', ln)
            if m:
                return f"{last} (line {m.group(1)})"
    return last


# ------------------------------------------------------------------------------------------------
# Public API.
# ------------------------------------------------------------------------------------------------

def run_program(source: str, entry: str = "main", args: dict[str, Any] | None = None,
                limits: Limits | None = None, inject: dict[str, Any] | None = None,
                cpus: Any = None, devices: tuple[int, ...] = ()) -> SandboxResult:
    """Exec ``source`` as the module ``candidate`` in the sandbox, call ``entry(**args)`` and return
    its value as data (JSON values, numpy numeric/bool arrays; tuples come back as lists, numpy
    scalars as Python scalars). ``inject`` names are defined in the module's globals first.
    ``devices``: GPU indices bound into the jail (see :mod:`tttd.sandbox.gpu`)."""
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
    result_bytes = limits.result_mb * 2**20
    max_json = min(result_bytes, data.MAX_JSON_BYTES)
    cfg = {"mode": "program", "token": secrets.token_hex(8), "copy": ["candidate.py"], "entry": entry, "source_file": "candidate.py", "input_file": "_tttd_input.json",
           "sys_path": jail.site_paths(), "max_depth": data.MAX_DEPTH,
           "max_elements": data.MAX_ELEMENTS, "max_array_bytes": result_bytes, "max_json_bytes": max_json}

    def collect(res: SandboxResult, rc: int, frame: bytearray) -> None:
        if rc == _EXIT_MEMORY:
            res.status, res.message = "memory", f"out of memory (limit {limits.memory_mb} MiB)"
        elif rc == _EXIT_BAD_OUTPUT:
            res.status, res.message = "bad_output", _last_line(res.stderr) or "return value is not data"
        elif rc != 0:
            res.status, res.message = "error", _last_line(res.stderr) or f"exit code {rc}"
        elif not frame:
            res.status = "error"
            res.message = f"the program exited (code 0) before {entry}() returned: no result"
        else:
            try:
                doc, payload = data.decode_frame(frame, cfg["token"], max_json)
                res.value = data.decode_program(doc, payload)
            except BadData as e:
                res.status, res.message = "bad_output", str(e)

    return _execute(cfg, limits, files, cpus, collect, devices=devices)


def run_command(cmd: list[str], files: dict[str, str | bytes] | None = None, limits: Limits | None = None,
                result_file: str = "result.json", cpus: Any = None, devices: tuple[int, ...] = ()) -> SandboxResult:
    """Run ``cmd`` (no shell) in the sandbox after writing ``files`` into its working directory.
    ``value`` is the JSON in ``result_file`` if the command wrote one (strictly parsed; malformed,
    oversized, a symlink or not a regular file -> bad_output), else None; status ok/error follows
    the exit code (``killed`` for a signal). ``devices``: GPU indices bound into the jail."""
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
    result_bytes = limits.result_mb * 2**20
    cfg = {"mode": "command", "token": secrets.token_hex(8), "command": list(cmd), "result_file": result_file, "max_result_bytes": result_bytes}
    return _execute(cfg, limits, out, cpus, _command_collector(cfg, limits), devices=devices)


def _command_collector(cfg: dict, limits: Limits):
    max_json = min(limits.result_mb * 2**20, data.MAX_JSON_BYTES)

    def collect(res: SandboxResult, rc: int, frame: bytearray) -> None:
        try:
            doc, payload = data.decode_frame(frame, cfg["token"], max_json + data.FRAME_OVERHEAD)
            report, value, bad = data.decode_command(doc, payload, max_json)
        except BadData as e:
            sig = _signal_of(rc, True) if rc < 0 else None
            if sig is not None:
                res.status, res.message = "killed", f"killed by signal {_signame(sig)}"
            elif rc == 127 or rc == _EXIT_SETUP:
                res.status, res.message = "error", _last_line(res.stderr) or f"exit code {rc}"
            else:
                res.status, res.message = "error", f"no report from the sandbox ({e}); exit code {rc}"
            return
        if report["signal"] is not None:
            res.returncode = -report["signal"]
            sig = report["signal"]
            if sig == signal.SIGXCPU:
                res.status, res.message = "timeout", "CPU time limit exceeded"
            else:
                res.status, res.message = "killed", f"killed by signal {_signame(sig)}"
        elif report["exit"] != 0:
            res.returncode = report["exit"]
            if any(m in res.stderr[-2000:] for m in _MEMORY_MARKERS):
                res.status, res.message = "memory", f"out of memory (limit {limits.memory_mb} MiB)"
            else:
                res.status, res.message = "error", _last_line(res.stderr) or f"exit code {report['exit']}"
        else:
            res.returncode = 0
        if bad:
            if res.status == "ok":
                res.status, res.message = "bad_output", bad
            return
        res.value = value

    return collect


def _check_relpath(name: Any, what: str) -> None:
    if not isinstance(name, str) or not name or name.startswith("/") or "\0" in name \
            or any(part in ("", ".", "..") for part in name.split("/")):
        raise ValueError(f"{what}: {name!r} must be a plain relative path inside the working directory")


def run(program: Program, cpus: Any = None, devices: tuple[int, ...] = ()) -> SandboxResult:
    """Run a :class:`Program`: its ``command`` if set, else its ``source``. ``devices``: the GPU
    indices the executor assigned (``program.limits.gpus`` of them); empty = no GPU visible."""
    if not isinstance(program, Program):
        raise ValueError(f"expected a tttd.types.Program, got {type(program).__name__}")
    if program.command is not None:
        return run_command(program.command, files=program.files, limits=program.limits, cpus=cpus, devices=devices)
    if program.source is None:
        raise ValueError("a Program needs either source or command")
    return run_program(program.source, entry=program.entry, args=program.args, limits=program.limits,
                       inject=program.inject, cpus=cpus, devices=devices)
