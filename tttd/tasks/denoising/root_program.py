"""The root program of the denoising task: a MAGIC-like diffusion smoother (tttd's own code).

This file is shown to the model as the starting solution and run in the sandbox as any
candidate is, so it must stay self-contained (numpy and scipy only, no tttd imports).

Method (after van Dijk et al. 2018, "reversed normalisation" as OpenProblems' best MAGIC variant):
square-root transform the counts, divide each cell by its total (libsize of the sqrt matrix),
project onto the top principal components (randomised SVD, seeded), build a k-nearest-neighbour
graph with an adaptive kernel ``exp(-(d / sigma_i) ** decay)`` (``sigma_i`` = distance to the
k-th neighbour), symmetrise and row-normalise it into a Markov matrix P, diffuse the normalised
data ``t`` steps (``P**t @ data``), square the result and multiply by the sqrt libsize again.
"""

import numpy as np
import scipy.sparse as sp


def _randomized_pca(A, n_components, rng, n_iter=3):
    """Scores of the centred rows of A on its top principal components."""
    A = A - A.mean(axis=0, keepdims=True)
    k = min(n_components, A.shape[0] - 1, A.shape[1] - 1)
    sketch = A @ rng.standard_normal((A.shape[1], k + 10))
    for _ in range(n_iter):
        sketch, _ = np.linalg.qr(sketch)
        sketch = A @ (A.T @ sketch)
    Q, _ = np.linalg.qr(sketch)
    U, s, _ = np.linalg.svd(Q.T @ A, full_matrices=False)
    return (Q @ U[:, :k]) * s[:k]


def _diffusion_operator(Z, knn, decay, knn_max, thresh=1e-4, block=2048):
    """Row-stochastic sparse matrix from an adaptive-bandwidth kNN kernel on the rows of Z."""
    n = Z.shape[0]
    m = min(n, knn_max)
    sq = np.sum(Z * Z, axis=1)
    rows, cols, vals = [], [], []
    for start in range(0, n, block):
        stop = min(n, start + block)
        d2 = sq[start:stop, None] + sq[None, :] - 2.0 * (Z[start:stop] @ Z.T)
        np.maximum(d2, 0.0, out=d2)
        idx = np.argpartition(d2, m - 1, axis=1)[:, :m]
        dist = np.sqrt(np.take_along_axis(d2, idx, axis=1))
        order = np.argsort(dist, axis=1)
        idx = np.take_along_axis(idx, order, axis=1)
        dist = np.take_along_axis(dist, order, axis=1)
        sigma = np.maximum(dist[:, min(knn, m - 1)], 1e-12)  # self is at distance 0
        w = np.exp(-((dist / sigma[:, None]) ** decay))
        keep = w >= thresh
        r = np.repeat(np.arange(start, stop), m).reshape(-1, m)
        rows.append(r[keep])
        cols.append(idx[keep])
        vals.append(w[keep])
    K = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    K = (K + K.T) * 0.5
    deg = np.asarray(K.sum(axis=1)).ravel()
    return sp.diags(1.0 / deg) @ K


def magic_denoise(X, random_state=42, knn=5, t=3, n_pca=100, decay=1.0, knn_max=None, **kwargs):
    """Denoise raw counts X (cells x genes); returns a non-negative array of the same shape."""
    X = np.asarray(X, dtype=np.float64)
    rng = np.random.default_rng(random_state)
    root = np.sqrt(X)
    libsize = root.sum(axis=1)
    data = root / np.where(libsize > 0, libsize, 1.0)[:, None]
    Z = _randomized_pca(data, n_pca, rng)
    P = _diffusion_operator(Z, knn, decay, knn_max or 15 * knn)
    smooth = data
    for _ in range(t):
        smooth = P @ smooth
    return np.square(smooth) * libsize[:, None]
