"""The speed kit's controller: the trusted half of the two-process harness. Runs INSIDE the jail.

Self-contained (stdlib, plus numpy/torch when the task uses them): the trusted process sends its
source as the sandboxed program, with the problem module, the candidate's code, the worker's and
the wire's sources and the protocol as call arguments (stdin of the jail, never argv or the
environment), and gets back plain data (a verdict, per-case times, small outputs for the trusted
re-check). ``run_record(.., sandbox=False)`` calls :func:`evaluate` in the caller's process.

The candidate never runs in this process. :func:`evaluate`:

1. makes this process non-dumpable (``PR_SET_DUMPABLE 0``: a process of the same uid can neither
   ptrace it nor open its ``/proc/PID/mem``/``environ``; the jail's seccomp filter denies ptrace and
   ``process_vm_*`` besides) and loads the problem module privately (generator, reference, check);
2. starts the worker (:mod:`tttd.tasks.speed.worker`) first: a fresh interpreter with only its
   two pipes (no result pipe, no inherited memory), which imports the trusted heavy modules the
   task uses (numpy, torch) while this process loads the problem, then the candidate, and only
   ever calls it; the phases' wall times are in the record (``phases_ms``);
3. measures the IPC round trip (20 empty requests, ``ipc_pings``, before the candidate is
   imported, after the pinning of one-thread tasks and one unmeasured request that waits for the
   worker's start-up), reported as ``ipc``;
4. every call: draws the seed (test seeds from the trusted process; timed runs from ``os.urandom``
   at that moment), generates the inputs, copies them into the shared region, starts the clock,
   sends the request, stops the clock when the answer arrives, copies the output out and checks
   it against the reference computed here on the same inputs (the worker only ever saw a copy).
   Test calls, warm-up calls and timed calls are the same code path, all checked;
5. time of a call = wall time from request to answer minus the *smallest* round trip of step 3
   (a lower bound of the overhead: the subtraction can never make a call faster than it was);
6. worker CPU time from the kernel (the jail cgroup's ``cpu.stat`` when visible, else the CPU
   clocks of every process but this one and its ancestors, see :class:`CpuMeter`), read before and
   after every call: work done between calls (after the answer) beyond 20% of the timed total + 2 ms,
   or over 25% of a 30 ms quiet window after the last call (this process asleep, an honest worker
   blocked on its pipe), is an ``escape`` verdict, so work moved to threads, children or other
   processes that outlive a call is seen;
7. a worker that dies, hangs, floods its answer pipe or answers with malformed data gets one
   verdict (``crashed``, ``timeout``, ``tamper``); this process never blocks on it past the deadline.

What this guarantees and what not: docs/sandbox.md ("The speed kit's two processes").
"""

from __future__ import annotations

import math as _math
import os as _os
import select as _select
import struct as _struct
import subprocess as _subprocess
import sys as _sys
import time as _time
import types as _types

_perf_ns = _time.perf_counter_ns
_urandom = _os.urandom


class Verdict(Exception):
    """Ends an evaluation with a verdict (stage, message)."""

    def __init__(self, stage: str, message: str):
        super().__init__(message)
        self.stage, self.message = stage, message


def _load_private(source: str, name: str = "_tttd_speed_problem"):
    """A module executed from ``source`` and kept out of ``sys.modules`` (only while it executes is
    it there: class machinery such as ``dataclasses`` looks its module up by name)."""
    mod = _types.ModuleType(name)
    mod.__file__ = f"<{name}>"
    before = _sys.modules.get(name)
    _sys.modules[name] = mod
    try:
        exec(compile(source, mod.__file__, "exec"), mod.__dict__)
    finally:
        if before is None:
            _sys.modules.pop(name, None)
        else:
            _sys.modules[name] = before
    return mod


def _undumpable() -> bool:
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0) == 0  # PR_SET_DUMPABLE
    except Exception:  # noqa: BLE001
        return False


# ------------------------------------------------------------------------------ worker CPU time


class CpuMeter:
    """CPU time (ns) of everything in the jail except this process and its ancestors.

    Read twice per call, so it is kept cheap (about 50 us instead of 250-350 us a reading in the
    jail with one other process, measured at load 14-16): in the jail the list of processes is
    taken again only when a process or thread was created since the last read (the last pid
    allocated in the jail's pid namespace, from
    ``/proc/loadavg``, read *before* the listing: anything created after it changes that value and
    is listed at the next read), and every ``/proc/PID/stat`` stays open and is re-read with
    ``pread`` (an exited process's file reads as an error: its time is in its parent's or the
    jail init's reaped-children counters, which are read every time)."""

    def __init__(self, worker_pid: int, jail: bool):
        self.worker, self.jail = worker_pid, jail
        self.cgroup = None
        self.mine = {_os.getpid()}
        self.tick = 10**9 // _os.sysconf("SC_CLK_TCK")
        self.stats: dict[int, int | None] = {}  # pid -> open /proc/PID/stat (jail; None: read by path)
        self.last_pid = None
        self.loadavg = self.init_stat = None
        p = _os.getpid()
        while p > 1:
            p = _ppid(p)
            self.mine.add(p)
        if jail:
            try:
                with open("/proc/self/cgroup") as f:
                    rel = f.read().strip().split("::", 1)[1]
                path = "/sys/fs/cgroup" + (rel if rel != "/" else "") + "/cpu.stat"
                with open(path) as f:
                    f.read()
                self.cgroup = path
            except (OSError, IndexError):
                self.cgroup = None
            try:
                self.loadavg = _os.open("/proc/loadavg", _os.O_RDONLY)
                self.init_stat = _os.open("/proc/1/stat", _os.O_RDONLY)
            except OSError:
                self.loadavg = self.init_stat = None
        self.source = "cgroup cpu.stat" if self.cgroup else "process CPU clocks"

    def read(self) -> int:
        if self.cgroup is not None:
            with open(self.cgroup) as f:
                usage = int(f.readline().split()[1]) * 1000
            return max(0, usage - _time.process_time_ns() - _proc_cpu(1, children=False))
        if self.jail and self.loadavg is not None:
            return self._read_jail()
        total = 0
        for pid in self._pids():
            total += _proc_cpu(pid)
        if self.jail:  # orphans the jail's init reaped
            total += _proc_cpu(1) - _proc_cpu(1, children=False)
        return total

    def _read_jail(self) -> int:
        try:
            last = _os.pread(self.loadavg, 256, 0).split()[-1]
        except (OSError, IndexError):
            last = None
        if last is None or last != self.last_pid:
            self._relist()
            self.last_pid = last
        total = self._reaped(self.init_stat) or 0  # orphans the jail's init reaped
        gone = []
        for pid, fd in self.stats.items():
            if fd is None:  # its stat could not be kept open (out of descriptors): read it the slow way
                total += _proc_cpu(pid)
                continue
            reaped = self._reaped(fd)
            if reaped is None:  # exited and reaped: its time is in its parent's counters now
                gone.append(pid)
                continue
            try:
                total += reaped + _time.clock_gettime_ns(((~pid) << 3) | 2)  # the process's CPUCLOCK_SCHED
            except OSError:
                total += reaped + _proc_cpu(pid, children=False)  # its threads' schedstat
        for pid in gone:
            _os.close(self.stats.pop(pid))
        return total

    def _reaped(self, fd) -> int | None:
        """A process's reaped children's CPU time (``cutime`` + ``cstime``, in ticks) from its open
        stat; None when the process is gone."""
        try:
            fields = _os.pread(fd, 4096, 0).rsplit(b")", 1)[1].split()
            return (int(fields[13]) + int(fields[14])) * self.tick
        except OSError:
            return None
        except (IndexError, ValueError):
            return 0

    def _relist(self) -> None:
        self._close_stats()
        for pid in self._pids():
            try:
                self.stats[pid] = _os.open(f"/proc/{pid}/stat", _os.O_RDONLY)
            except FileNotFoundError:  # exited since the listing: in its parent's counters
                pass
            except OSError:
                self.stats[pid] = None

    def _close_stats(self) -> None:
        for fd in self.stats.values():
            if fd is not None:
                _os.close(fd)
        self.stats.clear()

    def close(self) -> None:
        self._close_stats()
        for fd in (self.loadavg, self.init_stat):
            if fd is not None:
                _os.close(fd)
        self.loadavg = self.init_stat = None

    def _pids(self):
        if self.jail:
            try:
                return [int(p) for p in _os.listdir("/proc") if p.isdigit() and int(p) not in self.mine]
            except OSError:
                return [self.worker]
        out, frontier = [self.worker], [self.worker]
        try:
            table = {}
            for p in _os.listdir("/proc"):
                if p.isdigit():
                    table.setdefault(_ppid(int(p)), []).append(int(p))
        except OSError:
            return out
        while frontier:
            kids = table.get(frontier.pop(), [])
            out += kids
            frontier += kids
        return out


def _ppid(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def _proc_cpu(pid: int, children: bool = True) -> int:
    """CPU time (ns) of one process: its CPU clock (every thread, exited ones included; else the
    live threads' schedstat) plus its reaped children's time (``cutime``/``cstime``, in ticks)."""
    total = 0
    try:
        try:
            total = _time.clock_gettime_ns(((~pid) << 3) | 2)  # the process's CPUCLOCK_SCHED
        except OSError:
            for t in _os.listdir(f"/proc/{pid}/task"):
                try:
                    with open(f"/proc/{pid}/task/{t}/schedstat") as f:
                        total += int(f.read().split()[0])
                except (OSError, ValueError, IndexError):
                    pass
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        if children:
            total += (int(fields[13]) + int(fields[14])) * (10**9 // _os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        pass
    return total


# ------------------------------------------------------------------------------ the worker


class Worker:
    """The worker process and its pipes, seen from the controller: every read has a deadline and a
    size cap, so a worker that hangs, floods or stops reading cannot stall this process."""

    def __init__(self, script: str, cwd: str, deadline_ns: int):
        self.deadline = deadline_ns
        req_r, self.req = _os.pipe()
        self.resp, resp_w = _os.pipe()
        env = {k: v for k, v in _os.environ.items()}
        env.update(OMP_WAIT_POLICY="PASSIVE", GOMP_SPINCOUNT="0")  # idle pool threads sleep, never spin
        try:
            self.proc = _subprocess.Popen(
                [_sys.executable, "-I", "-S", script, str(req_r), str(resp_w)], cwd=cwd, env=env,
                stdin=_subprocess.DEVNULL, close_fds=True, pass_fds=(req_r, resp_w), start_new_session=True)
        finally:
            _os.close(req_r)
            _os.close(resp_w)
        _os.set_blocking(self.resp, False)
        _os.set_blocking(self.req, False)
        self.buf = bytearray()

    def send(self, obj) -> None:
        from_wire = _sys.modules["_tttd_speed_wire"]
        data = memoryview(from_wire.pack_msg(obj))
        while data:
            left = self._left()
            _, w, _ = _select.select([], [self.req], [], left)
            if not w:
                raise Verdict("timeout", "the worker stopped reading its requests")
            try:
                data = data[_os.write(self.req, data):]
            except BlockingIOError:
                continue
            except (BrokenPipeError, OSError):
                raise Verdict("crashed", self._death("before the request was sent")) from None

    def recv(self, what: str):
        wire = _sys.modules["_tttd_speed_wire"]
        buf = self.buf
        while True:
            if len(buf) >= 4:
                n = _struct.unpack(">I", bytes(buf[:4]))[0]
                if n > wire.MAX_MSG:
                    raise Verdict("tamper", f"{what}: the worker's answer is {n} bytes long (flooding its pipe)")
                if len(buf) >= 4 + n:
                    body = bytes(buf[4:4 + n])
                    del buf[:4 + n]
                    try:
                        return __import__("json").loads(body)
                    except (ValueError, RecursionError):
                        raise Verdict("tamper", f"{what}: the worker's answer is not a message") from None
            r, _, _ = _select.select([self.resp], [], [], self._left())
            if not r:
                raise Verdict("timeout", f"{what}: no answer from the worker before the evaluation's deadline")
            try:
                chunk = _os.read(self.resp, 1 << 16)
            except BlockingIOError:
                continue
            if not chunk:
                raise Verdict("crashed", self._death(f"during {what}"))
            buf += chunk

    def _left(self) -> float:
        left = (self.deadline - _perf_ns()) / 1e9
        if left <= 0:
            raise Verdict("timeout", "the evaluation's deadline passed")
        return left

    def _death(self, when: str) -> str:
        try:
            code = self.proc.wait(timeout=2)
        except _subprocess.TimeoutExpired:
            return f"the worker closed its answer pipe {when}"
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        return f"the worker {how} {when}"

    def stop(self) -> None:
        import signal

        for fd in (self.req, self.resp):
            try:
                _os.close(fd)
            except OSError:
                pass
        try:
            _os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            self.proc.kill()
            self.proc.wait(timeout=5)
        except Exception:  # noqa: BLE001
            pass


# ------------------------------------------------------------------------------ evaluation


def evaluate(config: dict, problem: str, candidate: str, modules: dict | None = None,
             workdir: str | None = None, worker: str = "", wire: str = "") -> dict:
    """Run one evaluation (see the module docstring) and return its record (plain data)."""
    t_start = _perf_ns()
    device = config.get("device", "cpu")
    rec: dict = {"ok": False, "stage": "setup", "message": "", "tests": [], "benchmarks": [],
                 "test_outputs": [], "bench_outputs": [], "device": device, "harness": "two-process"}
    w = runner = None
    phases: dict = {}
    rec["phases_ms"] = phases  # where the evaluation's wall time went (benchmarks/harness_bench.py)

    def phase(name: str, t=[t_start]) -> None:
        now = _perf_ns()
        phases[name] = round((now - t[0]) / 1e6, 3)
        t[0] = now

    try:
        rec["controller_undumpable"] = _undumpable()
        if config.get("jail", True) and not rec["controller_undumpable"]:
            raise Verdict("setup", "could not make the controller non-dumpable")
        wire_mod = _load_private(wire, "_tttd_speed_wire")
        _sys.modules["_tttd_speed_wire"] = wire_mod
        base = workdir or _os.getcwd()
        folder = _os.path.join(base, "tttd_speed_modules")
        _os.makedirs(folder, exist_ok=True)
        for name, src in dict(modules or {}, submission=candidate).items():
            with open(_os.path.join(folder, name + ".py"), "w", encoding="utf-8") as f:
                f.write(src)
        script = _os.path.join(base, "tttd_speed_worker.py")
        with open(script, "w", encoding="utf-8") as f:
            f.write(wire + "\n\n" + worker)
        deadline = t_start + int(float(config.get("deadline_s", 1e6)) * 1e9)
        phase("setup")
        w = Worker(script, base, deadline)  # first: its interpreter starts while this process loads
        w.send({"op": "preload", "sys_path": [p for p in _sys.path if p],
                "modules": _preloads(problem, candidate, *(modules or {}).values())})
        phase("worker_spawn")
        if device == "cuda":
            import torch

            if not torch.cuda.is_available():
                raise Verdict("setup", "no CUDA device is visible in the sandbox")
        prob = _load_private(problem)
        gen, ref = prob.generate_input, getattr(prob, config.get("ref_name", "reference"))
        check = getattr(prob, "check", None) or _default_check(config)
        runner = _Runner(config, w, wire_mod, prob, gen, ref, check, base)
        phase("problem_load")
        # pinned once this process has loaded (the worker's preload ran beside it), before the
        # round trips are measured: they are measured as every call runs, on the shared CPU
        rec["pinned_cpu"] = _pin_together(w.proc.pid, config)
        w.send({"op": "ping"})  # not measured: it waits for the worker's start-up and preload
        w.recv("the worker's start-up")
        phase("worker_ready")
        rec["ipc"] = runner.calibrate()
        phase("calibrate")
        rec["stage"] = "import"
        runner.start()
        phase("import")
        rec["stage"] = "test"
        budget = [int(config.get("return_output_bytes", 0))]
        for i, case in enumerate(config["tests"]):
            seed = int(case["seed"])
            args = {k: v for k, v in case.items() if k != "seed"}
            _, out = runner.call(args, seed, f"test {i} ({_fmt_case(args)})")
            rec["tests"].append({"seed": seed, "nbytes": _nbytes(out)})
            rec["test_outputs"].append(_to_plain(out, budget))
        phase("tests")
        benches = config.get("benchmarks", [])
        if benches:
            rec["stage"] = "benchmark"
            runner.warm_up(benches[0])
            phase("warm_up")
            for j, case in enumerate(benches):
                if config.get("warm_each", True):  # untimed: compilation/autotuning for this shape
                    runner.call(case, _new_seed(), f"warm-up of benchmark {j} ({_fmt_case(case)})")
                stats, sample = runner.bench(case, f"benchmark {j} ({_fmt_case(case)})")
                rec["benchmarks"].append(stats)
                rec["bench_outputs"].append({"seed": sample[0], "nbytes": _nbytes(sample[1]),
                                             "output": _to_plain(sample[1], budget)})
            phase("benchmarks")
            runner.escape_verdict()
            phase("quiet_window")
        rec["worker_cpu"] = {"source": runner.meter.source, "inside_ms": runner.inside_ns / 1e6,
                             "outside_ms": runner.outside_ns / 1e6}
        rec["ok"] = True
        rec["stage"] = "done"
    except Verdict as v:
        rec["stage"], rec["message"] = v.stage, v.message
    finally:
        if w is not None:
            w.stop()
        if runner is not None:
            runner.close()
        phase("stop")
    rec["wall_s"] = (_perf_ns() - t_start) / 1e9
    try:
        rec["cpus"] = sorted(_os.sched_getaffinity(0))  # pinned when the executor pins (pin_cpus)
    except (AttributeError, OSError):
        rec["cpus"] = []
    return rec


_PRELOADABLE = ("numpy", "torch")


def _preloads(*sources: str) -> list[str]:
    """The heavy trusted modules (numpy, torch) that the problem or the candidate imports: the
    worker imports them before the round-trip measurement, in parallel with this process's own
    imports (on an idle machine that overlaps most of the second interpreter's start-up)."""
    import re

    found = set()
    for src in sources:
        found.update(re.findall(r"^\s*(?:import|from)\s+(numpy|torch)\b", src, re.M))
    return [m for m in _PRELOADABLE if m in found]


def _pin_together(worker_pid: int, config: dict):
    """One-thread tasks: the controller and the worker share one CPU (the first allowed). The two
    never run at once (one waits while the other works), and the inputs the controller just wrote
    are in that CPU's caches, as they would be for a harness-free call; None when not pinned."""
    if int(config.get("threads", 1)) != 1 or not config.get("pin_together", True):
        return None
    try:
        cpu = min(_os.sched_getaffinity(0))
        _os.sched_setaffinity(0, {cpu})
        _os.sched_setaffinity(worker_pid, {cpu})
        return cpu
    except (AttributeError, OSError, ValueError):
        return None


def _new_seed() -> int:
    return int.from_bytes(_urandom(6), "little")


def _fmt_case(case: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in case.items() if k != "seed")


def _nbytes(x) -> int:
    return _sys.modules["_tttd_speed_wire"].nbytes_of(x)


def _default_check(config: dict):
    rtol, atol = float(config.get("rtol", 0.0)), float(config.get("atol", 0.0))

    def check(out, expected):
        import numpy as np

        a = np.asarray(out.detach().cpu() if hasattr(out, "detach") else out)
        b = np.asarray(expected.detach().cpu() if hasattr(expected, "detach") else expected)
        if a.shape != b.shape:
            return f"shape {a.shape}, expected {b.shape}"
        if a.dtype != b.dtype:
            return f"dtype {a.dtype}, expected {b.dtype}"
        if rtol == 0 and atol == 0:
            if not np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"):
                n = int(np.sum(~((a == b) | (np.isnan(a) & np.isnan(b))))) if a.dtype.kind in "fc" \
                    else int(np.sum(a != b))
                return f"{n} of {a.size} elements differ (exact match required)"
            return None
        ok = np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=True)
        if not ok.all():
            i = int(np.argmax(~ok.ravel()))
            return (f"{int((~ok).sum())} of {a.size} elements differ beyond atol={atol:g}, "
                    f"rtol={rtol:g} (first at flat index {i}: {a.ravel()[i]!r} vs {b.ravel()[i]!r})")
        return None

    return check


def _to_plain(x, limit: list):
    """Output as numpy data for the trusted re-check, or None when over the byte budget."""
    np = _sys.modules.get("numpy")
    torch = _sys.modules.get("torch")
    if limit[0] <= 0:
        return None
    if torch is not None and type(x) is torch.Tensor:
        if x.numel() * x.element_size() > limit[0]:
            return None
        x = x.detach().cpu()
        try:
            x = x.numpy()
        except TypeError:  # a dtype numpy lacks (bfloat16, float8): as float32, exact for those
            x = x.float().numpy()
    if np is not None and type(x) is np.ndarray:
        if x.nbytes > limit[0]:
            return None
        limit[0] -= x.nbytes
        return x
    if isinstance(x, (tuple, list)):
        parts = [_to_plain(v, limit) for v in x]
        return None if any(p is None for p in parts) else parts
    return x


class _Runner:
    """Calls through the worker: inputs staged in the shared region, timed from this side, checked here."""

    def __init__(self, cfg: dict, w: Worker, wire, prob, gen, ref, check, base: str):
        self.cfg, self.w, self.wire, self.gen, self.ref, self.check = cfg, w, wire, gen, ref, check
        self.cuda = cfg.get("device", "cpu") == "cuda"
        self.pack = getattr(prob, "wire_pack", None)
        self.base = base
        shm = "/dev/shm" if _os.access("/dev/shm", _os.W_OK) else base
        self.shm_path = _os.path.join(shm, f"tttd-speed-{_os.getpid()}-{_urandom(4).hex()}")
        self.shm_fd, self.region, self.size = None, None, 0
        self.ipc_min = self.ipc_cpu_min = 0
        # CPU tasks: the worker's CPU time during the call (kernel-accounted, every thread and
        # child; run-queue waits on a loaded machine do not count); GPU tasks: wall time
        self.clock = cfg.get("clock") or ("wall" if self.cuda else "cpu")
        self.walls: list[int] = []
        self.timed_ns = self.inside_ns = self.outside_ns = 0
        self.counting, self.last = False, None
        self.meter = None
        self.l2 = None
        if self.cuda and cfg.get("l2_flush"):
            import torch

            self.l2 = torch.empty(int(cfg.get("l2_flush_mb", 256)) * 2**20, dtype=torch.uint8, device="cuda")

    def start(self) -> None:
        init = {"sys_path": [p for p in _sys.path if p], "folder": _os.path.join(self.base, "tttd_speed_modules"),
                "entry": self.cfg.get("entry", "custom_kernel"), "device": self.cfg.get("device", "cpu"),
                "wire_module": self.cfg.get("wire_module", "reference") if self.pack else None}
        self.w.send(init)
        ans = self.w.recv("importing the program")
        if type(ans) is not dict or ans.get("ok") is not True:
            err = str(ans.get("error", "?"))[:2000] if type(ans) is dict else "malformed answer"
            raise Verdict("import", f"importing the program failed: {err}")

    def calibrate(self) -> dict:
        """The IPC round trip of an empty request, in wall time and in the worker's CPU time; the
        smallest of each is subtracted from every call (a lower bound of the overhead, so the
        subtraction never makes a call look faster than it was)."""
        self.meter = CpuMeter(self.w.proc.pid, bool(self.cfg.get("jail", True)))
        rtts, cpus = [], []
        # caches as cold as after computing a reference: one byte written in every 64-byte line of
        # 8 MiB (4x the L2 of the development machine). Not a full 8 MiB copy, as before: that took
        # 4.2 ms a ping, and glibc copies that large with non-temporal stores whose write-back
        # saturated memory during the ping (worker CPU minimum ~95 us against ~30 us after a 4 MiB
        # copy or this, at load 6), so more was subtracted than the round trip costs a call
        evict, fill = bytearray(8 << 20), bytes(range(256)) * ((8 << 20) // 64 // 256)
        for _ in range(max(5, int(self.cfg.get("ipc_pings", 20)))):
            evict[::64] = fill
            c0 = self.meter.read()
            t0 = _perf_ns()
            self.w.send({"op": "ping"})
            self.w.recv("a round-trip measurement")
            rtts.append(_perf_ns() - t0)
            cpus.append(self.meter.read() - c0)
        s, c = sorted(rtts), sorted(cpus)
        self.ipc_min, self.ipc_cpu_min = s[0], max(0, c[0])
        return {"min_us": s[0] / 1e3, "median_us": s[len(s) // 2] / 1e3, "pings": len(s),
                "cpu_min_us": c[0] / 1e3, "cpu_median_us": c[len(c) // 2] / 1e3, "clock": self.clock,
                "subtracted_us": (self.ipc_min if self.clock == "wall" else self.ipc_cpu_min) / 1e3}

    def _region_for(self, need: int) -> dict | None:
        """Grow the shared region to hold ``need`` input bytes and an output part; the message that
        tells the worker, or None when the region is unchanged."""
        out_cap = need + (8 << 20)  # outputs are at most about as large as the inputs in every shipped task
        total = need + out_cap
        if total <= self.size:
            return None
        total = max(total, 2 * self.size)
        if self.cuda:
            import torch

            buf = torch.zeros(total, dtype=torch.uint8, device="cuda")
            h = list(buf.untyped_storage()._share_cuda_())
            h = [x.hex() if isinstance(x, bytes) else x for x in h]
            self.region, self.size = self.wire.Region(buf, total, cuda=True), total
            return {"ipc": h, "size": total}
        import mmap

        if self.shm_fd is None:
            self.shm_fd = _os.open(self.shm_path, _os.O_RDWR | _os.O_CREAT | _os.O_EXCL, 0o600)
        _os.ftruncate(self.shm_fd, total)
        self.region, self.size = self.wire.Region(mmap.mmap(self.shm_fd, total), total), total
        return {"shm": self.shm_path, "size": total}

    def call(self, case: dict, seed: int, what: str):
        """One call: returns (time_ns, output copy). Raises Verdict on any failure."""
        try:
            data = self.gen(seed=seed, **case)
            packed = self.pack(data) if self.pack is not None else data
        except BaseException as e:  # noqa: BLE001 - a broken generator is a task bug
            raise Verdict("setup", f"the input generator failed for {what}: {type(e).__name__}: {e}")
        need = self.wire.nbytes_of(packed)
        try:
            msg = {"op": "call", "region": self._region_for(need)}
        except OSError as e:
            raise Verdict("setup", f"{what}: cannot make a shared region of {need} input bytes: {e}") from None
        # the CPU window opens before the inputs exist in the region: a worker thread polling the
        # region to start early works inside the window (or, between calls, is an escape)
        c0 = self.meter.read()
        if self.counting and self.last is not None:
            self.outside_ns += max(0, c0 - self.last)
        try:
            msg["tree"], lo = self.region.put(packed, 0, need)
        except self.wire.WireError as e:
            raise Verdict("setup", f"{what}: the inputs are not data: {e}") from None
        msg["out"] = [lo, self.size]
        del packed
        torch = _sys.modules.get("torch") if self.cuda else None
        if self.l2 is not None:
            self.l2.zero_()
        if torch is not None:
            torch.cuda.synchronize()
        t0 = _perf_ns()
        self.w.send(msg)
        ans = self.w.recv(what)
        try:
            if type(ans) is not dict or "ok" not in ans:
                raise self.wire.WireError("malformed answer")
            if ans["ok"] is not True:
                raise Verdict(self._stage(what), f"{what}: the function raised {str(ans.get('error'))[:2000]}")
            out = self.region.get(ans.get("tree"), copy=True, lo=lo, hi=self.size)
            if torch is not None:
                torch.cuda.synchronize()  # the copy is part of the time: it waits for the worker's kernels
        except self.wire.WireError as e:
            raise Verdict("tamper", f"{what}: the worker's answer is malformed: {e}") from None
        t1 = _perf_ns()
        c1 = self.meter.read()
        wall_ns = max(1, (t1 - t0) - self.ipc_min)
        cpu_ns = max(1, (c1 - c0) - self.ipc_cpu_min)
        t_ns = wall_ns if self.clock == "wall" else cpu_ns
        try:
            expected = self.ref(data)
        except BaseException as e:  # noqa: BLE001
            raise Verdict("setup", f"the reference failed for {what}: {type(e).__name__}: {e}")
        try:
            bad = self.check(out, expected)
        except BaseException as e:  # noqa: BLE001
            bad = f"the check failed on the output: {type(e).__name__}: {e}"
        if bad:
            raise Verdict(self._stage(what), f"{what}: wrong output: {bad}")
        del expected, data
        if self.counting:
            self.timed_ns += t_ns
            self.walls.append(wall_ns)
            self.inside_ns += max(0, c1 - c0)
        # the gap opens when the answer is in: the reference and the check run inside it, so work
        # left running in the worker competes for the gap's whole length, not the generator's alone
        self.last = c1
        return t_ns, out

    @staticmethod
    def _stage(what: str) -> str:
        return "test" if what.startswith("test") else "benchmark"

    def warm_up(self, case: dict) -> None:
        cap_ns = float(self.cfg.get("warmup_s", 0.01)) * 1e9
        t0 = _perf_ns()
        for _ in range(int(self.cfg.get("warmup_runs", 100))):
            self.call(case, _new_seed(), "warm-up")
            if _perf_ns() - t0 > cap_ns:
                break

    def bench(self, case: dict, what: str):
        cfg = self.cfg
        min_runs, max_runs = int(cfg.get("min_runs", 3)), int(cfg.get("max_runs", 100))
        rel_err = float(cfg.get("rel_err", 0.001))
        max_total_ns = float(cfg.get("max_time_s", 30.0)) * 1e9
        max_wall_ns = float(cfg.get("max_wall_s", 120.0)) * 1e9
        times: list[int] = []
        w0 = _perf_ns()
        keep = int.from_bytes(_urandom(2), "little") % max(1, min(max_runs, 3))
        sample = (None, None)
        self.counting, self.last, self.walls = True, None, []
        try:
            while True:
                seed = _new_seed()
                t, out = self.call(case, seed, what)
                if len(times) == keep:
                    sample = (seed, out)
                times.append(t)
                n = len(times)
                mean = sum(times) / n
                if n >= min_runs:
                    var = sum((x - mean) ** 2 for x in times) / (n - 1)
                    if _math.sqrt(var / n) < rel_err * mean:
                        break
                if n >= max_runs or mean * n > max_total_ns or _perf_ns() - w0 > max_wall_ns:
                    break
        finally:
            self.counting = False
        n = len(times)
        mean = sum(times) / n
        std = _math.sqrt(sum((x - mean) ** 2 for x in times) / (n - 1)) if n > 1 else 0.0
        srt = sorted(times)
        median = (srt[(n - 1) // 2] + srt[n // 2]) / 2
        return {"runs": n, "mean_ns": mean, "median_ns": median, "std_ns": std, "min_ns": srt[0],
                "max_ns": srt[-1], "clock": self.clock,
                "wall_median_ns": sorted(self.walls)[len(self.walls) // 2]}, sample

    def escape_verdict(self, quiet_s: float = 0.03) -> None:
        """Worker CPU time between timed calls (after its answers): work that outlived a call.

        Two readings: the gaps between benchmark calls (where the controller's own generator,
        reference and check share the pinned CPU with whatever the worker left running, so a
        background spinner gets only part of each gap), and a quiet window at the end in which the
        controller sleeps and an honest worker, blocked on its next request, uses no CPU at all."""
        c0 = self.meter.read()
        _time.sleep(quiet_s)
        quiet_ns = max(0, self.meter.read() - c0)
        if quiet_ns > 0.25 * quiet_s * 1e9 + 1e6:
            raise Verdict("escape", f"the worker's processes used {quiet_ns / 1e6:.1f} ms of CPU in a "
                                    f"{quiet_s * 1e3:.0f} ms quiet window after the last call (source "
                                    f"{self.meter.source}): work escaped the timed region")
        allowed = 0.2 * self.timed_ns + 2e6
        if self.outside_ns > allowed:
            raise Verdict("escape", f"the worker's processes used {self.outside_ns / 1e6:.1f} ms of CPU between "
                                    f"timed calls (timed total {self.timed_ns / 1e6:.1f} ms, source "
                                    f"{self.meter.source}): work escaped the timed region")

    def close(self) -> None:
        if self.meter is not None:
            self.meter.close()
        if self.shm_fd is not None:
            _os.close(self.shm_fd)
            try:
                _os.unlink(self.shm_path)
            except OSError:
                pass
