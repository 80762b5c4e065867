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


def test_the_physics_floor_refuses_the_impossible_only(tmp_path, monkeypatch):
    from tttd.tasks.speed import floor

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    prob = _load_private(PROBLEM + "\ndef work(n):\n    return {'bytes': 16 * n, 'flops': 0}\n")
    rates = floor.machine_rates("cpu")
    assert rates["bandwidth"] > 1e8 and (tmp_path / "tttd" / "machine.json").is_file()
    assert floor.machine_rates("cpu") == rates  # cached
    case = [{"n": 10_000_000}]  # 160 MB: the floor is tens of microseconds at least
    honest_us = 16e7 / rates["bandwidth"] * 1e6  # the time of one copy at the measured rate
    assert floor.floor_message(prob, case, [honest_us], "cpu") is None
    msg = floor.floor_message(prob, case, [0.5], "cpu")
    assert msg and msg.startswith("impossible") and "below the physics floor" in msg
    assert floor.floor_message(_load_private(PROBLEM), case, [0.001], "cpu") is None  # no work declared
