"""A speed task whose program is several modules: a histogram, the kernel split from a helper.

Run it with:   tttd run examples/speed_files.py --model tiny --steps 2 --max-tokens 256
Check a candidate directory:   tttd verify examples/speed_files.py my_version/

The program is ``submission.py`` (defines ``histogram``; the harness imports it as
``submission``) and ``binning.py`` (a helper module it imports by name). The model sees both and
answers per file (``### File: binning.py`` and a code block, or SEARCH/REPLACE edits under that
header); files it does not mention carry over. A speed task's files are flat modules ``NAME.py``
(tttd/tasks/speed/files.py says why). Correctness is exact: the counts must be equal.
"""

import tttd
from tttd.tasks.speed import SpeedSpec, SpeedTask

PROBLEM = '''\
import numpy as np


def histogram(data):
    """How many of `values` (float64 [n], each in [0, 1)) fall in each of `bins` equal bins."""
    values, bins = data
    out = np.zeros(bins, dtype=np.int64)
    for v in values:
        out[int(v * bins)] += 1
    return out


def generate_input(seed, n, bins):
    return np.random.default_rng(seed).random(n), bins


def work(n, bins):
    """The least a call must do (the speed kit's physics floor): read the values, write the counts."""
    return {"bytes": 8 * n + 8 * bins, "flops": 2 * n}
'''

FILES = {
    "submission.py": '''import numpy as np

from binning import bin_of


def histogram(data):
    values, bins = data
    out = np.zeros(bins, dtype=np.int64)
    for v in values.tolist():
        out[bin_of(v, bins)] += 1
    return out
''',
    "binning.py": '''def bin_of(v, bins):
    """The bin of one value in [0, 1)."""
    return int(v * bins)
''',
}

SPEC = SpeedSpec(
    name="histogram-files",
    problem_source=PROBLEM,  # a module: generate_input(seed, **case), the reference histogram(data)
    entry="histogram", ref_name="histogram",
    files=FILES, main="submission.py",  # the root program: two modules (instead of initial_code)
    tests=[{"n": 10, "bins": 4}, {"n": 1000, "bins": 50}, {"n": 5000, "bins": 999}],  # exact equality
    benchmarks=[{"n": 100_000, "bins": 64}, {"n": 20_000, "bins": 1000}],
    timing={"max_runs": 20, "max_time_s": 2.0, "max_wall_s": 10.0, "statistic": "median"},
    description="Make `histogram(data)` as fast as possible: data = (values float64 [n] in [0, 1), bins); "
                "return the int64 count of values per bin (bin i holds i/bins <= v < (i+1)/bins). The program "
                "is two modules: submission.py and its helper binning.py.",
    wall_s=120.0, memory_mb=2048,
)


@tttd.register_task("histogram-files")
def histogram_files_task() -> SpeedTask:
    """A histogram over two modules: minimise the time (reward: speedup over the reference)."""
    return SpeedTask(SPEC)
