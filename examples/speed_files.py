"""A speed task whose program is several modules: per-group means, the kernel split from a helper.

Run it with:   tttd run examples/speed_files.py --model tiny --steps 2 --max-tokens 256
Check a candidate directory:   tttd verify examples/speed_files.py my_version/

The program is ``submission.py`` (defines ``group_means``; the harness imports it as
``submission``) and ``grouping.py`` (a helper module it imports by name). The model sees both and
answers per file (``### File: grouping.py`` and a code block, or SEARCH/REPLACE edits under that
header); files it does not mention carry over. A speed task's files are flat modules ``NAME.py``
(tttd/tasks/speed/files.py says why). The problem is examples/speed_group_means.py's.
"""

import tttd
from tttd.tasks.speed import SpeedSpec, SpeedTask

# the problem, as in examples/speed_group_means.py: the reference, the input generator, the work
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

FILES = {
    "submission.py": '''import numpy as np

from grouping import group_sums


def group_means(data):
    keys, values, groups = data
    sums, counts = group_sums(keys, values, groups)
    return np.array([s / c if c else np.nan for s, c in zip(sums, counts)])
''',
    "grouping.py": '''def group_sums(keys, values, groups):
    """Sum and count of the values per key 0..groups-1."""
    sums, counts = [0.0] * groups, [0] * groups
    for k, v in zip(keys.tolist(), values.tolist()):
        sums[k] += v
        counts[k] += 1
    return sums, counts
''',
}

SPEC = SpeedSpec(
    name="group-means-files",
    problem_source=REFERENCE + GENERATOR,
    entry="group_means", ref_name="group_means",
    files=FILES, main="submission.py",  # the root program: two modules (instead of initial_code)
    rtol=1e-9, atol=1e-12,
    tests=[{"n": 10, "groups": 4}, {"n": 1000, "groups": 50}, {"n": 3000, "groups": 400}],
    benchmarks=[{"n": 100_000, "groups": 20}, {"n": 20_000, "groups": 200}],
    timing={"max_runs": 20, "max_time_s": 2.0, "max_wall_s": 10.0, "statistic": "median"},
    description="Make `group_means(data)` as fast as possible: data = (keys int64 [n] in 0..groups-1, values "
                "float64 [n], groups); return the float64 mean per group. The program is two modules: "
                "submission.py and its helper grouping.py.",
    wall_s=120.0, memory_mb=2048,
)


@tttd.register_task("group-means-files")
def group_means_files_task() -> SpeedTask:
    """Per-group means over two modules: minimise the time (reward: speedup over the reference)."""
    return SpeedTask(SPEC)
