"""The ablation's statistics on hand-made curves (no model, no runs)."""

import math

import numpy as np
import pytest

from tttd.ablate.stats import RunCurve, bootstrap_mean, paired, samples_to, sign_test, value_at, wilcoxon


def curve(variant, seed, best, per_step=8, valid=10, total=20):
    return RunCurve(variant, seed, True, [per_step * (i + 1) for i in range(len(best))], best, valid, total)


def test_bootstrap_interval_holds_the_mean_and_narrows_with_data():
    rng = np.random.default_rng(1)
    small = bootstrap_mean(rng.normal(0, 1, 5))
    big = bootstrap_mean(rng.normal(0, 1, 500))
    assert small["lo"] <= small["mean"] <= small["hi"] and big["lo"] <= big["mean"] <= big["hi"]
    assert big["hi"] - big["lo"] < small["hi"] - small["lo"]
    assert bootstrap_mean([]) == {"mean": None, "lo": None, "hi": None, "n": 0}
    assert bootstrap_mean([0.5])["lo"] == 0.5
    assert bootstrap_mean([1.0, 2.0, 3.0]) == bootstrap_mean([1.0, 2.0, 3.0])  # fixed generator


def test_sign_test_exact_values():
    assert sign_test(8, 0) == pytest.approx(2 / 256)
    assert sign_test(4, 4) == 1.0
    assert sign_test(0, 0) is None
    assert sign_test(6, 2) == pytest.approx(2 * (1 + 8 + 28) / 256)


def test_wilcoxon_needs_nonzero_differences():
    assert wilcoxon([0.0, 0.0]) is None
    p = wilcoxon([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    assert p is None or p == pytest.approx(2 / 256)  # None only without scipy


def test_value_at_and_samples_to_threshold():
    c = curve("full", 0, [0.5, 0.45, 0.45, 0.40])  # samples 8, 16, 24, 32
    assert value_at(c, 7) is None and value_at(c, 16) == 0.45 and value_at(c, 100) == 0.40
    assert samples_to(c, 0.45, maximize=False) == 16
    assert samples_to(c, 0.30, maximize=False) is None
    assert samples_to(curve("full", 0, [0.1, 0.3]), 0.3, maximize=True) == 16


def test_paired_comparison_orients_by_direction():
    done = {("full", 0): curve("full", 0, [0.40]), ("full", 1): curve("full", 1, [0.42]),
            ("mean", 0): curve("mean", 0, [0.41]), ("mean", 1): curve("mean", 1, [0.40]),
            ("full", 2): curve("full", 2, [0.40])}  # seed 2 has no pair
    lower_better = paired(done, "mean", [0, 1, 2], sign=-1.0, rng=np.random.default_rng(0))
    assert lower_better["pairs"] == 2
    assert lower_better["variant_better_seeds"] == [1] and lower_better["full_better_seeds"] == [0]
    assert lower_better["mean_difference"]["mean"] == pytest.approx((-0.01 + 0.02) / 2)
    higher_better = paired(done, "mean", [0, 1, 2], sign=1.0, rng=np.random.default_rng(0))
    assert higher_better["variant_better_seeds"] == [0]
    assert math.isclose(higher_better["sign_test_p"], 1.0)
