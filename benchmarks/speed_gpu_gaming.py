"""GPU checks of the speed kit's two-process harness (needs a CUDA GPU; run by benchmarks/gpu_checks.sh).

    PYTHONPATH=. python benchmarks/speed_gpu_gaming.py [--task trimul] [--smoke]

Through the sandbox on GPU 0, on TriMul (or MLA decode): a zero kernel (must be invalid), the
side-stream kernel ``trimul/hostile_side_stream.py`` (must be invalid, or timed with its work:
printed either way), and our honest fp16 kernel (valid), whose geometric-mean time is compared with
a harness-free timing of the same function (CUDA events around each call, same shapes, fresh
inputs, median): the goal is within 5%. ``--smoke``: two benchmark shapes and few runs.
Unmeasured when written (no GPU in that session).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def harness_free_us(spec, code: str, runs: int) -> float:
    import torch

    from tttd.tasks.speed.harness import _load_private

    prob = _load_private(spec.problem_source)
    sys.modules.setdefault("reference", prob)
    sys.modules.setdefault("task", _load_private(spec.public_modules["task"], "task"))
    ns: dict = {"__name__": "twin"}
    exec(compile(code, "<honest>", "exec"), ns)
    fn = ns[spec.entry]
    per_case = []
    for case in spec.benchmarks:
        fn(prob.generate_input(seed=1, **case))  # warm (compilation, autotuning)
        times = []
        for s in range(runs):
            data = prob.generate_input(seed=100 + s, **case)
            torch.cuda.synchronize()
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn(data)
            b.record()
            torch.cuda.synchronize()
            times.append(a.elapsed_time(b) * 1e3)
        per_case.append(statistics.median(times))
    return math.exp(statistics.fmean(math.log(t) for t in per_case))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="trimul", choices=["trimul", "mla_decode"])
    ap.add_argument("--smoke", action="store_true")
    a = ap.parse_args()
    from tttd.registry import get_task
    from tttd.tasks.speed import SpeedTask, build_config, program_for, run_program
    from tttd.types import Candidate

    task = get_task(a.task)
    if task.device != "cuda":
        print("no CUDA GPU visible: nothing measured")
        return 1
    spec = task.spec
    if a.smoke:
        spec = dataclasses.replace(spec, benchmarks=spec.benchmarks[:2], timing=dict(spec.timing, max_runs=10))
    task = SpeedTask(spec)
    kdir = os.path.join(os.path.dirname(HERE), "tttd", "tasks", "speed", "trimul")
    zero = ("import torch\ndef custom_kernel(data):\n    return torch.zeros_like(data[0])\n" if a.task == "trimul" else
            "import torch\ndef custom_kernel(data):\n    return torch.zeros_like(data[1]), data[2].data\n")
    programs = {"zero kernel": zero}
    if a.task == "trimul":
        programs["side-stream kernel"] = open(os.path.join(kdir, "hostile_side_stream.py")).read()
        programs["honest fp16 kernel"] = open(os.path.join(kdir, "fast_fp16.py")).read()
    else:
        programs["honest root"] = spec.initial_code
    ok = True
    for name, code in programs.items():
        cfg = build_config(spec)
        program = program_for(spec, code, cfg)
        ev = task.evaluate(Candidate(text="", code=code, program=program), run_program(program), None)
        print(f"{name}: {'VALID' if ev.valid else 'INVALID'} {ev.value} | {ev.message.splitlines()[0][:200]}")
        if name.startswith("honest"):
            free = harness_free_us(spec, code, 10 if a.smoke else 50)
            ratio = ev.value / free if ev.valid else float("nan")
            print(f"  harness {ev.value} us vs harness-free {free:.1f} us: {ratio:.3f}x (goal within 5%)")
            ok &= ev.valid
        elif name == "zero kernel":
            ok &= not ev.valid
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
