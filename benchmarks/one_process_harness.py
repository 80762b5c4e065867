"""BENCHMARK BASELINE ONLY: the speed kit's former one-process harness (tttd 0.3), kept here (outside
the package, never reachable as a mode of tttd) so benchmarks/harness_bench.py can measure the
two-process harness against it side by side. It is NOT safe: the candidate shares its process
(docs/sandbox.md, "The speed kit's two processes", says what that allowed).

The timing harness of the speed kit. It runs INSIDE the sandbox, next to the candidate.

This file is self-contained (stdlib, plus numpy/torch when the task uses them): the trusted
process sends its source as the sandboxed program, with the candidate's code, the task's problem
module and the protocol as call arguments, and gets back plain data (a verdict, per-case times,
small outputs for a trusted re-check). It is also importable as a module (``--no-sandbox``
benchmarks call :func:`evaluate` directly).

Protocol of :func:`evaluate` (one evaluation):

1. Capture, before any candidate code exists in the process: the timers (``perf_counter_ns``,
   CUDA events, ``torch.cuda.synchronize``), ``os.urandom``, and a snapshot of the functions of
   ``time``, ``os``, ``builtins``, ``numpy``, ``torch``, ``torch.Tensor``, ``torch.nn.functional``
   and ``torch.cuda`` (the objects themselves, compared by identity later).
2. Load the problem module (reference, input generator, check) privately: it is executed into a
   module object that is not in ``sys.modules``. The candidate can ``import reference`` / ``import
   task`` (public copies written as files next to it), which are separate objects: patching them
   does not change what the harness checks against.
3. Import the candidate from a real file (``submission.py``, so Triton can read its source) and
   re-check the snapshot.
4. Every call goes through one function, :func:`_call`: generate the inputs, synchronise, start
   the timer, call, stop the timer, snapshot the output at once (a CPU copy, or on a GPU a clone
   enqueued on the current stream right after the end event), synchronise, then compute the
   reference on freshly regenerated inputs (never shown to the candidate, computed only after its
   output was taken) and check. Test calls, warm-up calls and timed calls are the same code path,
   all timed and all checked, so a candidate cannot tell them apart.
5. Tests: every test case (seeds chosen by the trusted process) must pass. Then the benchmarks:
   warm-up on benchmark 0, then per benchmark one untimed warm call (``warm_each``: compilation
   and autotuning for that shape stay out of its mean; the output is still checked), then timed runs with fresh inputs from seeds drawn from
   ``os.urandom`` *at each run* (unknowable before the run, so results cannot be precomputed or
   cached across calls), until at least ``min_runs`` and the standard error of the mean is below
   ``rel_err`` of the mean, or ``max_runs``, or the time caps. Every timed output is checked.
6. Escape checks: OS threads alive after a call that were not there before it (work left
   running after the timer stopped), CPU time of other threads outside the timed regions
   (``/proc/self/task/*/schedstat``), and on a GPU the wall time to a device-wide synchronise
   against the CUDA-event time (work on a side stream that the end event does not wait for shows
   up only in the wall time; the output clone on the current stream also races with it and then
   fails the check). Python-level monkeypatching: the snapshot is re-checked after every call,
   and torch function/dispatch modes or trace hooks left active are refused. Rebinding by torch
   itself is accepted (a wrapper that unwraps to the original and whose code lives in torch's
   package: ``torch.compile`` wraps ``torch.manual_seed`` so).

What this can and cannot guarantee. The candidate runs in the same process, so in principle it
can reach anything the harness holds (``gc``, frames, ``ctypes``): rewrite the closures of the
harness, overwrite memory, fake the verdict. The harness does not pretend otherwise; it makes
the easy and the accidental ways fail loudly (patched timers or torch functions, leftover
threads, side streams, cached results, reading future inputs, touching the reference) and the
trusted process re-checks what it can: it regenerates the test inputs from its own seeds and
recomputes the reference and the check on the returned test outputs (CPU tasks), and one timed
output per benchmark from the seed the harness reports. Timings themselves are measured here and
cannot be re-derived outside; a candidate that forges them through ``ctypes``/frame surgery is
beyond this harness (it is plainly visible in its source, which is stored with every result).
"""

from __future__ import annotations

import builtins as _builtins
import math as _math
import os as _os
import sys as _sys
import threading as _threading
import time as _time
import types as _types

_perf_ns = _time.perf_counter_ns
_urandom = _os.urandom
_listdir = _os.listdir
_get_native_id = _threading.get_native_id
_open = _builtins.open
_HOOKS = [(None, None)]  # the trace/profile hooks before the candidate was imported

WATCHED = ("time", "os", "builtins", "numpy", "torch", "torch.Tensor", "torch._C.TensorBase",
           "torch.nn.functional", "torch.cuda", "torch.cuda.Event")


class Verdict(Exception):
    """Ends an evaluation with a verdict (stage, message)."""

    def __init__(self, stage: str, message: str):
        super().__init__(message)
        self.stage, self.message = stage, message


# ------------------------------------------------------------------------------ tamper checks


def _namespace(name: str):
    if name == "torch.Tensor":
        t = _sys.modules.get("torch")
        return getattr(t, "Tensor", None) if t else None
    if name == "torch._C.TensorBase":
        c = getattr(_sys.modules.get("torch"), "_C", None)
        return getattr(c, "TensorBase", None) if c else None
    if name == "torch.cuda.Event":
        cuda = _sys.modules.get("torch.cuda")
        return getattr(cuda, "Event", None) if cuda else None
    return _sys.modules.get(name)


def snapshot() -> dict:
    """{(namespace, attribute): object} for every callable or module in the watched namespaces."""
    snap = {}
    for name in WATCHED:
        ns = _namespace(name)
        if ns is None:
            continue
        for k, v in list(vars(ns).items()):
            if callable(v) or isinstance(v, (_types.ModuleType, staticmethod, classmethod, property)):
                snap[(name, k)] = v
    return snap


def _library_wrapper(new, old) -> bool:
    """True when ``new`` is a wrapper that torch itself installs around ``old`` (torch.compile
    rebinds ``torch.manual_seed`` this way): it unwraps to ``old`` and its code lives in torch."""
    torch = _sys.modules.get("torch")
    code = getattr(new, "__code__", None)
    if torch is None or code is None or not getattr(torch, "__file__", None):
        return False
    seen, f = 0, new
    while f is not old and seen < 8:
        f, seen = getattr(f, "__wrapped__", None), seen + 1
        if f is None:
            return False
    root = _os.path.dirname(_os.path.realpath(torch.__file__)) + _os.sep
    return f is old and _os.path.realpath(code.co_filename).startswith(root)


def tampered(snap: dict) -> list[str]:
    """Attributes of the snapshot that were rebound or deleted since."""
    bad = []
    missing = object()
    for (name, k), v in snap.items():
        ns = _namespace(name)
        now = vars(ns).get(k, missing) if ns is not None else missing
        if now is not v and not _library_wrapper(now, v):
            bad.append(f"{name}.{k}")
    return bad


def _modes_active(torch) -> list[str]:
    out = _torch_modes() if torch is not None else []
    if (_sys.gettrace(), _sys.getprofile()) != _HOOKS[0]:  # (a debugger/coverage run sets its own first)
        out.append("a trace/profile hook")
    return out


def _torch_modes() -> list[str]:
    out = []
    try:
        from torch.overrides import _get_current_function_mode_stack

        if _get_current_function_mode_stack():
            out.append("a TorchFunctionMode")
    except Exception:
        pass
    try:
        from torch.utils._python_dispatch import _get_current_dispatch_mode_stack

        if _get_current_dispatch_mode_stack():
            out.append("a TorchDispatchMode")
    except Exception:
        pass
    return out


# ------------------------------------------------------------------------------ threads


def _tids() -> set[int]:
    try:
        return {int(t) for t in _listdir("/proc/self/task")}
    except OSError:
        return set()


def _other_cpu_ns(me: int) -> int:
    """CPU time (ns) of every thread of this process except ``me`` (schedstat; 0 if unavailable)."""
    total = 0
    for t in _tids():
        if t == me:
            continue
        try:
            with _open(f"/proc/self/task/{t}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total


def _thread_state(tid: int) -> str:
    try:
        with _open(f"/proc/self/task/{tid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


# ------------------------------------------------------------------------------ modules


def _load_private(source: str, name: str = "_tttd_speed_problem"):
    """The problem module, kept out of ``sys.modules`` (only while it executes is it there: class
    machinery such as ``dataclasses`` looks its module up by name)."""
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


def _write_modules(folder: str, modules: dict) -> None:
    _os.makedirs(folder, exist_ok=True)
    for name, src in modules.items():
        with _open(_os.path.join(folder, name + ".py"), "w", encoding="utf-8") as f:
            f.write(src)


def _import_candidate(folder: str, source: str, module_names: list[str], entry: str):
    import importlib

    for n in module_names + ["submission"]:
        _sys.modules.pop(n, None)
    _write_modules(folder, {"submission": source})
    if folder not in _sys.path:
        _sys.path.insert(0, folder)
    importlib.invalidate_caches()
    mod = importlib.import_module("submission")
    fn = getattr(mod, entry, None)
    if not callable(fn):
        raise Verdict("import", f"the program defines no function {entry!r}")
    return fn


# ------------------------------------------------------------------------------ evaluation


class _Clock:
    """Timers captured at construction (before the candidate is imported)."""

    def __init__(self, device: str):
        self.device = device
        self.torch = None
        if device == "cuda":
            import torch

            self.torch = torch
            self.sync = torch.cuda.synchronize
            self.Event = torch.cuda.Event
            self.record = torch.cuda.Event.record
            self.elapsed = torch.cuda.Event.elapsed_time
            self.clone = torch.Tensor.clone
            self.is_tensor = torch.is_tensor
        else:
            self.sync = lambda: None

    def snap_output(self, out):
        """A private copy of the output taken right after the timer stopped."""
        if self.torch is not None:
            if type(out) is self.torch.Tensor:
                return self.clone(out)  # enqueued on the current stream, races with side streams
            if type(out) in (tuple, list):
                return type(out)(self.snap_output(o) for o in out)
        return _copy_cpu(out)


def _copy_cpu(out):
    np = _sys.modules.get("numpy")
    torch = _sys.modules.get("torch")
    if np is not None and type(out) is np.ndarray:
        return out.copy()
    if torch is not None and type(out) is torch.Tensor:
        return out.detach().clone()
    if type(out) in (tuple, list):
        return type(out)(_copy_cpu(o) for o in out)
    if type(out) in (int, float, complex, str, bytes, bool) or out is None:
        return out
    if np is not None and isinstance(out, np.generic):
        return out.copy()
    raise Verdict("check", f"the function returned a {type(out).__module__}.{type(out).__name__}; "
                           "return plain arrays/tensors (subclasses and lazy objects are refused)")


def _to_plain(x, limit: list):
    """Output as numpy data for the trusted re-check, or None when over the byte budget."""
    np = _sys.modules.get("numpy")
    torch = _sys.modules.get("torch")
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


def evaluate(config: dict, problem: str, candidate: str, modules: dict | None = None,
             workdir: str | None = None) -> dict:
    """Run one evaluation (see the module docstring) and return its record (plain data)."""
    t_start = _perf_ns()
    device = config.get("device", "cpu")
    rec: dict = {"ok": False, "stage": "setup", "message": "", "tests": [], "benchmarks": [],
                 "test_outputs": [], "bench_outputs": [], "device": device}
    try:
        clock = _Clock(device)
        if device == "cuda" and not clock.torch.cuda.is_available():
            raise Verdict("setup", "no CUDA device is visible in the sandbox")
        prob = _load_private(problem)
        gen, ref, check = prob.generate_input, getattr(prob, config.get("ref_name", "reference")), \
            getattr(prob, "check", None) or _default_check(config)
        snap = snapshot()
        _HOOKS[0] = (_sys.gettrace(), _sys.getprofile())
        folder = _os.path.join(workdir or _os.getcwd(), "tttd_speed_modules")
        names = sorted((modules or {}).keys())
        _write_modules(folder, modules or {})
        rec["stage"] = "import"
        try:
            fn = _import_candidate(folder, candidate, names, config.get("entry", "custom_kernel"))
        except Verdict:
            raise
        except BaseException as e:  # noqa: BLE001 - any failure of the candidate's import
            raise Verdict("import", f"importing the program failed: {type(e).__name__}: {e}")
        _guard(snap, clock, "importing the program")
        runner = _Runner(clock, fn, gen, ref, check, config, snap)
        rec["stage"] = "test"
        budget = [int(config.get("return_output_bytes", 0))]
        for i, case in enumerate(config["tests"]):
            seed = int(case["seed"])
            args = {k: v for k, v in case.items() if k != "seed"}
            _, out = runner.call(args, seed, f"test {i} ({_fmt_case(args)})")
            rec["tests"].append({"seed": seed})
            plain = _to_plain(out, budget) if budget[0] > 0 else None
            rec["test_outputs"].append(plain)
        _guard(snap, clock, "the tests")
        benches = config.get("benchmarks", [])
        if benches:
            rec["stage"] = "benchmark"
            runner.warm_up(benches[0])
            for j, case in enumerate(benches):
                if config.get("warm_each", True):  # untimed: compilation/autotuning for this shape
                    runner.call(case, runner._new_seed(), f"warm-up of benchmark {j} ({_fmt_case(case)})")
                stats, sample = runner.bench(case, f"benchmark {j} ({_fmt_case(case)})")
                rec["benchmarks"].append(stats)
                plain = _to_plain(sample[1], budget) if budget[0] > 0 else None
                rec["bench_outputs"].append({"seed": sample[0], "output": plain})
            runner.escape_verdict()
            _guard(snap, clock, "the benchmarks")
        rec["ok"] = True
        rec["stage"] = "done"
    except Verdict as v:
        rec["stage"], rec["message"] = v.stage, v.message
    rec["wall_s"] = (_perf_ns() - t_start) / 1e9
    try:
        rec["cpus"] = sorted(_os.sched_getaffinity(0))  # pinned when the executor pins (pin_cpus)
    except (AttributeError, OSError):
        rec["cpus"] = []
    return rec


def _fmt_case(case: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in case.items() if k != "seed")


def _guard(snap: dict, clock: _Clock, when: str) -> None:
    bad = tampered(snap)
    if bad:
        shown = ", ".join(bad[:5]) + (f" and {len(bad) - 5} more" if len(bad) > 5 else "")
        raise Verdict("tamper", f"{when} changed functions the evaluator relies on: {shown}")
    modes = _modes_active(_sys.modules.get("torch"))
    if modes:
        raise Verdict("tamper", f"{when} left {', '.join(modes)} active")


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
            if not np.array_equal(a, b, equal_nan=True):
                n = int(np.sum(~((a == b) | (np.isnan(a) & np.isnan(b)))))
                return f"{n} of {a.size} elements differ (exact match required)"
            return None
        ok = np.isclose(a, b, rtol=rtol, atol=atol, equal_nan=True)
        if not ok.all():
            i = int(np.argmax(~ok.ravel()))
            return (f"{int((~ok).sum())} of {a.size} elements differ beyond atol={atol:g}, "
                    f"rtol={rtol:g} (first at flat index {i}: {a.ravel()[i]!r} vs {b.ravel()[i]!r})")
        return None

    return check


class _Runner:
    def __init__(self, clock: _Clock, fn, gen, ref, check, config: dict, snap: dict):
        self.clock, self.fn, self.gen, self.ref, self.check = clock, fn, gen, ref, check
        self.cfg, self.snap = config, snap
        self.me = _get_native_id()
        self.timed_ns = 0  # total time inside timed regions (benchmarks)
        self.outside_ns = 0  # CPU time of other threads between timed regions (benchmarks)
        self.gpu_gap = []  # wall - event, per timed GPU run (ns)
        self.gpu_time = []
        self.counting = False
        self._last_end = None
        self.l2 = None
        if clock.torch is not None and config.get("l2_flush"):
            self.l2 = clock.torch.empty(int(config.get("l2_flush_mb", 256)) * 2**20, dtype=clock.torch.uint8,
                                        device="cuda")

    def _new_seed(self) -> int:
        return int.from_bytes(_urandom(6), "little")

    def call(self, case: dict, seed: int, what: str):
        """One call: returns (time_ns, output snapshot). Raises Verdict on any failure."""
        clock = self.clock
        try:
            data = self.gen(seed=seed, **case)
        except BaseException as e:  # noqa: BLE001 - a broken generator is a task bug
            raise Verdict("setup", f"the input generator failed for {what}: {type(e).__name__}: {e}")
        if self.l2 is not None:
            self.l2.zero_()
        clock.sync()
        tids0 = _tids()
        other0 = _other_cpu_ns(self.me)
        if self.counting and self._last_end is not None:
            self.outside_ns += max(0, other0 - self._last_end)
        if clock.torch is not None:
            start, end = clock.Event(enable_timing=True), clock.Event(enable_timing=True)
            w0 = _perf_ns()
            clock.record(start)
            try:
                out = self.fn(data)
            except BaseException as e:  # noqa: BLE001
                raise Verdict(self._stage(what), f"{what}: the function raised {type(e).__name__}: {e}")
            clock.record(end)
            snap = clock.snap_output(out)  # races with work left on other streams
            after = clock.Event(enable_timing=True)
            clock.record(after)
            clock.sync()  # device-wide: waits for every stream
            w1 = _perf_ns()
            t_ns = int(clock.elapsed(start, end) * 1e6)
            covered = int(clock.elapsed(start, after) * 1e6)  # timed region + the output clone
            if self.counting:
                self.gpu_gap.append((w1 - w0) - covered)  # wall time the events did not see
                self.gpu_time.append(t_ns)
        else:
            t0 = _perf_ns()
            try:
                out = self.fn(data)
            except BaseException as e:  # noqa: BLE001
                raise Verdict(self._stage(what), f"{what}: the function raised {type(e).__name__}: {e}")
            t1 = _perf_ns()
            snap = clock.snap_output(out)
            t_ns = t1 - t0
        other1 = _other_cpu_ns(self.me)
        busy = [t for t in _tids() - tids0 if _thread_state(t) in ("R", "D")]
        if busy and self.counting:  # idle pool threads (a library's, started on first use) are fine
            raise Verdict("escape", f"{what}: the function left {len(busy)} new thread(s) running after it "
                                    "returned; all work must finish inside the call")
        del out, data
        try:
            expected = self.ref(self.gen(seed=seed, **case))
        except BaseException as e:  # noqa: BLE001
            raise Verdict("setup", f"the reference failed for {what}: {type(e).__name__}: {e}")
        try:
            msg = self.check(snap, expected)
        except BaseException as e:  # noqa: BLE001
            msg = f"the check failed on the output: {type(e).__name__}: {e}"
        if msg:
            raise Verdict(self._stage(what), f"{what}: wrong output: {msg}")
        del expected
        if self.counting:
            self.timed_ns += t_ns
        self._last_end = other1
        _guard(self.snap, clock, what)
        return t_ns, snap

    @staticmethod
    def _stage(what: str) -> str:
        return "test" if what.startswith("test") else "benchmark"

    def warm_up(self, case: dict) -> None:
        cap_ns = float(self.cfg.get("warmup_s", 0.01)) * 1e9
        t0 = _perf_ns()
        for _ in range(int(self.cfg.get("warmup_runs", 100))):
            self.call(case, self._new_seed(), "warm-up")
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
        self.counting, self._last_end = True, None
        try:
            while True:
                seed = self._new_seed()
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
                "max_ns": srt[-1]}, sample

    def escape_verdict(self) -> None:
        """Work outside the timed regions: other threads' CPU time, or GPU wall time >> event time."""
        allowed = 0.2 * self.timed_ns + 2e6
        torch = _sys.modules.get("torch")
        pooled = self.clock.torch is None and torch is not None and torch.get_num_threads() > 1
        if self.outside_ns > allowed and not pooled:  # (torch's CPU pool works for the reference too)
            raise Verdict("escape", f"other threads used {self.outside_ns / 1e6:.1f} ms of CPU between timed "
                                    f"calls (timed total {self.timed_ns / 1e6:.1f} ms): work escaped the "
                                    "timed region")
        if self.gpu_gap:
            gaps = sorted(self.gpu_gap)
            med_gap = gaps[len(gaps) // 2]
            med_t = sorted(self.gpu_time)[len(self.gpu_time) // 2]
            if med_gap > max(0.5 * med_t, 100e3):
                raise Verdict("escape", f"the GPU stayed busy {med_gap / 1e3:.0f} us (median) after the timed "
                                        f"region ended ({med_t / 1e3:.0f} us timed): work on another stream "
                                        "that the current stream does not wait for")
