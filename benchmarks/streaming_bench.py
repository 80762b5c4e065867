"""Streaming evaluation (issue 35, tttd/streaming.py) against the in-order loop, side by side.

One step of the real loop (FakeDigitPolicy from tests/fakes.py writes the completions, each
becomes a sandboxed program, the executor runs them, the task's trusted verifier judges them):
group 0's programs sleep ``--slow-s`` seconds, every other group's ``--fast-s``; each verdict
costs ``--verdict-ms`` of trusted CPU work (as a re-check of a kernel's outputs or an AHC
re-score would). Prints the step's evaluation time (``seconds_evaluate`` in metrics.jsonl: from
the last sample to the last group archived) with streaming (verdicts as programs finish) and
with the previous behaviour (results read group by group in group order; the loop's
``finished_first`` replaced for that run), alternating, and their ratio.

    PYTHONPATH=. python benchmarks/streaming_bench.py [--groups 4 --group-size 4 --slow-s 2 --fast-s 0.2 --verdict-ms 100 --repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import tttd  # noqa: E402
import tttd.loop  # noqa: E402
from tests.fakes import FakeDigitPolicy  # noqa: E402
from tttd.config import resolve_config  # noqa: E402
from tttd.loop import Discovery  # noqa: E402
from tttd.rundir import read_jsonl  # noqa: E402
from tttd.task import Objective, Task  # noqa: E402
from tttd.types import Candidate, Evaluation, Limits, Program, State  # noqa: E402

SOURCE = "import time\ndef main(seconds):\n    time.sleep(seconds)\n    return seconds\n"
OPTIONS = {"slow_s": 2.0, "fast_s": 0.2, "verdict_ms": 100.0, "group_size": 4}


@tttd.register_task("streaming-bench")
class SlowGroupTask(Task):
    """Benchmark task: group 0 runs long, the others short; every verdict costs CPU."""

    objective = Objective("maximize", "identity")

    def __init__(self):
        self.launched = 0

    def initial_states(self, n, rng):
        return [State(id=f"root{i}", value=None) for i in range(n)]

    def prompt(self, state, parent=None):
        return [{"role": "user", "content": "sleep"}]

    def parse(self, completion, state):
        group = (self.launched // OPTIONS["group_size"])
        self.launched += 1
        seconds = OPTIONS["slow_s"] if group == 0 else OPTIONS["fast_s"]
        return Candidate(text=completion, code=SOURCE, program=Program(
            source=SOURCE, args={"seconds": seconds}, limits=Limits(wall_s=60, memory_mb=512)))

    def verify(self, data, state=None):
        end = time.process_time() + OPTIONS["verdict_ms"] / 1000  # the trusted re-check's CPU
        x = 0
        while time.process_time() < end:
            x += 1
        return Evaluation(valid=True, value=float(data), reward=float(data))


def in_order(pending, result):
    """The loop before streaming: every group's results in group order."""
    for g, group in enumerate(pending):
        for i, (cand, fut) in enumerate(group):
            pending[g][i] = None
            yield g, i, cand, result(fut)


def one_step(groups: int, size: int, streaming: bool) -> float:
    tttd.loop.finished_first = STREAMING if streaming else in_order
    cfg = resolve_config(flag_values=dict(task="streaming-bench", steps=1, groups=groups, group_size=size,
                                          workers=groups * size, seed=0, learning_rate=0.5))
    with tempfile.TemporaryDirectory() as d:
        run = Discovery(cfg, os.path.join(d, "run"), task=SlowGroupTask(), policy=FakeDigitPolicy())
        run.start()
        run.run()
        return float(next(read_jsonl(run.dir.metrics))["seconds_evaluate"])


STREAMING = tttd.loop.finished_first


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--groups", type=int, default=4)
    ap.add_argument("--group-size", type=int, default=4)
    ap.add_argument("--slow-s", type=float, default=2.0)
    ap.add_argument("--fast-s", type=float, default=0.2)
    ap.add_argument("--verdict-ms", type=float, default=100.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: checks that the command runs (the tests use it); not a measurement")
    a = ap.parse_args()
    if a.smoke:
        a.groups, a.group_size, a.slow_s, a.fast_s, a.verdict_ms, a.repeats = 2, 2, 0.3, 0.05, 10.0, 1
    OPTIONS.update(slow_s=a.slow_s, fast_s=a.fast_s, verdict_ms=a.verdict_ms, group_size=a.group_size)
    print(f"load average before: {os.getloadavg()}")
    times: dict[str, list[float]] = {"in order": [], "streaming": []}
    for _ in range(a.repeats):
        for name in times:
            times[name].append(one_step(a.groups, a.group_size, name == "streaming"))
    print(f"load average after:  {os.getloadavg()}")
    n = a.groups * a.group_size
    print(f"{a.groups} groups x {a.group_size}: group 0 sleeps {a.slow_s} s, the others {a.fast_s} s; "
          f"{n} verdicts of {a.verdict_ms:g} ms CPU; {a.repeats} repeats, alternating")
    for name, ts in times.items():
        print(f"{name:10s} seconds_evaluate median {statistics.median(ts):.3f}  (each: {', '.join(f'{t:.3f}' for t in ts)})")
    print(f"in order / streaming: {statistics.median(times['in order']) / statistics.median(times['streaming']):.2f}x")


if __name__ == "__main__":
    main()
