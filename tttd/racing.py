"""Racing: stop a candidate's case runs once a sequential test shows it cannot beat its rival.

Any task whose value is the mean of per-case scores over a fixed set of N cases (AHC: 150 public
cases) can race. The child runs its cases in a random order of its own (seeded by the caller,
e.g. from the candidate's code, so a rerun or a resumed run takes the same order), in stages
(e.g. 10, 20, 40, 80, then all). At the end of each stage but the last, the paired differences
``d_i = child_i - rival_i`` on the cases run so far are a simple random sample WITHOUT
replacement of the N differences whose mean D decides the comparison. The child is dropped
(raced out) when the one-sided upper confidence bound of D is below zero:

    mean(d) + q * sd(d) / sqrt(n) * sqrt(1 - n/N)  <  0,
    q = t_{n-1, 1-alpha/K} + max(0, g) / (6 sqrt(n)) * (2 z^2 + 1),  z = z_{1-alpha/K}

with K the number of looks (a Bonferroni split of ``alpha`` over the looks, so the chance of
dropping a child with D >= 0 over the whole race is at most ``alpha``, to the accuracy of the
Student-t approximation), ``sqrt(1 - n/N)`` the finite-population correction (after all N cases
there is nothing left to estimate), and the second term of ``q`` the Edgeworth (Cornish-Fisher)
correction of the studentised mean's quantile for the sample skewness ``g`` of the differences,
applied only when ``g > 0``: a child that loses a little on most cases and gains much on a few
looks worse than it is in a small sample, and the correction widens the bound for it. A child
that equals its rival on every case run so far has sd 0 and mean 0 and is never dropped; with
sd 0 and a negative mean it is dropped.

The error rate is NOT distribution-free: no test of a mean from a few cases can see a gain that
sits on a few cases it has not run. tests/test_racing.py measures the rate on simulated children
(normal, heavy-tailed and right-skewed differences); docs/benchmarks.md measures it on recorded
AHC039 and AHC058 candidates.

The rival (issue 35: stop a candidate "as soon as a sequential test shows that it cannot enter the
archive's top-k under its parent"): the archive keeps the best ``topk_children`` (k) children of
each parent, whether or not they beat the parent, so the bar is the k-th best child kept under
the parent when the child's group is launched (:meth:`tttd.archive.Archive.rival`), with its
per-case scores; a parent with fewer than k children has no rival (any valid child would be
kept) and its children run every case. Siblings sampled in the same step are not rivals: which
of them finishes first depends on timing, and a resumed run must race exactly as the first one
did (the loop launches from the archive as committed after the previous step; ``--async-steps``
from the archive as of selection, and keeps the rivals with the steps in flight). A sibling
that the test lets through may still be pruned at the end of the step by a better sibling: racing
only ever saves the cases of a child the archive would not keep, it never decides which of the
survivors are kept. Before this, the bar was the parent: it dropped children the archive would
have kept (worse than the parent, but among its best k) and never dropped a child that beat the
parent but not its kept children.

Stages (``race=10,20,40,80`` in the docs): differences between AHC programs are right-skewed (a
better child often gains on a few cases only), which is why the skewness term is there. Against
the rival, on recorded AHC039 and AHC058 candidates (docs/benchmarks.md), looks at 10,20,40,80
cases with alpha 0.01 lost 2 of 11,093 good children (and 30,60,100 also 2, saving less);
against the parent (the bar before), early looks dropped children at or above the bar more
often, which is why 30,60,100 was recommended then.

Not from the paper (its evaluation runs every case); the paper's rule that a case which fails
(wrong answer, crash, time-out) makes the whole candidate invalid is kept, and is not a racing
decision: a failing child stops at its first failure with or without racing.
"""

from __future__ import annotations

import functools
import hashlib
import math
import random
from dataclasses import dataclass
from typing import Sequence


@functools.lru_cache(maxsize=4096)
def _quantiles(p: float, df: int) -> tuple[float, float]:
    """(Student-t quantile with ``df`` degrees of freedom, normal quantile) at ``p``."""
    from scipy.stats import norm, t  # scipy is a core dependency; imported only when racing

    return float(t.ppf(p, df)), float(norm.ppf(p))


def upper_bound(diffs: Sequence[float], n_total: int, level: float, skew_correction: bool = True) -> float:
    """One-sided upper confidence bound at ``level`` (e.g. 0.999) of the mean of all ``n_total``
    paired differences, from the ``len(diffs)`` of them sampled without replacement (the module
    doc's formula; ``skew_correction=False`` drops its skewness term, for comparison)."""
    n = len(diffs)
    if n == 0:
        return math.inf
    mean = math.fsum(diffs) / n
    if n >= n_total:
        return mean  # every case seen: the mean is exact
    if n < 2:
        return math.inf
    m2 = math.fsum((x - mean) ** 2 for x in diffs)
    se = math.sqrt(m2 / (n - 1) / n * (1.0 - n / n_total))
    if se == 0.0:
        return mean
    skew = (math.fsum((x - mean) ** 3 for x in diffs) / n) / (m2 / n) ** 1.5
    t_q, z_q = _quantiles(level, n - 1)
    q = t_q + (max(0.0, skew) if skew_correction else 0.0) / (6.0 * math.sqrt(n)) * (2.0 * z_q * z_q + 1.0)
    return mean + q * se


@dataclass(frozen=True)
class RaceTest:
    """The sequential test of one race: drop at a look when the bound of ``upper_bound`` at level
    ``1 - alpha / looks`` is below zero. ``looks``: the stage ends before the last (the number of
    times the test is applied)."""

    alpha: float
    looks: int
    n_total: int

    def __post_init__(self) -> None:
        if not (0.0 < self.alpha < 1.0):
            raise ValueError(f"race alpha must be in (0, 1), got {self.alpha!r}")
        if self.looks < 0 or self.n_total < 1:
            raise ValueError(f"bad race test sizes: looks={self.looks}, n_total={self.n_total}")

    @property
    def level(self) -> float:
        return 1.0 - self.alpha / max(1, self.looks)

    def drop(self, child: Sequence[float], rival: Sequence[float]) -> bool:
        """Whether the child, with these per-case scores paired with its rival's on the same cases
        (maximised scores), is shown worse than its rival over all ``n_total`` cases."""
        if len(child) != len(rival):
            raise ValueError("child and rival scores must be paired (same cases, same length)")
        diffs = [float(c) - float(p) for c, p in zip(child, rival)]
        return upper_bound(diffs, self.n_total, self.level) < 0.0


def case_order(n: int, key: str | bytes) -> list[int]:
    """A random order of the case indices 0..n-1, fixed by ``key`` (e.g. the candidate's code):
    the same candidate always races on the same order, different candidates on independent ones."""
    data = key.encode() if isinstance(key, str) else key
    seed = int.from_bytes(hashlib.sha256(b"tttd-race-order\0" + data).digest()[:8], "big")
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return order
