# An honest fast candidate for examples/speed_group_means.py: two bincounts instead of a loop over
# the groups. The speed tests and benchmarks read this file as their honest group-means program
# (so it must stay free of the static scan's flags: no words such as the kit's package name).
import numpy as np

def group_means(data):
    keys, values, groups = data
    s = np.bincount(keys, weights=values, minlength=groups)
    c = np.bincount(keys, minlength=groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return s / c
