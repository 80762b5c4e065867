"""A documented synthetic count generator with the profile of real droplet scRNA-seq (DENOISING.md 4.2 ii).

A low-rank negative-binomial model::

    base_g ~ LogNormal(0, gene_sdlog)                              heavy-tailed gene means
    type_c ~ Uniform{0..n_types-1};  z_c = centre[type_c] + within_sd * N(0, I_rank)
    W      = N(0, de_sd / sqrt(rank)) on a random de_frac of the genes (0 elsewhere)
    p_c    = softmax(log base + z_c W)                               expression profile of cell c
    L_c    ~ LogNormal(log lib_median, lib_sdlog)                    library size
    X_cg   ~ Poisson(Gamma(shape=theta, scale=L_c p_cg / theta))     NB(mean L_c p_cg, size theta)

with ``centre ~ N(0, I_rank)`` per type. Defaults (``n_types=8, rank=10, within_sd=0.1,
de_frac=0.3, de_sd=1.5, gene_sdlog=1.5, lib_sdlog=0.5, lib_median=4000, theta=10``) reproduce the
real celltypist sample's profile at 800 x 8000: shallow entries (test density a few %), shared
low-dimensional structure with many cells per state, moderate overdispersion, thousands of genes
with heavy-tailed means and library-size variation. Under these, MAGIC-like smoothing beats
identity as on real data. The negative controls (deep sequencing, ``theta=0.5``, cell-specific
profiles ``within_sd=3, n_types=1``) break one property each, and smoothing must then *not* win.

Deterministic: ``numpy.random.default_rng(seed)``. Returns int64 counts and each entry's true
Poisson rate (the Gamma draw): the expression that the molecules of both MCV halves sample, so the
input of an "oracle" that no method can know.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class SyntheticConfig:
    n_cells: int = 800
    n_genes: int = 8000
    n_types: int = 8
    rank: int = 10
    within_sd: float = 0.1
    de_frac: float = 0.3
    de_sd: float = 1.5
    gene_sdlog: float = 1.5
    lib_sdlog: float = 0.5
    lib_median: float = 4000.0
    theta: float = 10.0
    seed: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


def generate(cfg: SyntheticConfig = SyntheticConfig()) -> tuple[np.ndarray, np.ndarray]:
    """(counts int64 cells x genes, true Poisson rates float64) drawn from the model above."""
    if cfg.n_cells < 2 or cfg.n_genes < 2 or cfg.n_types < 1 or cfg.rank < 1:
        raise ValueError("synthetic data needs n_cells >= 2, n_genes >= 2, n_types >= 1, rank >= 1")
    if cfg.theta <= 0 or cfg.lib_median <= 0:
        raise ValueError("theta and lib_median must be > 0")
    rng = np.random.default_rng(cfg.seed)
    n, g = cfg.n_cells, cfg.n_genes
    log_base = rng.normal(0.0, cfg.gene_sdlog, size=g)
    centres = rng.normal(0.0, 1.0, size=(cfg.n_types, cfg.rank))
    types = rng.integers(0, cfg.n_types, size=n)
    z = centres[types] + cfg.within_sd * rng.normal(0.0, 1.0, size=(n, cfg.rank))
    W = rng.normal(0.0, cfg.de_sd / np.sqrt(cfg.rank), size=(cfg.rank, g))
    W[:, rng.random(g) >= cfg.de_frac] = 0.0
    logits = log_base[None, :] + z @ W
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    lib = np.exp(rng.normal(np.log(cfg.lib_median), cfg.lib_sdlog, size=n))
    mean = lib[:, None] * p
    rate = rng.gamma(shape=cfg.theta, scale=mean / cfg.theta)
    counts = rng.poisson(rate).astype(np.int64)
    return counts, rate
