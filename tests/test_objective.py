"""Tests for tttd.objective: entropic advantages (adaptive / fixed beta), mean baseline, groups."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tttd.objective import (
    GroupAdvantages,
    adaptive_beta,
    entropic_advantages,
    group_advantages,
    is_constant,
    kl_to_uniform,
    mean_baseline_advantages,
)

LN2 = math.log(2.0)


# ------------------------------------------------------------------------------------------
# An independent, naive re-implementation of the reference procedure (SPEC.md 2.1-2.3), float64
# scalar arithmetic, left-to-right sums, 0 * log 0 = 0.
# ------------------------------------------------------------------------------------------


def naive_kl(rewards, beta):
    k = len(rewards)
    top = rewards[0]
    for x in rewards:
        if x > top:
            top = x
    zs = []
    for x in rewards:
        zs.append(0.0 if beta == 0.0 else beta * (x - top))
    total = 0.0
    for z in zs:
        total = total + math.exp(z)
    log_norm = math.log(total)
    kl = 0.0
    for z in zs:
        lq = z - log_norm
        q = math.exp(lq)
        if q != 0.0:
            kl = kl + q * (lq + math.log(k))
    return kl


def naive_beta(rewards):
    if len(rewards) < 2:
        return 0.0
    delta = math.log(2.0)
    lo = 0.0
    hi = 1.0
    if naive_kl(rewards, 1.0) < delta:
        while hi < 1e6 and naive_kl(rewards, hi) < delta:
            hi = hi * 2.0
        if naive_kl(rewards, hi) < delta:
            return hi
    i = 0
    while i < 60:
        mid = (lo + hi) / 2.0
        if naive_kl(rewards, mid) < delta:
            lo = mid
        else:
            hi = mid
        i += 1
    return hi


def naive_advantages(rewards, beta):
    k = len(rewards)
    top = max(rewards)
    e = [1.0 if beta == 0.0 else math.exp(beta * (x - top)) for x in rewards]
    out = []
    for i, v in enumerate(e):
        if k == 1:
            z = v
        else:
            others = 0.0
            for j, w in enumerate(e):
                if j != i:
                    others += w
            z = others / (k - 1)
        out.append(v / (z + 1e-12) - 1.0)
    return out


def close(a: float, b: float, rel: float = 1e-9) -> bool:
    return a == b or abs(a - b) <= rel * max(abs(a), abs(b))


def adv_close(a: float, b: float, rel: float = 1e-9) -> bool:
    """Advantages are ``ratio - 1``: compare relative to ``1 + |A|`` (the ratio's scale), since
    the final subtraction leaves an absolute error of ~1e-16 however small A is."""
    return abs(a - b) <= rel * (1.0 + max(abs(a), abs(b)))


# Rewards of many shapes: ties, tiny and huge scales, negatives.
_scalar = st.one_of(
    st.floats(-10, 10, allow_nan=False),
    st.floats(-1e300, 1e300, allow_nan=False),
    st.floats(-1e-300, 1e-300, allow_nan=False),
    st.sampled_from([0.0, 1.0, -1.0, 0.5, 2.0]),
    st.integers(-3, 3).map(float),
)
rewards_st = st.one_of(
    st.lists(_scalar, min_size=1, max_size=70),
    st.lists(st.sampled_from([0.0, 1.0]), min_size=1, max_size=12),  # ties and plateaus
    st.tuples(st.floats(-1e6, 1e6), st.floats(1e-12, 1e6), st.lists(st.floats(0, 1), min_size=1, max_size=64)).map(
        lambda t: [t[0] + t[1] * u for u in t[2]]
    ),
)


# ------------------------------------------------------------------------------------------
# Agreement with the naive reference
# ------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rewards_st)
def test_matches_naive_reference(rewards):
    adv, beta = entropic_advantages(rewards)
    ref_beta = naive_beta(rewards)
    assert close(beta, ref_beta), (beta, ref_beta)
    ref = naive_advantages(rewards, ref_beta)
    assert adv.dtype == np.float64 and adv.shape == (len(rewards),)
    for a, b in zip(adv.tolist(), ref):
        assert adv_close(a, b), (a, b)


@settings(max_examples=100, deadline=None)
@given(rewards_st, st.floats(0, 50))
def test_fixed_beta_matches_naive(rewards, beta):
    adv, b = entropic_advantages(rewards, beta=beta)
    assert b == beta
    for a, r in zip(adv.tolist(), naive_advantages(rewards, beta)):
        assert adv_close(a, r), (a, r)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 1), min_size=2, max_size=64))
def test_advantage_formula_against_numpy(rewards):
    # independent vectorised formula; beta = 2 keeps every weight >= e^-2 (no cancellation)
    r = np.asarray(rewards)
    e = np.exp(2.0 * (r - r.max()))
    z = (e.sum() - e) / (r.size - 1)
    expected = e / (z + 1e-12) - 1.0
    adv, _ = entropic_advantages(rewards, beta=2.0)
    np.testing.assert_allclose(adv, expected, rtol=1e-9, atol=1e-12)


# ------------------------------------------------------------------------------------------
# Properties of beta and of the advantages
# ------------------------------------------------------------------------------------------


def _n_max(rewards):
    m = max(rewards)
    return sum(1 for x in rewards if x == m)


@settings(max_examples=200, deadline=None)
@given(rewards_st)
def test_beta_brackets_the_target(rewards):
    beta = adaptive_beta(rewards)
    k = len(rewards)
    if k < 2:
        assert beta == 0.0
        return
    if beta == 2.0**20 and kl_to_uniform(rewards, beta) < LN2:
        # best effort: never reached; mathematically impossible when K <= 2m (plateau
        # log(K/m) <= ln 2), otherwise only when beta*spread stays tiny even at 2**20
        return
    # the bisection ran: beta is the upper end of a tight bracket (hi0 * 2**-60 wide, or a few
    # ulps once the halving stalls; KL flickers at the last bit, so probe 1e-9 below beta)
    assert kl_to_uniform(rewards, beta) >= LN2
    if k <= 2 * _n_max(rewards):
        # plateau: KL -> ln 2 from below only; it reached ln 2 by rounding, so KL flickers
        # at the last bit around there and no clean bracket exists
        assert kl_to_uniform(rewards, beta) - LN2 <= 1e-15
        return
    hi0 = 1.0
    while hi0 < beta:
        hi0 *= 2.0
    width = max(hi0 * 2.0**-60, 1e-9 * beta)
    assert kl_to_uniform(rewards, beta - width) < LN2


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.floats(0, 1), min_size=3, max_size=64).filter(lambda r: len(set(r)) > 1),
    st.sampled_from([1e-2, 1.0, 1e2]),
)
def test_kl_equals_ln2_when_reachable(unit, scale):
    rewards = [scale * u for u in unit]
    if len(rewards) <= 2 * _n_max(rewards):
        return  # plateau log(K/m) <= ln 2: unreachable
    beta = adaptive_beta(rewards)
    if beta == 2.0**20 and kl_to_uniform(rewards, beta) < LN2:
        # the bracket did not find it (too little separation even at beta = 2**20)
        assert kl_to_uniform(rewards, 2.0**20) < LN2
        return
    assert abs(kl_to_uniform(rewards, beta) - LN2) <= 1e-9


@settings(max_examples=200, deadline=None)
@given(rewards_st)
def test_advantage_properties(rewards):
    adv, beta = entropic_advantages(rewards)
    assert np.all(np.isfinite(adv))
    assert np.all(adv >= -1.0)
    # the ordering of rewards is preserved (weights are monotone in r), up to rounding of the
    # leave-one-out sums (tied rewards sum their others in a different order)
    order = np.argsort(rewards, kind="stable")
    a = adv[order]
    assert np.all(np.diff(a) >= -1e-12 * (1 + np.abs(a[1:])))
    if len(rewards) > 1 and len(set(rewards)) == 1:
        np.testing.assert_allclose(adv, 0.0, atol=1e-9)
    # LOO entropic advantages are not centred: the sum is >= 0 (Jensen), up to the epsilon
    assert adv.sum() >= -1e-9 * len(rewards)


@settings(max_examples=100, deadline=None)
@given(st.floats(-5, 5), st.floats(-5, 5), st.floats(0, 20))
def test_k2_closed_form(r1, r2, beta):
    adv, _ = entropic_advantages([r1, r2], beta=beta)
    e1, e2 = math.exp(beta * (r1 - max(r1, r2))), math.exp(beta * (r2 - max(r1, r2)))
    assert close(adv[0], e1 / (e2 + 1e-12) - 1, 1e-12)
    assert close(adv[1], e2 / (e1 + 1e-12) - 1, 1e-12)


# ------------------------------------------------------------------------------------------
# Hand-computed values
# ------------------------------------------------------------------------------------------


def test_hand_values_fixed_beta():
    # r = [0, 1], beta = 1: e = [e^-1, 1]; A = [e^-1 - 1, e - 1]
    adv, b = entropic_advantages([0.0, 1.0], beta=1.0)
    assert b == 1.0
    assert adv[0] == pytest.approx(math.exp(-1) - 1, rel=1e-11)
    assert adv[1] == pytest.approx(math.e - 1, rel=1e-11)
    # r = [0, 0, ln 2], beta = 1: e = [1/2, 1/2, 1]; Z = [3/4, 3/4, 1/2]; A = [-1/3, -1/3, 1]
    adv, _ = entropic_advantages([0.0, 0.0, math.log(2)], beta=1.0)
    np.testing.assert_allclose(adv, [-1 / 3, -1 / 3, 1.0], rtol=1e-11)
    # K = 1: Z = e, A = e / (e + 1e-12) - 1 ~ -1e-12
    adv, b = entropic_advantages([3.0])
    assert b == 0.0 and adv.shape == (1,) and abs(adv[0]) < 1e-11
    # beta = 0: every weight is 1, every advantage ~ 0
    adv, _ = entropic_advantages([1.0, 5.0, -3.0], beta=0.0)
    np.testing.assert_allclose(adv, 0.0, atol=1e-11)


def test_hand_kl_values():
    # KL(softmax(0) || U) = 0; two values at beta -> inf concentrate: KL -> ln 2
    assert kl_to_uniform([0.0, 1.0, 2.0], 0.0) == 0.0
    # [0, ln 3] at beta 1: q = [1/4, 3/4]; KL = 1/4 ln(1/2) + 3/4 ln(3/2)
    expected = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    assert kl_to_uniform([0.0, math.log(3.0)], 1.0) == pytest.approx(expected, rel=1e-12)


def test_adaptive_beta_reference_cases():
    # all equal: KL is 0 for every beta -> doubling ends at 2**20
    assert adaptive_beta([1.0, 1.0, 1.0, 1.0]) == 2.0**20
    assert adaptive_beta([7.0]) == 0.0
    # a K=3 case solved independently with a scalar root finder
    rewards = [0.0, 0.5, 1.0]
    beta = adaptive_beta(rewards)
    from scipy.optimize import brentq

    root = brentq(lambda b: kl_to_uniform(rewards, b) - LN2, 1e-6, 1e3, xtol=1e-15, rtol=1e-15)
    assert beta == pytest.approx(root, rel=1e-12)
    # only beta * r matters: scaling rewards by s divides beta by s (to bisection precision)
    assert adaptive_beta([10 * x for x in rewards]) == pytest.approx(beta / 10, rel=1e-12)


def test_mean_baseline():
    np.testing.assert_array_equal(mean_baseline_advantages([1.0, 2.0, 3.0]), [-1.0, 0.0, 1.0])
    assert mean_baseline_advantages([4.0]).tolist() == [0.0]
    assert mean_baseline_advantages([1, 2, 3, 6]).sum() == pytest.approx(0.0, abs=1e-12)


# ------------------------------------------------------------------------------------------
# Errors
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [[], [1.0, float("nan")], [float("inf"), 0.0], [[1.0, 2.0]]])
def test_bad_rewards_raise(bad):
    with pytest.raises(ValueError, match="empty|finite|one-dimensional"):
        entropic_advantages(bad)
    with pytest.raises(ValueError):
        mean_baseline_advantages(bad)


def test_bad_beta_and_estimator():
    with pytest.raises(ValueError, match="beta"):
        entropic_advantages([0.0, 1.0], beta=-1.0)
    with pytest.raises(ValueError, match="beta"):
        entropic_advantages([0.0, 1.0], beta=float("nan"))
    with pytest.raises(ValueError, match="unknown advantage estimator"):
        group_advantages([[0.0, 1.0]], estimator="ppo")
    with pytest.raises(ValueError, match="empty"):
        group_advantages([])
    with pytest.raises(ValueError, match="group 1: .*finite"):
        group_advantages([[0.0, 1.0], [float("nan"), 1.0]])


# ------------------------------------------------------------------------------------------
# Groups and the constant-group rule
# ------------------------------------------------------------------------------------------


def test_group_advantages_drops_constant_groups():
    groups = [[1.0, 1.0, 1.0], [0.0, 1.0, 2.0], [5.0], [0.0, 3.0, 3.0, 1.0]]
    ga = group_advantages(groups)
    assert isinstance(ga, GroupAdvantages)
    assert ga.kept == 2 and ga.dropped == [0, 2] and not ga.skip_step
    assert ga.advantages[0] is None and ga.advantages[2] is None
    assert ga.betas[0] is None and ga.betas[2] is None
    for g in (1, 3):
        adv, beta = entropic_advantages(groups[g])
        np.testing.assert_array_equal(ga.advantages[g], adv)
        assert ga.betas[g] == beta


def test_group_advantages_all_constant_skips_step():
    ga = group_advantages([[0.0, 0.0], [2.0, 2.0, 2.0]], estimator="entropic")
    assert ga.kept == 0 and ga.skip_step and ga.advantages == [None, None]


def test_group_advantages_estimators():
    groups = [[0.0, 1.0, 3.0]]
    fixed = group_advantages(groups, estimator="entropic-fixed", beta=0.5)
    np.testing.assert_array_equal(fixed.advantages[0], entropic_advantages(groups[0], 0.5)[0])
    assert fixed.betas == [0.5]
    mean = group_advantages(groups, estimator="mean")
    np.testing.assert_allclose(mean.advantages[0], [-4 / 3, -1 / 3, 5 / 3])
    assert mean.betas == [None]


def test_is_constant():
    assert is_constant([2.0, 2.0]) and is_constant([1.0])
    assert not is_constant([2.0, 2.0 + 1e-15])
