"""Sandbox overhead and executor throughput.

Prints: the median wall time of one trivial evaluation (spawn to parsed result) next to a bare
``python -c pass`` on this machine (goal: within 1.5x, issue 19), the same with an array result, and the
throughput of N trivial evaluations through LocalExecutor with 1 and 2 workers and through Ray.

    python benchmarks/sandbox_bench.py [--n 200] [--no-ray]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

from tttd import sandbox
from tttd.executor import LocalExecutor
from tttd.types import Limits, Program

TRIVIAL = "def main():\n    return 1\n"
ARRAY = "import numpy as np\ndef main():\n    return {'x': np.arange(1000.0)}\n"


def median_ms(fn, reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1000


def throughput(ex, programs) -> float:
    t = time.perf_counter()
    res = ex.map(programs)
    dt = time.perf_counter() - t
    assert all(r.status == "ok" for r in res), [r for r in res if r.status != "ok"][:1]
    return len(programs) / dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: checks that the command runs (the tests use it); not a measurement")
    a = ap.parse_args()
    if a.smoke:  # Ray's start-up alone takes longer than the rest: skipped
        a.n, a.reps, a.no_ray = 4, 1, True
    plat = sandbox.platform_info()
    lim = Limits(wall_s=30)
    print(f"platform: {plat}")
    print(f"protections: {sandbox.run_program(TRIVIAL, limits=lim).protections}")
    bare = median_ms(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), a.reps)
    bare_is = median_ms(lambda: subprocess.run([sys.executable, "-I", "-S", "-c", "pass"], check=True), a.reps)
    one = median_ms(lambda: sandbox.run_program(TRIVIAL, limits=lim), a.reps)
    arr = median_ms(lambda: sandbox.run_program(ARRAY, limits=lim), a.reps)
    print(f"bare `python -c pass`:         {bare:7.1f} ms")
    print(f"bare `python -I -S -c pass`:   {bare_is:7.1f} ms")
    print(f"trivial evaluation:           {one:7.1f} ms  ({one / bare:.2f}x bare)")
    print(f"evaluation returning an array (imports numpy): {arr:7.1f} ms")
    progs = [Program(source=TRIVIAL, limits=lim) for _ in range(a.n)]
    for w in (1, 2):
        with LocalExecutor(workers=w) as ex:
            print(f"LocalExecutor workers={w}: {throughput(ex, progs):6.1f} evals/s ({a.n} trivial)")
    if not a.no_ray:
        try:
            from tttd.executor import RayExecutor

            t = time.perf_counter()
            ex = RayExecutor(cpus_per_eval=1, num_cpus=2)
            print(f"Ray startup: {time.perf_counter() - t:.1f} s")
            throughput(ex, progs[:10])  # warm the workers
            print(f"RayExecutor num_cpus=2:  {throughput(ex, progs):6.1f} evals/s ({a.n} trivial)")
            ex.close()
        except ImportError:
            print("ray not installed: skipped")


if __name__ == "__main__":
    main()
