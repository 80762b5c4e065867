"""Advantages from group rewards: entropic (adaptive or fixed beta, leave-one-out) and mean baseline.

Pure numpy/stdlib, no torch. Everything is float64.

Entropic advantages (SPEC.md 2.1-2.3), for one group of K rewards r_1..r_K:

- ``e_i = exp(beta * (r_i - max_j r_j))`` (stabilised exponentials);
- leave-one-out normaliser ``Z_i = (sum_j e_j - e_i) / (K - 1)``, and ``Z_i = e_i`` when K = 1;
- ``A_i = e_i / (Z_i + 1e-12) - 1``.

What holds for these advantages (and is tested): every ``A_i >= -1``; the best reward gets the
largest advantage (``A`` is non-decreasing in ``r``); for K = 2, ``A_1 = e_1/e_2 - 1`` and
``A_2 = e_2/e_1 - 1`` (up to the 1e-12); for K = 1, ``A = 0``. Unlike a mean baseline they do
**not** sum to zero: with leave-one-out normalisers the sum is >= 0 (Jensen; = 0 only when all
rewards are equal), i.e. the estimator is a biased, optimism-seeking weighting by design.
With K = 2 the adaptive search cannot reach ln 2 (KL < ln 2 for two samples), beta ends huge and
the better sample's advantage is ~1e12 (capped by the 1e-12): as in the reference; avoid K = 2
with the adaptive estimator.

Adaptive beta (``beta=None``): the beta at which ``KL(softmax(beta r) || uniform) = ln 2``, found
exactly as the reference searches for it: K < 2 gives 0; start lo = 0, hi = 1; if KL(1) < ln 2,
double hi while hi < 1e6 and KL(hi) < ln 2; if KL(hi) is still < ln 2, return hi (= 2**20, the
"best effort" answer for all-equal rewards and for K = 2, where KL never reaches ln 2); else bisect
60 times on [0, hi] (lo stays 0 at the start) and return hi.

Where tttd differs from the paper's code, and why:

- **float64, scalar libm arithmetic, sequential sums.** The reference computes in float32 torch
  tensors. tttd computes every quantity with Python floats (``math.exp``/``math.log``, left-to-right
  sums) so that beta and the advantages are bit-identical on every machine and on resume; vectorised
  numpy kernels may differ in the last bit between CPUs (SIMD paths, pairwise summation), and near
  the KL plateau (K = 2, or K = 2m with m tied maxima) a last-bit difference moves the bracket, so
  beta itself would not be reproducible. Groups are small (tens to hundreds), so this costs
  microseconds. The leave-one-out sum ``sum_{j != i} e_j`` is computed directly (prefix plus
  suffix sums), not as ``sum e - e_i``: the subtraction cancels catastrophically when the other
  weights are below ~1e-16 of the top one (the reference then divides by ~0 where the exact
  normaliser is small but non-zero). ``0 * log 0`` is taken as 0 in the KL (the reference would produce NaN when a
  probability underflows to exactly 0 after an overflowing reward difference).
- **Constant groups are all dropped.** A group whose rewards are all equal has no learning signal;
  :func:`group_advantages` drops it, and when *every* group is constant it keeps none, so the caller
  skips the optimizer step. The reference keeps one constant group in that case.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np

TARGET_KL = math.log(2.0)
"""delta: the KL(q_beta || uniform) the adaptive beta aims for."""

LOO_EPS = 1e-12
"""epsilon added to the leave-one-out normaliser (as the reference)."""

BISECTION_STEPS = 60
DOUBLING_LIMIT = 1e6

Estimator = Literal["entropic", "entropic-fixed", "mean"]
ESTIMATORS: tuple[str, ...] = ("entropic", "entropic-fixed", "mean")


def _check_rewards(rewards: Sequence[float] | np.ndarray) -> list[float]:
    """Rewards as a list of Python floats; ValueError if empty, non-numeric or non-finite."""
    try:
        arr = np.asarray(rewards, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"rewards must be a sequence of numbers: {exc}") from None
    if arr.ndim != 1:
        raise ValueError(f"rewards must be one-dimensional, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError("rewards is empty: a group needs at least one reward")
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"rewards must be finite, got {arr[idx]!r} at index {idx} "
            f"({int(bad.sum())} non-finite of {arr.size})"
        )
    return [float(x) for x in arr]


def _fsum_seq(xs: list[float]) -> float:
    """Left-to-right float64 sum (deliberately not pairwise nor compensated: reproducible)."""
    s = 0.0
    for x in xs:
        s += x
    return s


def kl_to_uniform(rewards: Sequence[float] | np.ndarray, beta: float) -> float:
    """KL(softmax(beta * r) || uniform) = sum_i q_i (log q_i + log K), in float64.

    Computed as: z_i = beta (r_i - max r) (0 when beta = 0); lse = log(sum_i exp(z_i)); log q_i = z_i - lse;
    q_i = exp(log q_i); terms with q_i == 0 contribute 0. Sums run left to right.
    """
    r = _check_rewards(rewards)
    return _kl(r, float(beta))


def _scaled(r: list[float], beta: float) -> list[float]:
    """z_i = beta (r_i - max r); exactly 0 when beta == 0 (avoids 0 * -inf after an overflow)."""
    if beta == 0.0:
        return [0.0] * len(r)
    rmax = max(r)
    return [beta * (x - rmax) for x in r]


def _kl(r: list[float], beta: float) -> float:
    k = len(r)
    z = _scaled(r, beta)
    lse = math.log(_fsum_seq([math.exp(v) for v in z]))
    log_k = math.log(k)
    terms = []
    for v in z:
        logq = v - lse
        q = math.exp(logq)
        terms.append(0.0 if q == 0.0 else q * (logq + log_k))
    return _fsum_seq(terms)


def adaptive_beta(rewards: Sequence[float] | np.ndarray) -> float:
    """The reference's adaptive beta (see the module docstring for the exact search)."""
    r = _check_rewards(rewards)
    return _adaptive_beta(r)


def _adaptive_beta(r: list[float]) -> float:
    if len(r) < 2:
        return 0.0
    delta = TARGET_KL
    lo, hi = 0.0, 1.0
    if _kl(r, hi) < delta:
        while hi < DOUBLING_LIMIT and _kl(r, hi) < delta:
            hi *= 2.0
        if _kl(r, hi) < delta:
            return hi
    for _ in range(BISECTION_STEPS):
        mid = (lo + hi) / 2.0
        if _kl(r, mid) < delta:
            lo = mid
        else:
            hi = mid
    return hi


def _entropic(r: list[float], beta: float) -> np.ndarray:
    k = len(r)
    e = [math.exp(v) for v in _scaled(r, beta)]
    if k == 1:
        z = e
    else:
        # sum over j != i as prefix + suffix sums of non-negative terms: no cancellation
        prefix = [0.0] * k
        suffix = [0.0] * k
        acc = 0.0
        for i in range(k):
            prefix[i] = acc
            acc += e[i]
        acc = 0.0
        for i in range(k - 1, -1, -1):
            suffix[i] = acc
            acc += e[i]
        z = [(prefix[i] + suffix[i]) / (k - 1) for i in range(k)]
    return np.array([ei / (zi + LOO_EPS) - 1.0 for ei, zi in zip(e, z)], dtype=np.float64)


def entropic_advantages(
    rewards: Sequence[float] | np.ndarray, beta: float | None = None
) -> tuple[np.ndarray, float]:
    """Leave-one-out entropic advantages of one group; returns ``(advantages, beta used)``.

    ``beta=None`` solves for the adaptive beta (KL to uniform = ln 2, the paper's setting);
    a number uses that fixed beta (the reference's ``adv_estimator="entropic"`` default is 2.0).
    Raises ValueError for empty or non-finite rewards, or a negative / non-finite beta.
    """
    r = _check_rewards(rewards)
    if beta is None:
        b = _adaptive_beta(r)
    else:
        b = float(beta)
        if not math.isfinite(b) or b < 0:
            raise ValueError(f"beta must be a finite number >= 0, got {beta!r}")
    return _entropic(r, b), b


def mean_baseline_advantages(rewards: Sequence[float] | np.ndarray) -> np.ndarray:
    """``r - mean(r)`` (the GRPO-style baseline without std normalisation)."""
    r = np.asarray(_check_rewards(rewards), dtype=np.float64)
    return r - r.mean()


def is_constant(rewards: Sequence[float] | np.ndarray) -> bool:
    """True when every reward of the group is exactly equal (no learning signal)."""
    r = _check_rewards(rewards)
    return all(x == r[0] for x in r)


@dataclass
class GroupAdvantages:
    """Advantages of one step's groups.

    ``advantages[g]`` is the float64 array for group g, or None when the group was dropped
    (constant rewards). ``betas[g]`` is the beta used (None for dropped groups and for the mean
    estimator). ``kept`` counts the groups with advantages; when it is 0 the caller skips the
    optimizer step.
    """

    advantages: list[np.ndarray | None]
    betas: list[float | None]
    kept: int
    dropped: list[int] = field(default_factory=list)
    #: per group, the indices left out before the advantages were computed (scorer errors): they
    #: carry no signal, have advantage 0 here, and the caller leaves them out of the batch
    excluded: list[frozenset[int]] = field(default_factory=list)

    def in_batch(self, g: int, i: int) -> bool:
        """Whether sample ``i`` of group ``g`` trains (its group kept, the sample not excluded)."""
        return self.advantages[g] is not None and not (g < len(self.excluded) and i in self.excluded[g])

    @property
    def skip_step(self) -> bool:
        return self.kept == 0


def group_advantages(
    groups: Sequence[Sequence[float]],
    estimator: str = "entropic",
    beta: float = 2.0,
    exclude: Sequence[Sequence[int]] | None = None,
) -> GroupAdvantages:
    """Advantages for every group of a step, applying the constant-group rule.

    ``exclude[g]``: indices of group g that are removed *before* its advantages are computed
    (samples whose scorer raised, issue 32): they move neither beta nor the others' leave-one-out
    baselines, and a group left constant (or empty) by the removal is dropped.

    ``estimator``: ``"entropic"`` (adaptive beta, the paper), ``"entropic-fixed"`` (fixed
    ``beta``) or ``"mean"`` (r - mean r). Groups whose rewards are all equal (including
    single-reward groups) are dropped; if every group is constant none is kept (``skip_step``),
    unlike the reference, which keeps one.
    """
    _check_estimator(estimator, beta)
    if len(groups) == 0:
        raise ValueError("groups is empty: a step needs at least one group")
    return combine_groups([
        one_group_advantages(g, rewards, estimator, beta, exclude[g] if exclude is not None and g < len(exclude) else ())
        for g, rewards in enumerate(groups)])


@dataclass
class OneGroup:
    """One group's share of :class:`GroupAdvantages` (None advantages: the group is dropped)."""

    advantages: np.ndarray | None
    beta: float | None
    excluded: frozenset[int]


def one_group_advantages(g: int, rewards: Sequence[float], estimator: str = "entropic", beta: float = 2.0,
                         exclude: Sequence[int] = ()) -> OneGroup:
    """Group ``g``'s advantages alone (the rules of :func:`group_advantages`, which applies this
    to every group): groups never depend on each other, so the loop computes a group's as soon as
    its last candidate is evaluated (:mod:`tttd.streaming`). ``g`` only names it in errors."""
    _check_estimator(estimator, beta)
    excluded = frozenset(int(i) for i in exclude)
    keep = [i for i in range(len(rewards)) if i not in excluded]
    try:
        r = _check_rewards([rewards[i] for i in keep]) if keep or not len(rewards) else []
    except ValueError as exc:
        raise ValueError(f"group {g}: {exc}") from None
    if not r or all(x == r[0] for x in r):
        return OneGroup(None, None, excluded)
    if estimator == "mean":
        a, b = mean_baseline_advantages(r), None
    else:
        b = _adaptive_beta(r) if estimator == "entropic" else float(beta)
        a = _entropic(r, b)
    full = np.zeros(len(rewards), dtype=np.float64)
    full[keep] = a
    return OneGroup(full, b, excluded)


def _check_estimator(estimator: str, beta: float) -> None:
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown advantage estimator {estimator!r}; known: {list(ESTIMATORS)}")
    if estimator == "entropic-fixed" and (not math.isfinite(float(beta)) or beta < 0):
        raise ValueError(f"beta must be a finite number >= 0, got {beta!r}")


def combine_groups(parts: Sequence[OneGroup]) -> GroupAdvantages:
    """A step's :class:`GroupAdvantages` from its groups' parts, in group order."""
    dropped = [g for g, p in enumerate(parts) if p.advantages is None]
    return GroupAdvantages(advantages=[p.advantages for p in parts], betas=[p.beta for p in parts],
                           kept=len(parts) - len(dropped), dropped=dropped, excluded=[p.excluded for p in parts])
