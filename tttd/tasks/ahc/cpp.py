"""C++ candidates in the sandbox: one jailed compile, then one jailed process per case.

How the compiled binary reaches the case runs (and why this way)
----------------------------------------------------------------
The compile runs inside the jail (``g++`` is given the candidate's source, which may try to
``#include`` host files or abuse the compiler). A small stdlib-only Python wrapper *inside* that
jail runs ``g++`` and, when it succeeds, writes the binary base64-encoded into the run's
``result.json`` (the only channel out of a command run, strictly size-checked by the sandbox).
The trusted process keeps those bytes in memory and writes them into each case's fresh working
directory through ``Program.files``. So:

- no host directory is shared between runs: a case sees only its own binary and its own
  ``input.txt``, never another candidate's binary, the run directory or other cases' inputs;
- nothing depends on a host cache, so the same Program runs unchanged on a Ray worker of another
  machine (it carries everything it needs);
- the binary is untrusted data like any other output; it is only ever executed inside a jail.

The cost is copying the binary (typically 20-200 kB; capped at :data:`MAX_BINARY_BYTES`) once
per case, which is noise next to a case's run time. The contest's flags include
``-march=native``: on a Ray cluster whose nodes have different CPUs, a binary compiled on one node
may stop with SIGILL (a runtime error) on another; use nodes of one CPU type.

Measuring a case
----------------
Inside each case jail a second wrapper makes ``input.txt`` the binary's stdin and ``out.txt``
its stdout, ``wait4``-s it and writes ``result.json`` with its exit status, CPU time (user+sys),
wall time and peak RSS, then copies the output to its own stdout (where the sandbox captures it).
The report's CPU time is the binary's own (``wait4``): children it starts and never waits for
are not in it. So the trusted side also takes the CPU time of the case's whole process tree from
the kernel (``SandboxResult.cpu_s``: the jail's init kills and reaps every process before it
exits, bubblewrap reaps the init, tttd reaps bubblewrap with ``wait4``); over the limit plus
:data:`JAIL_CPU_ALLOWANCE_S` is TLE, whatever the report says (issue 31). Independently of the
report, the sandbox's RLIMIT_CPU (3 s per process, as the contest's ``prlimit --cpu=3.1``),
address-space limit (2 GiB, as the contest's) and wall kill bound every case. The verdict follows the contest (AHC.md 4): exit 0 and no signal,
CPU <= 2.0 s, wall <= 2.5 s, peak RSS <= 1 GiB, then the trusted tester.
"""

from __future__ import annotations

import base64
import binascii
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from tttd.types import Limits, Program, SandboxResult

#: the contest's flags (AHC.md 4) minus the extra-library include paths, added when present
CONTEST_FLAGS = (
    "-std=gnu++20", "-O2", "-DONLINE_JUDGE", "-DATCODER", "-Wall", "-Wextra",
    "-mtune=native", "-march=native", "-fconstexpr-depth=2147483647",
    "-fconstexpr-loop-limit=2147483647", "-fconstexpr-ops-limit=2147483647",
)
MAX_BINARY_BYTES = 8 * 2**20
MAX_OUTPUT_BYTES = 8 * 2**20
COMPILE_TIMEOUT_S = 60.0
CPU_LIMIT_S, WALL_LIMIT_S, RSS_LIMIT_KB = 2.0, 2.5, 1024 * 1024
OUTER_WALL_S = 4.5  # the contest's outer `timeout 4.5`; the 2.5 s wall limit is judged from the report
#: the jail's own CPU in a case's process tree (bwrap, the harness and the wrapper: about 0.06 s
#: measured, 2 cores at load ~9); only this much CPU can go uncounted against the 2.0 s limit
JAIL_CPU_ALLOWANCE_S = 0.3

_COMPILE_WRAPPER = r"""
import base64, json, os, subprocess, sys
cmd = sys.argv[1:]
try:
    rc = subprocess.run(cmd, stdin=subprocess.DEVNULL, timeout=float(os.environ.get("TTTD_CXX_TIMEOUT", "60"))).returncode
except subprocess.TimeoutExpired:
    sys.stderr.write("compile timed out\n"); sys.exit(3)
except OSError as e:
    sys.stderr.write("cannot run the compiler: %s\n" % e); sys.exit(4)
if rc != 0:
    sys.exit(1)
try:
    data = open("a.out", "rb").read(@CAP@ + 1)
except OSError:
    data = b""
if not data:
    sys.stderr.write("the compiler produced no binary\n"); sys.exit(1)
if len(data) > @CAP@:
    sys.stderr.write("the binary exceeds @CAP@ bytes\n"); sys.exit(1)
with open("result.json", "w") as f:
    json.dump({"binary": base64.b64encode(data).decode()}, f)
"""

_RUN_WRAPPER = r"""
import json, os, resource, sys, time
os.chmod("a.out", 0o700)
fi = os.open("input.txt", os.O_RDONLY)
fo = os.open("out.txt", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
t0 = time.monotonic()
pid = os.fork()
if pid == 0:
    try:
        os.dup2(fi, 0); os.dup2(fo, 1); os.close(fi); os.close(fo)
        os.execv("./a.out", ["./a.out"])
    finally:
        os._exit(127)
os.close(fi); os.close(fo)
_, status, ru = os.wait4(pid, 0)
wall = time.monotonic() - t0
rep = {"exit": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None,
       "signal": os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
       "cpu_s": ru.ru_utime + ru.ru_stime, "wall_s": wall, "maxrss_kb": ru.ru_maxrss}
size = os.path.getsize("out.txt")
rep["bytes"] = size
rep["utf8"] = True
if size <= @CAP@:
    data = open("out.txt", "rb").read()
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        rep["utf8"] = False
    else:
        view = memoryview(data)
        while view:
            view = view[os.write(1, view):]
with open("result.json", "w") as f:
    json.dump(rep, f)
"""


@lru_cache(maxsize=None)
def find_compiler(name: str | None = None) -> str:
    """The C++ compiler: ``name``, else ``$TTTD_CXX``, else g++-12 (the contest's), else g++."""
    for cand in ([name] if name else []) + [os.environ.get("TTTD_CXX", ""), "g++-12", "g++"]:
        if cand and shutil.which(cand):
            return shutil.which(cand)  # type: ignore[return-value]
    raise FileNotFoundError("no C++ compiler found (install g++, or set TTTD_CXX)")


def _multiarch(cxx: str) -> str:
    try:
        out = subprocess.run([cxx, "-print-multiarch"], capture_output=True, text=True, timeout=30)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def _chain(path: str) -> list[str]:
    """A path, every symlink on the way to its target, and the target."""
    out = []
    seen = set()
    while path and path not in seen:
        seen.add(path)
        out.append(path)
        if not os.path.islink(path):
            break
        path = os.path.join(os.path.dirname(path), os.readlink(path))
    out.append(os.path.realpath(out[-1]))
    return out


@lru_cache(maxsize=None)
def toolchain_paths(cxx: str) -> tuple[str, ...]:
    """Host paths g++ and the compiled programs need inside the jail (``Limits.toolchain``): the
    compiler driver, binutils (as, ld), GCC's private dirs, the system headers and libraries."""
    arch = _multiarch(cxx)
    paths: list[str] = []
    for tool in (cxx, shutil.which("as"), shutil.which("ld"), shutil.which("ld.bfd")):
        if tool:
            paths += _chain(tool)
    paths += ["/usr/lib/gcc", "/usr/libexec/gcc", "/usr/include", "/usr/local/include",
              "/usr/lib64", "/lib64", "/etc/ld.so.cache"]
    if arch:
        paths += [f"/usr/lib/{arch}", f"/lib/{arch}"]
    seen: dict[str, None] = {}
    for p in paths:
        if os.path.exists(p):
            seen.setdefault(p, None)
    return tuple(seen)


@lru_cache(maxsize=None)
def library_flags() -> tuple[str, ...]:
    """The contest's extra libraries where this system has them (AHC.md 4): GMP (libgmp-dev),
    Boost headers (libboost-dev), Eigen (libeigen3-dev), and the AtCoder Library when
    ``$TTTD_AC_LIBRARY`` points to its checkout (it has no Debian package)."""
    flags: list[str] = []
    ac = os.environ.get("TTTD_AC_LIBRARY")
    if ac and os.path.isdir(os.path.join(ac, "atcoder")):
        flags.append(f"-I{ac}")
    if os.path.isdir("/usr/include/eigen3"):
        flags.append("-I/usr/include/eigen3")
    if os.path.exists("/usr/include/gmpxx.h"):
        flags += ["-lgmpxx", "-lgmp"]
    return tuple(flags)


def extra_paths() -> tuple[str, ...]:
    ac = os.environ.get("TTTD_AC_LIBRARY")
    return (os.path.realpath(ac),) if ac and os.path.isdir(ac) else ()


def compile_program(source: str, cxx: str | None = None, timeout_s: float = COMPILE_TIMEOUT_S) -> Program:
    """The jailed compile of ``source`` (saved as Main.cpp, as the contest does)."""
    cxx = find_compiler(cxx)
    cmd = [sys.executable, "-I", "-S", "-c", _COMPILE_WRAPPER.replace("@CAP@", str(MAX_BINARY_BYTES)),
           cxx, *CONTEST_FLAGS, "-o", "a.out", "Main.cpp", *library_flags()]
    limits = Limits(wall_s=timeout_s + 10.0, cpu_s=timeout_s + 5.0, memory_mb=2048, file_size_mb=64,
                    processes=32, output_bytes=16_384, result_mb=16,
                    toolchain=toolchain_paths(cxx) + extra_paths())
    files = {"Main.cpp": source}
    return Program(command=cmd, files=files, limits=limits)


CPP_UNITS = (".cpp", ".cc", ".cxx")


def compile_files(files: dict[str, str], cxx: str | None = None, timeout_s: float = COMPILE_TIMEOUT_S) -> Program:
    """The jailed compile of a multi-file program (issue 37): every translation unit (``.cpp``,
    ``.cc``, ``.cxx``) with the contest's flags, headers beside them; the paths were checked by
    :func:`tttd.multifile.check_files` (the sandbox checks them again). ValueError when there is
    no translation unit."""
    units = sorted(p for p in files if p.lower().endswith(CPP_UNITS))
    if not units:
        raise ValueError("the program has no C++ translation unit (.cpp, .cc, .cxx)")
    prog = compile_program("", cxx, timeout_s)
    assert prog.command is not None
    cut = prog.command.index("Main.cpp")
    prog.command[cut:cut + 1] = units
    prog.files = dict(files)
    return prog


def case_program(binary: bytes, input_text: str, cxx: str | None = None) -> Program:
    """One case: the binary reads ``input_text`` on stdin, under the contest's limits."""
    cmd = [sys.executable, "-I", "-S", "-c", _RUN_WRAPPER.replace("@CAP@", str(MAX_OUTPUT_BYTES))]
    limits = Limits(wall_s=OUTER_WALL_S, cpu_s=3.0, memory_mb=2048,
                    file_size_mb=MAX_OUTPUT_BYTES // 2**20 + 1, processes=8,
                    output_bytes=MAX_OUTPUT_BYTES, result_mb=1,
                    toolchain=toolchain_paths(find_compiler(cxx)))
    return Program(command=cmd, files={"a.out": binary, "input.txt": input_text}, limits=limits)  # type: ignore[dict-item]


# ----------------------------------------------------------------------------- verdicts

@dataclass
class Compiled:
    ok: bool
    binary: bytes = b""
    message: str = ""


def read_compile(res: SandboxResult, tail_chars: int = 2000) -> Compiled:
    """The compile's outcome: the binary, or the compiler's message tail (as the paper shows)."""
    log = (res.stderr or "").strip()
    if len(log) > tail_chars:
        log = "..." + log[-tail_chars:]
    if res.status == "timeout":
        return Compiled(False, message=f"compilation timed out ({res.message})")
    if res.ok and isinstance(res.value, dict) and isinstance(res.value.get("binary"), str):
        try:
            binary = base64.b64decode(res.value["binary"], validate=True)
        except (binascii.Error, ValueError):
            return Compiled(False, message="compilation produced an unreadable binary")
        if binary:
            return Compiled(True, binary=binary, message=log)
    detail = log or res.message or f"compiler exit status {res.returncode}"
    return Compiled(False, message=detail)


@dataclass
class CaseRun:
    """What one case run produced: a contest status (AC before the tester, RE, TLE, MLE, OLE,
    IE for an internal error) plus the measured resources and the output."""

    status: str
    message: str = ""
    output: str = ""
    cpu_s: float = 0.0
    wall_s: float = 0.0
    maxrss_kb: int = 0
    stderr: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


_MEMORY_MARKERS = ("std::bad_alloc", "Cannot allocate memory", "out of memory")


def read_case(res: SandboxResult) -> CaseRun:
    """Turn a case's sandbox result into a contest verdict (before the tester runs)."""
    err = res.stderr or ""
    if res.cpu_s is not None and res.cpu_s > CPU_LIMIT_S + JAIL_CPU_ALLOWANCE_S:
        return CaseRun("TLE", f"CPU time of all the case's processes {res.cpu_s:.2f} s exceeds {CPU_LIMIT_S:g} s "
                       f"(+{JAIL_CPU_ALLOWANCE_S:g} s for the jail's own processes)", cpu_s=res.cpu_s,
                       wall_s=res.wall_s, stderr=err)
    if res.status == "timeout":
        return CaseRun("TLE", f"time limit exceeded ({res.message})", wall_s=res.wall_s, stderr=err)
    rep = res.value if isinstance(res.value, dict) else None
    if rep is None:
        if res.status == "memory":
            return CaseRun("MLE", res.message, stderr=err)
        return CaseRun("IE", f"the case runner failed: {res.status}: {res.message or err[-300:]}", stderr=err)

    def num(key: str) -> float:
        v = rep.get(key)
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else 0.0

    run = CaseRun("AC", cpu_s=num("cpu_s"), wall_s=num("wall_s"), maxrss_kb=int(num("maxrss_kb")), stderr=err)
    sig, code = rep.get("signal"), rep.get("exit")
    bad_alloc = any(m in err[-2000:] for m in _MEMORY_MARKERS)
    if run.cpu_s > CPU_LIMIT_S or sig == 24 or (sig == 9 and run.cpu_s >= CPU_LIMIT_S):
        run.status, run.message = "TLE", f"CPU time {run.cpu_s:.2f} s exceeds {CPU_LIMIT_S:g} s"
        return run
    if run.maxrss_kb > RSS_LIMIT_KB or bad_alloc:  # before wall time: load does not change it
        run.status = "MLE"
        run.message = f"memory limit exceeded (peak {run.maxrss_kb // 1024} MiB, limit {RSS_LIMIT_KB // 1024} MiB)"
        return run
    if run.wall_s > WALL_LIMIT_S:
        run.status, run.message = "TLE", f"wall time {run.wall_s:.2f} s exceeds {WALL_LIMIT_S:g} s"
        return run
    if sig == 25:  # SIGXFSZ: a file (stdout included) grew past the size limit
        run.status, run.message = "OLE", f"output limit exceeded ({MAX_OUTPUT_BYTES} bytes)"
        return run
    if sig is not None:
        run.status, run.message = "RE", f"runtime error: killed by signal {sig}" + _err_tail(err)
        return run
    if code != 0:
        if code == 127 and not err.strip():
            run.status, run.message = "RE", "runtime error: the binary could not be started"
        else:
            run.status, run.message = "RE", f"runtime error: exit status {code}" + _err_tail(err)
        return run
    if num("bytes") > MAX_OUTPUT_BYTES:
        run.status, run.message = "OLE", f"output exceeds {MAX_OUTPUT_BYTES} bytes"
        return run
    if rep.get("utf8") is False:
        run.status, run.message = "WA", "wrong answer: not utf-8"
        return run
    run.output = res.stdout
    return run


def _err_tail(err: str, n: int = 300) -> str:
    err = err.strip()
    return f"; stderr: {err[-n:]}" if err else ""
