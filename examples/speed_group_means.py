"""A speed task of your own: make one step of a data pipeline faster (per-group means).

Run it with:   tttd run examples/speed_group_means.py --model tiny --steps 2 --max-tokens 256
Check a candidate:   tttd verify examples/speed_group_means.py my_version.py

You supply a reference, a seeded input generator, a tolerance, test and benchmark cases; tttd
checks every candidate on every test case, then times it on fresh inputs per run (value: the
geometric mean in microseconds; reward: the speedup over the reference, timed the same way).
"""

import tttd
from tttd.tasks.speed import SpeedSpec, SpeedTask

REFERENCE = '''\
import numpy as np

def group_means(data):
    """Mean of `values` per key 0..groups-1 (NaN for an empty group)."""
    keys, values, groups = data
    out = np.full(groups, np.nan)
    for g in range(groups):
        sel = values[keys == g]
        if sel.size:
            out[g] = sel.mean()
    return out
'''

GENERATOR = '''
def generate_input(seed, n, groups):
    rng = np.random.default_rng(seed)
    return rng.integers(0, groups, n), rng.normal(size=n), groups


def work(n, groups):
    """The least a call must do (the speed kit's physics floor): read keys and values, write the means."""
    return {"bytes": 16 * n + 8 * groups, "flops": 2 * n}
'''

SPEC = SpeedSpec(
    name="group-means",
    problem_source=REFERENCE + GENERATOR,  # a module: generate_input(seed, **case), the reference
    entry="group_means", ref_name="group_means",  # the candidate replaces group_means(data)
    initial_code=REFERENCE,  # the root program the model starts from
    rtol=1e-9, atol=1e-12,  # or leave both 0 for exact equality
    tests=[{"n": 10, "groups": 4}, {"n": 1000, "groups": 50}, {"n": 3000, "groups": 400}],
    benchmarks=[{"n": 100_000, "groups": 20}, {"n": 20_000, "groups": 200}],
    timing={"max_runs": 20, "max_time_s": 2.0, "max_wall_s": 10.0, "statistic": "median"},
    description="Make `group_means(data)` as fast as possible: data = (keys int64 [n] in "
                "0..groups-1, values float64 [n], groups); return the float64 mean per group.",
    wall_s=120.0, memory_mb=2048,
)


@tttd.register_task("group-means")
def group_means_task() -> SpeedTask:
    """Per-group means of a data pipeline: minimise the time (reward: speedup over the reference)."""
    return SpeedTask(SPEC)
