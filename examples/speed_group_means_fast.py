# An honest fast candidate for examples/speed_group_means.py (two bincounts instead of a loop over
# the groups):   tttd verify examples/speed_group_means.py examples/speed_group_means_fast.py
# The tests (tests/gaming, tests/tasks/test_speed_kit.py) and the benchmarks (harness_bench.py,
# speed_bench.py) read this file as their honest group-means program.
import numpy as np

def group_means(data):
    keys, values, groups = data
    s = np.bincount(keys, weights=values, minlength=groups)
    c = np.bincount(keys, minlength=groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return s / c
