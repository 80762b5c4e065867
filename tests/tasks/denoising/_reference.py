"""The hardened metric's normalised score computed independently of tttd.tasks.denoising.metrics
(issue 25: the figures the task prints, e.g. ``zeros .../.../-0.715``, were copied from its own
output): the Poisson deviance as twice the log-likelihood ratio of the saturated model (lam = S)
to the output's, with scipy.stats.poisson, on the output's per-cell profile with a 1% uniform
floor scaled to each cell's expected held-out library size (DENOISING.md; the same definition),
then put on the 0..1 scale between no denoising (D = train) and the held-out counts (D = test)."""

from __future__ import annotations

import re

import numpy as np
from scipy.stats import poisson

FLOOR = 0.01


def _deviance(S, D, expected):
    genes = S.shape[1]
    totals = D.sum(axis=1, keepdims=True)
    profile = np.where(totals > 0, D / np.where(totals > 0, totals, 1.0), 1.0 / genes)
    lam = expected[:, None] * ((1.0 - FLOOR) * profile + FLOOR / genes)
    saturated = np.where(S > 0, poisson.logpmf(S, np.where(S > 0, S, 1.0)), 0.0)  # log P(S | lam = S)
    return 2.0 * float(np.mean(saturated - poisson.logpmf(S, lam)))


def hardened_norm(problem, D) -> float:
    """``deviance_norm`` of output D on ``problem`` (its train and test splits)."""
    S = problem.test
    expected = problem.train.sum(axis=1) * (problem.test_fraction / (1.0 - problem.test_fraction))
    dev, ident, perfect = (_deviance(S, X, expected) for X in (D, problem.train, problem.test))
    return (ident - dev) / (ident - perfect)


def printed_hardened(message: str, name: str) -> float:
    """The hardened figure a verdict message prints for baseline ``name`` (``name a/b/c``)."""
    m = re.search(rf"\b{re.escape(name)} (-?\d+\.\d+)/(-?\d+\.\d+)/(-?\d+\.\d+)", message)
    assert m, (name, message)
    return float(m.group(3))
