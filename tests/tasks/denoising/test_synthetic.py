"""The synthetic generator's profile (DENOISING.md 4.2 ii) and the negative controls: the
MAGIC-like root program must beat identity on realistic data and must *not* on deep sequencing,
per-entry biological noise (theta = 0.5) or cell-specific profiles."""

from __future__ import annotations

import pytest

from tttd.tasks.denoising.data import Counts
from tttd.tasks.denoising.metrics import split_counts
from tttd.tasks.denoising.problem import Problem
from tttd.tasks.denoising.root_program import magic_denoise
from tttd.tasks.denoising.synthetic import SyntheticConfig, generate


def _scored(**cfg):
    X, rate = generate(SyntheticConfig(**cfg))
    p = Problem(Counts("synthetic", X), split_seed=0)
    rate = rate[:, split_counts(X, 0)[2]]  # the genes the split kept
    base = p.baselines(include_magic=False)
    return p, base, p.score(magic_denoise(p.train)), p.score(rate)


def test_realistic_profile_at_ci_size():
    """500 x 3000 with the documented defaults (DENOISING.md: kNN 0.174, MAGIC 0.197, zeros 0.110)."""
    p, base, root, oracle = _scored(n_cells=500, n_genes=3000)
    density = (p.test > 0).mean()
    assert 0.02 < density < 0.10  # shallow: a few % of held-out entries are non-zero
    assert (p.train <= 1).mean() > 0.8  # most train entries are 0 or 1
    assert 0.12 < root.mse_norm < 0.26 and root.deviance_norm > 0.1  # smoothing beats identity
    assert base["zeros"].mse_norm == pytest.approx(0.110, abs=0.03)
    # the paper's metric is gameable here as on real data; the hardened one is not
    assert base["train_sq"].mse_norm > root.mse_norm
    assert base["train_sq"].deviance_norm < 0 and base["zeros"].deviance_norm < 0
    # the true expression rates beat every method under the hardened metric, not under the MSE
    assert oracle.deviance_norm > root.deviance_norm
    assert oracle.mse_norm < root.mse_norm
    assert max(oracle.mse_norm, oracle.deviance_norm) < 0.5  # far below the leak ceiling (0.9)


@pytest.mark.parametrize("cfg", [
    dict(n_cells=400, n_genes=2000, lib_median=30000),  # deep sequencing
    dict(n_cells=400, n_genes=2000, theta=0.5),  # independent per-entry biological noise
    dict(n_cells=400, n_genes=2000, within_sd=3.0, n_types=1),  # cell-specific profiles
], ids=["deep", "theta0.5", "cell-specific"])
def test_negative_controls_smoothing_does_not_win(cfg):
    _, _, root, _ = _scored(**cfg)
    assert root.mse_norm < 0
    assert root.deviance_norm < 0
