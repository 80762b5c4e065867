"""The trusted re-check of a speed record (tttd/tasks/speed/recheck.py): run on every device, it
recomputes the reference from the trusted seeds, and an output claimed "over budget" is verified."""

import numpy as np
import pytest

from tttd.tasks.speed.harness import _load_private
from tttd.tasks.speed.recheck import trusted_recheck

PROBLEM = """
import numpy as np
def generate_input(seed, n):
    return np.random.default_rng(seed).normal(size=n)
def reference(x):
    return np.cumsum(x)
"""


def _rec(outputs):
    return {"test_outputs": outputs, "benchmarks": [], "bench_outputs": []}


def test_right_outputs_pass_and_wrong_ones_fail():
    prob = _load_private(PROBLEM)
    cfg = {"device": "cpu", "rtol": 1e-9, "atol": 0.0, "tests": [{"n": 5, "seed": 1}, {"n": 7, "seed": 2}],
           "return_output_bytes": 1 << 20}
    good = [prob.reference(prob.generate_input(1, 5)), prob.reference(prob.generate_input(2, 7))]
    assert trusted_recheck(prob, "reference", _rec(good), cfg) == ""
    with pytest.raises(ValueError, match="trusted re-check of a test output failed"):
        trusted_recheck(prob, "reference", _rec([good[0], np.zeros(7)]), cfg)


def test_an_over_budget_claim_is_verified_not_believed():
    prob = _load_private(PROBLEM)
    cfg = {"device": "cpu", "tests": [{"n": 5, "seed": 1}], "return_output_bytes": 1 << 20}
    with pytest.raises(ValueError, match="over budget"):
        trusted_recheck(prob, "reference", _rec([None]), cfg)
    big = dict(cfg, tests=[{"n": 100_000, "seed": 1}], return_output_bytes=1000)
    assert trusted_recheck(prob, "reference", _rec([None]), big) == ""  # truly over the budget


def test_a_benchmark_sample_without_a_seed_is_refused():
    prob = _load_private(PROBLEM)
    cfg = {"device": "cpu", "tests": [], "benchmarks": [{"n": 5}], "return_output_bytes": 1 << 20}
    rec = {"test_outputs": [], "benchmarks": [{}], "bench_outputs": [{"seed": None, "output": None}]}
    with pytest.raises(ValueError, match="no seed"):
        trusted_recheck(prob, "reference", rec, cfg)
