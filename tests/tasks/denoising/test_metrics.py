"""The split and the metrics, from the spec (DENOISING.md 1.2-1.5) and against its measured table."""

from __future__ import annotations

import numpy as np
import pytest

from tttd.tasks.denoising import baselines as B
from tttd.tasks.denoising import metrics as M


def test_split_is_dense_binomial_thinning_with_legacy_randomstate():
    X = np.random.default_rng(1).poisson(0.7, size=(30, 40))
    X[:, 5] = 0  # a gene with no molecules is dropped
    train, test, kept = M.split_counts(X, seed=7)
    expected = np.random.RandomState(7).binomial(X, 0.9)
    keep = expected.sum(axis=0) > 0
    assert not kept[5] and np.array_equal(kept, keep)
    assert np.array_equal(train, expected[:, keep])
    assert np.array_equal(test, (X - expected)[:, keep])
    assert train.dtype == np.int64 and (test >= 0).all()


def test_split_rejects_non_counts():
    with pytest.raises(ValueError, match="integers"):
        M.split_counts(np.array([[0.5, 1.0]]), 0)
    with pytest.raises(ValueError, match="non-negative"):
        M.split_counts(np.array([[-1, 1]]), 0)


def test_log_normalize_and_mse_as_scanpy_sklearn():
    A = np.array([[1.0, 3.0, 0.0], [0.0, 0.0, 0.0], [2.0, 2.0, 4.0]])
    N = M.log_normalize(A)
    assert N[0] == pytest.approx(np.log1p(1e4 * np.array([0.25, 0.75, 0.0])))
    assert (N[1] == 0).all()  # a zero row stays zero
    D = np.array([[2.0, 1.0, 1.0], [1.0, 1.0, 1.0], [0.0, 1.0, 3.0]])
    expected = np.mean((N - M.log_normalize(D)) ** 2)
    assert M.mse(A, D) == pytest.approx(expected, rel=1e-14)
    # invariant to any per-cell scaling of the output
    assert M.mse(A, D * np.array([[3.0], [1e-5], [7.0]])) == pytest.approx(expected, rel=1e-12)


def test_poisson_keeps_the_swapped_arguments():
    rng = np.random.default_rng(0)
    S = rng.poisson(0.3, size=(20, 30)).astype(float)
    T = rng.poisson(2.7, size=(20, 30)).astype(float)
    D = rng.random((20, 30))
    r = S.sum() / T.sum()
    assert M.poisson_paper(S, D, T.sum()) == pytest.approx(np.mean(S - r * D * np.log(S + 1e-6)))
    assert M.poisson_intended(S, D, T.sum()) == pytest.approx(np.mean(r * D - S * np.log(r * D + 1e-6)))
    # linear in the output: a tiny global scale scores about mean(S), zeros exactly mean(S)
    assert M.poisson_paper(S, np.zeros_like(D), T.sum()) == pytest.approx(S.mean())


def test_deviance_is_scale_free_and_minimised_by_the_test_profile():
    rng = np.random.default_rng(3)
    mu = np.exp(rng.normal(0.0, 1.5, size=(10, 50)))  # heavy-tailed expression per cell and gene
    T = rng.poisson(9 * mu).astype(float)
    S = rng.poisson(mu).astype(float)
    dev = lambda D: M.count_deviance(S, D, T.sum(axis=1), 0.1)
    D = rng.random((10, 50))
    assert dev(D * 1e-9) == pytest.approx(dev(D)) == pytest.approx(dev(D * np.arange(1, 11)[:, None]))
    assert dev(S) < dev(T) < dev(np.zeros_like(S))
    assert dev(S) < dev(S**2) and dev(S) < dev(S + 0.5)


# ---- the measured table on the celltypist sample (DENOISING.md 4.2 i), split seed 0 ----------


def test_celltypist_sample_profile(celltypist_counts):
    X = celltypist_counts.X
    assert X.shape == (559, 9810) and X.dtype == np.int64
    libs = X.sum(axis=1)
    assert int(np.median(libs)) == pytest.approx(3829, abs=2) and libs.min() == 945 and libs.max() == 39886
    assert X.max() == 1448


def test_identity_and_perfect_on_celltypist(celltypist_problem):
    p = celltypist_problem
    ident, perf = p.baselines(include_magic=False)["identity"], p.baselines(include_magic=False)["perfect"]
    assert ident.mse == pytest.approx(0.4371, abs=1e-4)
    assert ident.poisson == pytest.approx(0.4556, abs=1e-4)
    assert perf.mse == 0.0 and perf.poisson == pytest.approx(0.0595, abs=1e-4)
    assert (ident.mse_norm, ident.poisson_norm, ident.deviance_norm) == (0.0, 0.0, 0.0)
    assert perf.mse_norm == 1.0 and perf.poisson_norm == 1.0 and perf.deviance_norm == pytest.approx(1.0)


def test_trivial_transforms_score_like_magic_under_the_paper_metric(celltypist_problem):
    base = celltypist_problem.baselines(include_magic=False)
    zeros, sq = base["zeros"], base["train_sq"]
    assert zeros.mse == pytest.approx(0.3412, abs=1e-3)
    assert zeros.mse_norm == pytest.approx(0.220, abs=0.005)
    assert zeros.poisson_norm == pytest.approx(0.983, abs=0.005)
    assert sq.mse_norm == pytest.approx(0.410, abs=0.005)
    assert sq.poisson_norm == pytest.approx(0.983, abs=0.005)
    assert sq.mean == pytest.approx(0.697, abs=0.005)


def test_hardened_metric_side_by_side_on_celltypist(celltypist_problem):
    """A real smoother beats identity under both metrics; the trivial transforms, which beat it
    under the paper's MSE, fall far below identity under the hardened one."""
    p = celltypist_problem
    base = p.baselines(include_magic=False)
    knn = p.score(B.knn_smooth(p.train))
    assert knn.mse_norm == pytest.approx(0.198, abs=0.02)  # DENOISING.md: simple kNN 0.198
    assert base["train_sq"].mse_norm > knn.mse_norm and base["zeros"].mse_norm > knn.mse_norm
    assert knn.deviance_norm > 0.1
    assert base["zeros"].deviance_norm < -0.5 and base["train_sq"].deviance_norm < -0.5


def test_magic_reversed_order_on_celltypist(celltypist_problem):
    if not B.magic_available():
        pytest.skip("the GPL MAGIC baseline is an optional extra: pip install 'tttd[denoising-gpl]'")
    s = celltypist_problem.score(B.magic_reversed(celltypist_problem.train))
    assert s.mse == pytest.approx(0.3390, abs=0.002)
    assert s.mse_norm == pytest.approx(0.225, abs=0.02)
    assert s.poisson_norm == pytest.approx(0.983, abs=0.005)
