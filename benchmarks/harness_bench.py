"""The speed kit's two-process harness against the former one-process one, side by side in one run.

    PYTHONPATH=. python benchmarks/harness_bench.py [--repeats 5] [--smoke]

Evaluates the same honest candidate (examples/speed_group_means_fast.py: a bincount) on the CPU example
(examples/speed_group_means.py) in the sandbox, alternating between the two harnesses
(benchmarks/one_process_harness.py: the baseline, kept outside the package), and prints per harness:
the whole evaluation's wall time (trusted side, median over repeats), the value (geometric mean of
the per-case median times) of each evaluation and its coefficient of variation across repeats,
and for the two-process harness the per-call IPC round trip (wall and worker CPU, the smallest of
which is subtracted from each call). The two-process harness times CPU tasks by the worker's CPU
time; the same runs re-timed with ``clock=wall`` are shown too. Prints the load average before and
after and at each repeat, the per-repeat wall-time ratio (min, median, max) and where the
two-process evaluation's wall time went (``phases_ms`` of its record): figures from a loaded
machine are only meaningful as ratios measured in the same run.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from tttd.registry import get_task  # noqa: E402
from tttd.tasks.speed import build_config, program_for, run_program  # noqa: E402
from tttd.types import Program  # noqa: E402

FAST = open(os.path.join(os.path.dirname(HERE), "examples", "speed_group_means_fast.py")).read()


def _value(rec: dict) -> float:
    return math.exp(statistics.fmean(math.log(b["median_ns"] / 1e3) for b in rec["benchmarks"]))


def evaluate(spec, which: str, timing: dict) -> tuple[float, dict]:
    cfg = build_config(spec, timing=timing)
    program = program_for(spec, FAST, cfg)
    if which == "one-process":
        with open(os.path.join(HERE, "one_process_harness.py"), encoding="utf-8") as f:
            src = f.read()
        args = {k: v for k, v in program.args.items() if k not in ("worker", "wire")}
        program = Program(source=src, entry="evaluate", limits=program.limits, args=args)
    t0 = time.perf_counter()
    res = run_program(program)
    wall = time.perf_counter() - t0
    if res.status != "ok" or not res.value.get("ok"):
        raise SystemExit(f"{which}: the evaluation failed: {res.status} {res.message} {res.value}")
    return wall, res.value


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--smoke", action="store_true", help="one tiny evaluation per harness")
    a = ap.parse_args()
    import dataclasses

    spec = get_task(os.path.join(os.path.dirname(HERE), "examples", "speed_group_means.py")).spec
    timing = {}
    if a.smoke:
        a.repeats = 1
        spec = dataclasses.replace(spec, benchmarks=[{"n": 2000, "groups": 20}])
        timing = {"warmup_runs": 1, "min_runs": 3, "max_runs": 3}
    print(f"load average before: {os.getloadavg()}")
    kinds = [("one-process", {}), ("two-process", {}), ("two-process, wall clock", {"clock": "wall"})]
    walls: dict[str, list[float]] = {k: [] for k, _ in kinds}
    values: dict[str, list[float]] = {k: [] for k, _ in kinds}
    ipc, phases, loads = [], {}, []
    for _ in range(a.repeats):
        loads.append(os.getloadavg()[0])
        for name, extra in kinds:
            wall, rec = evaluate(spec, name.split(",")[0], dict(timing, **extra))
            walls[name].append(wall)
            values[name].append(_value(rec))
            if "ipc" in rec:
                ipc.append(rec["ipc"])
            if name == "two-process":
                for k, v in rec.get("phases_ms", {}).items():
                    phases.setdefault(k, []).append(v)
    print(f"load average after:  {os.getloadavg()}")
    print(f"1-minute load average at each repeat: {', '.join(f'{x:.2f}' for x in loads)}")
    base = statistics.median(walls["one-process"])
    cv0 = None
    print(f"{'harness':<26}{'eval wall s':>12}{'x one-proc':>11}{'value us':>12}{'CV':>8}{'CV x':>7}")
    for name, _ in kinds:
        v = values[name]
        cv = statistics.pstdev(v) / statistics.fmean(v) if len(v) > 1 else 0.0
        cv0 = cv if cv0 is None else cv0
        w = statistics.median(walls[name])
        print(f"{name:<26}{w:>12.3f}{w / base:>11.2f}{statistics.median(v):>12.1f}{cv:>8.3f}"
              f"{(cv / cv0 if cv0 else float('nan')):>7.2f}")
    ratios = sorted(t / o for t, o in zip(walls["two-process"], walls["one-process"]))
    print(f"two-process / one-process wall time per repeat: min {ratios[0]:.2f}, "
          f"median {statistics.median(ratios):.2f}, max {ratios[-1]:.2f}")
    if phases:
        print("two-process evaluation inside the sandbox, median ms per phase: "
              + ", ".join(f"{k} {statistics.median(v):.1f}" for k, v in phases.items()))
    if ipc:
        med = {k: statistics.median(i[k] for i in ipc) for k in ("min_us", "median_us", "cpu_min_us", "cpu_median_us")}
        print(f"IPC round trip per call: wall min {med['min_us']:.1f} us, median {med['median_us']:.1f} us; "
              f"worker CPU min {med['cpu_min_us']:.1f} us, median {med['cpu_median_us']:.1f} us "
              "(the smallest of the clock in use is subtracted from every call)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
