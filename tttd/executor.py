"""Where evaluations run: a local worker pool, or a Ray cluster.

Both executors take :class:`~tttd.types.Program` objects and return
``concurrent.futures.Future[SandboxResult]`` that never raise: every failure (timeout, crash,
internal error) becomes a :class:`~tttd.types.SandboxResult` with a non-ok status. The isolation
is in :mod:`tttd.sandbox` (one process per evaluation); an executor only decides concurrency and,
optionally, CPU pinning.

Deviation from the paper's code (SPEC.md 6.1, 7.4): no detached CPU-scheduler actor, no polling
for a CPU group, no outer timeout that leaves the evaluation running. The wall limit of each
Program is the single budget, enforced by a kill inside the sandbox; queueing time is separate.
"""

from __future__ import annotations

import concurrent.futures as cf
import glob
import os
import queue
import re
import threading
from typing import Any, Callable, Iterable, Sequence

from tttd.types import Program, SandboxResult

__all__ = ["GpuSlots", "LocalExecutor", "RayExecutor", "make_executor", "visible_gpus"]


def _failure(exc: BaseException) -> SandboxResult:
    """An evaluation lost to the infrastructure (a worker or node died, the sandbox could not
    start): status ``lost``, retried by the loop and never scored (tttd.faults)."""
    return SandboxResult(status="lost", message=f"executor failure: {type(exc).__name__}: {exc}")


def _safe_run(program: Program, cpus: Any = None, devices: tuple[int, ...] = ()) -> SandboxResult:
    from tttd import sandbox

    try:
        if devices:  # CONTRACTS.md item 2: the jail binds exactly these GPUs
            return sandbox.run(program, cpus=cpus, devices=tuple(devices))
        return sandbox.run(program, cpus=cpus)
    except ValueError as e:  # a bad Program (the sandbox raises only on bad arguments): the task's
        return SandboxResult(status="error", message=f"bad program: {e}")
    except Exception as e:  # internal error (cannot fork, no file descriptors...): a result, never an exception
        return _failure(e)


def visible_gpus() -> list[int]:
    """GPU indices this process may hand out, without importing torch: ``CUDA_VISIBLE_DEVICES``
    when set (its integer entries; UUID entries count by position), else the ``/dev/nvidiaN``
    device nodes; without an NVIDIA GPU, the AMD (ROCm) GPUs: ``ROCR_VISIBLE_DEVICES`` or else
    ``HIP_VISIBLE_DEVICES`` when set (read the same way), else the GPU nodes of the KFD topology
    (see :mod:`tttd.sandbox.gpu`). Empty when there is no GPU."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return _parse_visible(env)
    nodes = (re.fullmatch(r"/dev/nvidia(\d+)", p) for p in glob.glob("/dev/nvidia[0-9]*"))
    found = sorted(int(m.group(1)) for m in nodes if m)
    if found:
        return found
    from tttd.sandbox.gpu import amd_gpus

    amd = amd_gpus()
    if not amd:
        return []
    for var in ("ROCR_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES"):
        if os.environ.get(var) is not None:
            return _parse_visible(os.environ[var])
    return [g.index for g in amd]


def _parse_visible(env: str) -> list[int]:
    items = [x.strip() for x in env.split(",") if x.strip()]
    if all(x.lstrip("-").isdigit() for x in items):
        out = []
        for x in items:
            if int(x) < 0:  # CUDA stops at the first invalid index
                break
            out.append(int(x))
        return out
    return list(range(len(items)))


class GpuSlots:
    """One evaluation per GPU at a time: :meth:`acquire` blocks until ``n`` devices are free and
    takes them all at once (no deadlock between evaluations that need several)."""

    def __init__(self, devices: Sequence[int]):
        self.devices = tuple(int(d) for d in devices)
        self._free = list(self.devices)
        self._cond = threading.Condition()

    def acquire(self, n: int) -> tuple[int, ...]:
        if n > len(self.devices):
            raise ValueError(f"an evaluation needs {n} GPU(s) but this executor has "
                             f"{len(self.devices)} ({list(self.devices) or 'none'})")
        with self._cond:
            self._cond.wait_for(lambda: len(self._free) >= n)
            taken, self._free = tuple(self._free[:n]), self._free[n:]
            return taken

    def release(self, devices: Sequence[int]) -> None:
        with self._cond:
            self._free.extend(devices)
            self._cond.notify_all()


class LocalExecutor:
    """A thread pool whose workers each run one sandboxed evaluation at a time.

    ``workers`` defaults to ``os.cpu_count() // cpus_per_eval`` (at least 1). With ``pin_cpus``
    each evaluation is pinned (sched_setaffinity in the sandbox) to its own group of
    ``cpus_per_eval`` CPUs from this process's affinity set; then ``workers`` is capped at the
    number of whole groups.

    A program with ``limits.gpus > 0`` waits for that many free GPUs (one evaluation per device;
    ``gpus`` defaults to :func:`visible_gpus`) and runs with ``devices=`` those ids; with no GPU
    it gets an error result at once. ``run_fn`` replaces :func:`tttd.sandbox.run` (tests).
    """

    def __init__(self, workers: int | None = None, cpus_per_eval: int = 1, pin_cpus: bool = False,
                 gpus: Sequence[int] | None = None, run_fn: Callable[..., SandboxResult] | None = None):
        if int(cpus_per_eval) < 1:
            raise ValueError(f"cpus_per_eval must be >= 1, got {cpus_per_eval}")
        self.cpus_per_eval = int(cpus_per_eval)
        if workers is None:
            workers = max(1, (os.cpu_count() or 1) // self.cpus_per_eval)
        if int(workers) < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self._groups: queue.Queue | None = None
        if pin_cpus:
            cpus = sorted(os.sched_getaffinity(0))
            groups = [cpus[i:i + self.cpus_per_eval] for i in range(0, len(cpus) - self.cpus_per_eval + 1,
                                                                    self.cpus_per_eval)]
            if not groups:
                raise ValueError(f"cannot pin: {len(cpus)} CPUs available, cpus_per_eval={cpus_per_eval}")
            workers = min(int(workers), len(groups))
            self._groups = queue.Queue()
            for g in groups:
                self._groups.put(g)
        self.workers = int(workers)
        self.gpu_slots = GpuSlots(visible_gpus() if gpus is None else gpus)
        self._run_fn = run_fn
        self._pool = cf.ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="tttd-eval")
        self._closed = False
        self._lock = threading.Lock()

    def _run(self, program: Program) -> SandboxResult:
        need = int(getattr(getattr(program, "limits", None), "gpus", 0) or 0)
        if need <= 0:
            return self._run_cpus(program, ())
        try:
            devices = self.gpu_slots.acquire(need)
        except ValueError as e:
            return SandboxResult(status="error", message=str(e))
        try:
            return self._run_cpus(program, devices)
        finally:
            self.gpu_slots.release(devices)

    def _run_cpus(self, program: Program, devices: tuple[int, ...]) -> SandboxResult:
        run = _safe_run if self._run_fn is None else self._run_fn
        kw: dict[str, Any] = {"devices": devices} if devices else {}
        if self._groups is None:
            return _wrap(run, program, None, kw)
        group = self._groups.get()
        try:
            return _wrap(run, program, group, kw)
        finally:
            self._groups.put(group)

    def submit(self, program: Program) -> "cf.Future[SandboxResult]":
        with self._lock:
            if self._closed:
                raise RuntimeError("executor is closed")
            return self._pool.submit(self._run, program)

    def map(self, programs: Iterable[Program]) -> list[SandboxResult]:
        """Run all programs; results in input order."""
        futures = [self.submit(p) for p in programs]
        return [f.result() for f in futures]

    def close(self, cancel_pending: bool = False) -> None:
        """Wait for running evaluations (each bounded by its wall limit) and stop the threads."""
        with self._lock:
            self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=cancel_pending)

    def __enter__(self) -> "LocalExecutor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _wrap(run: Callable[..., SandboxResult], program: Program, cpus: Any, kw: dict) -> SandboxResult:
    try:
        return run(program, cpus=cpus, **kw)
    except Exception as e:
        return _failure(e)


def _ray_gpu_run(program: Program) -> SandboxResult:
    """Inside a Ray task that reserved ``num_gpus``: run on the GPUs Ray assigned to it."""
    import ray

    devices = tuple(int(float(i)) for i in ray.get_gpu_ids())
    if len(devices) < program.limits.gpus:
        return SandboxResult(status="error", message=f"Ray assigned GPUs {list(devices)}, "
                                                     f"need {program.limits.gpus}")
    return _safe_run(program, None, devices[: program.limits.gpus])


class RayExecutor:
    """Runs :func:`tttd.sandbox.run` as a Ray task with ``num_cpus=cpus_per_eval``.

    Connects to ``address`` (or an already initialised Ray); otherwise starts a local instance
    (``ray.init(num_cpus=..., include_dashboard=False)``) and shuts it down on :meth:`close`.
    Results and semantics equal :class:`LocalExecutor`'s: the same SandboxResult, timeouts
    included, and futures that never raise. A program with ``limits.gpus > 0`` is a Ray task
    with ``num_gpus=limits.gpus`` (so Ray spreads GPU evaluations over the cluster's GPUs, one
    per device) and runs with ``devices=`` the ids Ray assigned.
    """

    def __init__(self, address: str | None = None, cpus_per_eval: int = 1, workers: int | None = None,
                 **ray_init_kwargs: Any):
        try:
            import ray
        except ImportError as e:  # pragma: no cover - depends on the extra
            raise ImportError("RayExecutor needs ray: pip install 'tttd[ray]'") from e
        if int(cpus_per_eval) < 1:
            raise ValueError(f"cpus_per_eval must be >= 1, got {cpus_per_eval}")
        self._ray = ray
        self.cpus_per_eval = int(cpus_per_eval)
        self._started = False
        address = address or os.environ.get("RAY_ADDRESS") or None  # an existing cluster (issue 24)
        if not ray.is_initialized():
            kw = {"include_dashboard": False, "log_to_driver": False}
            if address is None:
                kw["num_cpus"] = workers * self.cpus_per_eval if workers else (os.cpu_count() or 1)
            else:
                kw["address"] = address
            kw.update(ray_init_kwargs)
            ray.init(**kw)
            self._started = True
        self._remote = ray.remote(num_cpus=self.cpus_per_eval, max_retries=0)(_safe_run)
        self._remote_gpu = ray.remote(num_cpus=self.cpus_per_eval, max_retries=0)(_ray_gpu_run)
        self._closed = False

    def submit(self, program: Program) -> "cf.Future[SandboxResult]":
        if self._closed:
            raise RuntimeError("executor is closed")
        out: cf.Future = cf.Future()
        try:
            gpus = int(getattr(getattr(program, "limits", None), "gpus", 0) or 0)
            if gpus > 0:
                inner = self._remote_gpu.options(num_gpus=gpus).remote(program).future()
            else:
                inner = self._remote.remote(program).future()
        except Exception as e:
            out.set_result(_failure(e))
            return out

        def done(f: cf.Future) -> None:
            try:
                out.set_result(f.result())
            except BaseException as e:  # worker died, task cancelled, ...
                out.set_result(_failure(e))

        inner.add_done_callback(done)
        return out

    def map(self, programs: Iterable[Program]) -> list[SandboxResult]:
        futures = [self.submit(p) for p in programs]
        return [f.result() for f in futures]

    def close(self) -> None:
        if not self._closed and self._started:
            self._ray.shutdown()
        self._closed = True

    def __enter__(self) -> "RayExecutor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


EXECUTORS = {"local": LocalExecutor, "ray": RayExecutor}


def make_executor(kind: str = "local", **kw: Any):
    """``make_executor("local" | "ray", workers=..., cpus_per_eval=..., ...)``."""
    if kind not in EXECUTORS:
        raise ValueError(f"unknown executor {kind!r}; known: {sorted(EXECUTORS)}")
    return EXECUTORS[kind](**kw)
