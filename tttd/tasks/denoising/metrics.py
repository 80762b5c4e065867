"""The denoising split and metrics, written from the OpenProblems v1.0.0 pipeline (DENOISING.md 1.2-1.5).

numpy only; nothing here imports scanpy, sklearn or molecular-cross-validation.

- :func:`split_counts`: molecular cross-validation by binomial thinning, exactly OP v1's
  ``split_data``: ``train = RandomState(seed).binomial(X, 0.9)`` on the *dense* integer matrix,
  ``test = X - train``, then genes with no train molecules are dropped. (OP v2 draws on the sparse
  values instead, which gives a different split for the same seed.)
- :func:`log_normalize`: scanpy's ``normalize_total(target_sum=1e4)`` + ``log1p``:
  ``N(A)_ij = log(1 + 1e4 A_ij / sum_k A_ik)``; rows with zero sum stay 0.
- :func:`mse`: mean of ``(N(test) - N(denoised))**2`` over all entries (sklearn's uniform average).
  Invariant to any per-cell scaling of the output.
- :func:`poisson_paper`: OP's "Poisson" metric **with its swapped arguments kept** (the paper's
  numbers use it): ``mean(S - D' * log(S + 1e-6))`` with ``S = test`` and
  ``D' = denoised * sum(test) / sum(train)``. It is linear in D' with weight ``-log(S + 1e-6)``
  (+13.8 where S = 0), so any output with a tiny global scale scores about ``mean(S)``, and
  "perfect" is not its lower bound. Do not read it as a likelihood.
- :func:`poisson_intended`: what OP's docstring describes, ``mean(D' - S * log(D' + 1e-6))``: a
  separately named diagnostic, never used for scoring.
- :func:`normalized`: ``(m_identity - m) / (m_identity - m_perfect)`` (identity = train, perfect =
  test), the paper's 0..1 scale.
- :func:`count_deviance`: the hardened metric (see its docstring for the argument).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

TRAIN_FRACTION = 0.9  # hard-coded in OP v1 (its train_frac argument is ignored)
TARGET_SUM = 1e4
POISSON_EPS = 1e-6
#: floor weight of the hardened metric: this share of each cell's expected test molecules is
#: spread uniformly over the genes (see count_deviance)
DEVIANCE_FLOOR = 0.01


def split_counts(X: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, test, kept_genes): binomial thinning of integer counts as OP v1 / MCV.

    ``X`` is a dense non-negative integer matrix (cells x genes). Genes whose train column sums to
    zero are dropped from both halves; ``kept_genes`` is the boolean mask over X's columns.
    """
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"counts must be a 2-D matrix, got shape {X.shape}")
    if X.dtype.kind == "f":
        if not np.allclose(X, np.round(X)):
            raise ValueError("counts must be integers (molecule counts)")
        X = np.round(X)
    Xi = X.astype(np.int64)
    if (Xi < 0).any():
        raise ValueError("counts must be non-negative")
    rs = np.random.RandomState(seed)
    train = rs.binomial(Xi, TRAIN_FRACTION)
    test = Xi - train
    kept = train.sum(axis=0) > 0
    return train[:, kept], test[:, kept], kept


def log_normalize(A: np.ndarray, target_sum: float = TARGET_SUM) -> np.ndarray:
    """``log1p(target_sum * A / rowsum(A))`` in float64; rows summing to zero stay zero."""
    A = np.asarray(A, dtype=np.float64)
    totals = A.sum(axis=1)
    out = np.zeros_like(A)
    nz = totals > 0
    if nz.any():
        out[nz] = np.log1p(A[nz] * (target_sum / totals[nz])[:, None])
    return out


def mse(test: np.ndarray, denoised: np.ndarray, test_norm: np.ndarray | None = None) -> float:
    """OP's MSE: both matrices normalised to 1e4 per cell and log1p-ed, then the mean squared error.
    Pass ``test_norm = log_normalize(test)`` to reuse it across calls."""
    tn = log_normalize(test) if test_norm is None else test_norm
    diff = tn - log_normalize(denoised)
    return float(np.mean(diff * diff))


def poisson_paper(test: np.ndarray, denoised: np.ndarray, train_total: float) -> float:
    """OP's "Poisson" metric exactly as computed for the paper (swapped arguments kept)."""
    S = np.asarray(test, dtype=np.float64)
    scaled = np.asarray(denoised, dtype=np.float64) * (S.sum() / float(train_total))
    return float(np.mean(S - scaled * np.log(S + POISSON_EPS)))


def poisson_intended(test: np.ndarray, denoised: np.ndarray, train_total: float) -> float:
    """The Poisson NLL OP's docstring describes (diagnostic only): ``mean(D' - S log(D' + 1e-6))``."""
    S = np.asarray(test, dtype=np.float64)
    scaled = np.asarray(denoised, dtype=np.float64) * (S.sum() / float(train_total))
    return float(np.mean(scaled - S * np.log(scaled + POISSON_EPS)))


def normalized(m: float, m_identity: float, m_perfect: float) -> float:
    """The paper's 0..1 scale: 0 = no denoising (train), 1 = perfect (test)."""
    return float((m_identity - m) / (m_identity - m_perfect))


def count_deviance(
    test: np.ndarray, denoised: np.ndarray, train_rowsums: np.ndarray, test_fraction: float,
    floor: float = DEVIANCE_FLOOR,
) -> float:
    """The hardened metric: mean Poisson deviance of the held-out counts under the output's
    per-cell expression profile.

    Each cell's output is turned into a profile (its row divided by its row sum; an all-zero row
    is the uniform profile), mixed with the uniform profile at weight ``floor``, and scaled to the
    cell's *expected* held-out library size, ``train_rowsum * test_fraction / (1 - test_fraction)``
    (train information only; the test split's own totals are not used)::

        lam_cg = E_c * ((1 - floor) * D_cg / sum_g D_cg + floor / n_genes)
        deviance = mean_cg 2 * (S log(S / lam) - (S - lam))        (0 log 0 = 0)

    Why this resists the trivial transforms that the paper's pair of metrics rewards:

    - It is a *proper* scoring rule for the mean: for fixed (unknown) expected counts mu, the
      expected deviance is minimised by lam = mu. Sharpening the profile (``train**2``), shrinking
      it toward zero, or any other distortion of the expected counts costs score in expectation;
      only a better estimate of each cell's expression profile gains. The MSE on log-normalised
      values is not proper in this sense (it rewards shrinkage, DENOISING.md 4.3).
    - It depends on the output only through each cell's profile, so the global and per-cell
      scale of the output cannot matter (the scale artifact of the swapped Poisson metric is gone).
    - A gene predicted at (near) zero where molecules were held out costs about
      ``S log(S / lam_floor)``, large but finite because of the uniform floor; an all-zeros
      output is the uniform profile and scores far below "no denoising".
    - Given each cell's expected library size, the realised minimiser over profiles is the test
      split's own profile, so "perfect" (D = test) stays the top of the 0..1 scale (up to the floor).

    ``floor`` = 1% is a choice (small enough not to blur real profiles, large enough that one
    confidently-zero gene cannot make a cell's loss infinite); it is reported with the score.
    """
    S = np.asarray(test, dtype=np.float64)
    D = np.asarray(denoised, dtype=np.float64)
    n_genes = S.shape[1]
    totals = D.sum(axis=1)
    profile = np.full_like(D, 1.0 / n_genes)
    nz = totals > 0
    profile[nz] = D[nz] / totals[nz][:, None]
    expected = np.asarray(train_rowsums, dtype=np.float64) * (test_fraction / (1.0 - test_fraction))
    lam = expected[:, None] * ((1.0 - floor) * profile + floor / n_genes)
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(S > 0, S * np.log(S / lam), 0.0)
    return float(np.mean(2.0 * (term - (S - lam))))


@dataclass(frozen=True)
class Reference:
    """The per-dataset, per-split anchors of the 0..1 scales (identity = train, perfect = test)."""

    mse_identity: float
    mse_perfect: float
    poisson_identity: float
    poisson_perfect: float
    deviance_identity: float
    deviance_perfect: float
