"""The trusted re-check of a speed record, in the trusted process (outside the jail), on every device.

The controller in the jail already checks every output it times. In addition this process, which
chose the test seeds, regenerates the inputs of every test case and of the one sampled timed call
per benchmark (its seed is in the record), recomputes the reference and checks the returned
outputs itself. An output that did not come back ("over budget") is a claim this side verifies:
the reference's output is computed here and must indeed be too large for what was left of the byte
budget (counted at 16 bytes per element, the widest dtype, so an honest output in any dtype never
fails this). GPU records are re-checked where this process sees a GPU (the problem module
generates inputs on the device it finds, so a CPU here could not reproduce them); without one the
re-check is skipped and :func:`trusted_recheck` says so.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def trusted_recheck(prob: Any, ref_name: str, rec: dict, cfg: dict) -> str:
    """Raise ValueError when a returned output is wrong or a missing one should have come back;
    return a note for the message ("" when everything was re-checked)."""
    from tttd.tasks.speed.harness import _default_check

    device = cfg.get("device")
    if device == "cuda" and not _cuda_here():
        return "trusted re-check skipped: no GPU visible to the trusted process"
    ref = getattr(prob, ref_name)
    check = getattr(prob, "check", None) or _default_check(cfg)
    jobs = []
    for case, out in zip(cfg.get("tests", []), rec.get("test_outputs", [])):
        jobs.append((case, int(case["seed"]), out, "test"))
    benches = cfg.get("benchmarks", [])
    samples = rec.get("bench_outputs", [])
    if len(samples) != len(rec.get("benchmarks", [])):
        raise ValueError("the record does not carry one sampled output per benchmark")
    for case, b in zip(benches, samples):
        if not isinstance(b, dict) or not isinstance(b.get("seed"), int):
            raise ValueError("a benchmark's sampled output has no seed")
        jobs.append((case, int(b["seed"]), b.get("output"), "benchmark"))
    left = int(cfg.get("return_output_bytes", 0))
    for case, seed, out, kind in jobs:
        args = {k: v for k, v in case.items() if k != "seed"}
        expected = ref(prob.generate_input(seed=seed, **args))
        if out is None:
            if left > 0 and 16 * _numel(expected) <= left:
                raise ValueError(f"a {kind} output ({_fmt(args)}) did not come back although it fits the "
                                 f"byte budget ({left} bytes left): the 'over budget' claim is false")
            continue
        left -= _plain_bytes(out)
        msg = check(_like(out, expected), expected)
        if msg:
            raise ValueError(f"trusted re-check of a {kind} output failed ({_fmt(args)}): {msg}")
    return ""


def _cuda_here() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # noqa: BLE001
        return False


def _numel(x: Any) -> int:
    if hasattr(x, "numel") and callable(x.numel):
        return int(x.numel())
    if isinstance(x, np.ndarray):
        return int(x.size)
    if isinstance(x, (tuple, list)):
        return sum(_numel(v) for v in x)
    return 1


def _plain_bytes(x: Any) -> int:
    if isinstance(x, np.ndarray):
        return int(x.nbytes)
    if isinstance(x, (tuple, list)):
        return sum(_plain_bytes(v) for v in x)
    return 0


def _like(out: Any, expected: Any) -> Any:
    """Returned numpy data in the type of the reference's output (torch tensors stay tensors)."""
    if type(expected).__module__.startswith("torch") and isinstance(out, np.ndarray):
        import torch

        t = torch.from_numpy(np.ascontiguousarray(out)).to(expected.device)
        if expected.dtype == torch.bfloat16 and t.dtype == torch.float32:  # bfloat16 travels as float32
            b = t.to(torch.bfloat16)  # (numpy has none): back when that is exact
            if torch.equal(b.float().nan_to_num(), t.nan_to_num()):
                return b
        return t
    if isinstance(expected, (tuple, list)) and isinstance(out, list):
        return type(expected)(_like(o, e) for o, e in zip(out, expected))
    return out


def _fmt(case: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in case.items())
