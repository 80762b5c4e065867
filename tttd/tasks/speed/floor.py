"""The physics floor: a time below what the machine can do for the work a call must do is refused.

A problem module may define ``work(**case) -> {"bytes": B, "flops": F}``: the bytes a call must at
least read and write and the floating-point operations it must at least do, for one benchmark case.
The machine's rates are measured once and cached (``$XDG_CACHE_HOME/tttd/machine.json``, keyed by
host name, CPU model and device): on the CPU, memory bandwidth as a numpy copy of 64 MiB (read +
write) and the float64 matmul rate of one thread; on a GPU the same with torch on the device. The
floor of a case is ``max(bytes / bandwidth, flops / peak) / SAFETY``: SAFETY = 50 because a call's
working set may sit in caches far faster than the measured memory bandwidth, and honest code may
use faster units than the measured matmul (BLAS threads, tensor cores, lower precision), and the
rates may have been measured on a loaded machine -- the floor must never refuse an honest program,
only the impossible (the 600-2000x "speed-ups" of a forged timer). TriMul and MLA decode declare
bytes only (tensor-core FLOP rates are far above a measured fp32 matmul). A time below it is ``impossible``, with both numbers in the message.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

SAFETY = 50.0


def _cache_file() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "tttd" / "machine.json"


def _key(device: str) -> str:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    if device == "cuda":
        try:
            import torch

            cpu += " / " + torch.cuda.get_device_name(0)
        except Exception:  # noqa: BLE001
            pass
    return f"{platform.node()} | {cpu} | {device}"


def measure(device: str = "cpu") -> dict[str, float]:
    """{"bandwidth": bytes/s, "flops": flop/s}, measured now (best of 5)."""
    if device == "cuda":
        import torch

        a = torch.empty(64 << 20, dtype=torch.uint8, device="cuda")
        b = torch.empty_like(a)
        m = torch.randn(2048, 2048, device="cuda")
        sync, copy, mm, n = torch.cuda.synchronize, (lambda: b.copy_(a)), (lambda: m @ m), 2048
    else:
        import numpy as np

        a = np.ones(64 << 20, dtype=np.uint8)
        b = np.empty_like(a)
        m = np.random.default_rng(0).normal(size=(256, 256))
        sync, copy, mm, n = (lambda: None), (lambda: np.copyto(b, a)), (lambda: m @ m), 256
    best_c = best_m = float("inf")
    for _ in range(5):
        sync()
        t0 = time.perf_counter()
        copy()
        sync()
        t1 = time.perf_counter()
        mm()
        sync()
        best_c, best_m = min(best_c, t1 - t0), min(best_m, time.perf_counter() - t1)
    return {"bandwidth": 2 * (64 << 20) / best_c, "flops": 2 * n ** 3 / best_m}


def machine_rates(device: str = "cpu") -> dict[str, float]:
    """The cached rates of this machine (measured on first use)."""
    path, key = _cache_file(), _key(device)
    try:
        cached = json.loads(path.read_text())
    except (OSError, ValueError):
        cached = {}
    if isinstance(cached.get(key), dict):
        return cached[key]
    rates = measure(device)
    cached[key] = rates
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cached, indent=1))
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only home: measured again next time
    return rates


def floor_message(prob: Any, benches: list[dict], times_us: list[float], device: str) -> str | None:
    """Why a benchmark's time is below the floor, or None (also when the task declares no work)."""
    work = getattr(prob, "work", None)
    if work is None:
        return None
    rates = machine_rates(device)
    for case, us in zip(benches, times_us):
        w = work(**{k: v for k, v in case.items() if k != "seed"})
        t_bytes = float(w.get("bytes", 0)) / rates["bandwidth"] * 1e6
        t_flops = float(w.get("flops", 0)) / rates["flops"] * 1e6
        floor_us = max(t_bytes, t_flops) / SAFETY
        if us < floor_us:
            case_text = ", ".join(f"{k}={v}" for k, v in case.items())
            return (f"impossible: {us:.3f} us for {case_text}, below the physics floor of {floor_us:.3f} us "
                    f"({w.get('bytes', 0):.3g} bytes at {rates['bandwidth'] / 1e9:.1f} GB/s, {w.get('flops', 0):.3g} "
                    f"FLOPs at {rates['flops'] / 1e9:.1f} GFLOP/s, divided by a safety factor of {SAFETY:g})")
    return None
