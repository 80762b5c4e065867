"""Peak RSS of the trusted (parent) process for one step of 512 rollouts whose programs each
return a 1,000,000-entry float64 array (issue 9, item 9), through the real loop: FakeDigitPolicy
(tests/fakes.py) writes the completions, each becomes a sandboxed program, the task's verifier
turns the array into a list artifact (``tolist()``, as the Erdős task does), the archive keeps
its top children. Prints the parent's RSS before the step and its peak (``ru_maxrss`` of this
process only; the sandboxed children are separate processes and not counted).

    PYTHONPATH=. python benchmarks/rollout_memory_bench.py [--groups 8 --group-size 64 --n 1000000 --workers 2]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import tttd  # noqa: E402
from tests.fakes import FakeDigitPolicy  # noqa: E402
from tttd.config import resolve_config  # noqa: E402
from tttd.loop import Discovery  # noqa: E402
from tttd.task import Objective, Task  # noqa: E402
from tttd.types import Candidate, Evaluation, Limits, Program, State  # noqa: E402

N = 1_000_000
SOURCE = "import numpy as np\ndef main(seed, n):\n    return np.random.default_rng(seed).random(n)\n"


@tttd.register_task("big-result-bench")
class BigResult(Task):
    """Benchmark task: a program returns n floats; the value is their mean (higher is better)."""

    objective = Objective("maximize", "identity")

    def initial_states(self, n, rng):
        return [State(id=f"root{i}", value=None) for i in range(n)]

    def prompt(self, state, parent=None):
        return [{"role": "user", "content": "return many numbers"}]

    def parse(self, completion, state):
        seed = int(completion[:9] or 0)
        return Candidate(text=completion, code=SOURCE, program=Program(
            source=SOURCE, args={"seed": seed, "n": N}, limits=Limits(wall_s=120, memory_mb=1024, result_mb=16)))

    def verify(self, data, state=None):
        arr = np.asarray(data, dtype=np.float64)
        if arr.shape != (N,):
            return self.invalid(f"expected {N} numbers")
        return Evaluation(valid=True, value=float(arr.mean()), reward=float(arr.mean()),
                          artifact={"construction": arr.tolist()})


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(ln.split()[1]) for ln in f if ln.startswith("VmRSS:")) / 1024


def main() -> None:
    global N
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--groups", type=int, default=8)
    ap.add_argument("--group-size", type=int, default=64)
    ap.add_argument("--n", type=int, default=N)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: checks that the command runs (the tests use it); not a measurement")
    a = ap.parse_args()
    if a.smoke:
        a.groups, a.group_size, a.n, a.workers = 1, 2, 1000, 1
    N = a.n
    out = tempfile.mkdtemp(prefix="tttd-membench-")
    cfg = resolve_config(flag_values=dict(task="big-result-bench", steps=1, groups=a.groups, group_size=a.group_size,
                                          workers=a.workers, seed=0, learning_rate=0.1))
    run = Discovery(cfg, os.path.join(out, "run"), policy=FakeDigitPolicy())
    run.start()
    before = rss_mb()
    phase: dict[str, float] = {}
    commit = run._commit

    def timed_commit(step, extra=None):  # split the peak: evaluation + archive, then checkpoint serialisation
        phase["peak_before_checkpoint"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        phase["rss_before_checkpoint"] = rss_mb()
        commit(step, extra)

    run._commit = timed_commit
    t = time.perf_counter()
    summary = run.run()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rollouts = a.groups * a.group_size
    print(f"{rollouts} rollouts of {N:,}-entry float64 results ({N * 8 / 2**20:.1f} MiB each as an array, "
          f"~{N * 32 / 2**20:.0f} MiB each as a Python list artifact), {a.workers} workers, "
          f"{time.perf_counter() - t:.0f} s")
    print(f"parent RSS before the step: {before:.0f} MiB; peak: {peak:.0f} MiB; after: {rss_mb():.0f} MiB; "
          f"archive size {len(run.archive)}")
    print(f"peak up to the checkpoint (sampling, evaluation, archive): {phase['peak_before_checkpoint']:.0f} MiB; "
          f"RSS entering the checkpoint: {phase['rss_before_checkpoint']:.0f} MiB (the rest of the peak is "
          f"serialising the archive's artifacts)")
    print(f"platform: {tttd.sandbox.platform_info()}")
    import shutil

    shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
