"""Reference outputs scored beside every candidate (honest reporting).

- ``identity`` (no denoising: the train counts) and ``perfect`` (the held-out test counts): the
  anchors of the paper's 0..1 scales;
- ``zeros`` and ``train_sq`` (``1e-9 * train**2``): sanity baselines that do no denoising at all
  and still score like MAGIC or better under the paper's metric (DENOISING.md 4.3);
- ``knn``: a simple smoother (sqrt, row-normalise, PCA 50, mean of the 10 nearest cells incl.
  itself, square, times the sqrt libsize), tttd's own code;
- ``magic_rev``: OpenProblems' "MAGIC approx, reversed normalisation" (the paper's best human
  method), only when the GPL extra is installed (``pip install 'tttd[denoising-gpl]'``:
  magic-impute, graphtools, scprep; imported here only, with ``random_state`` fixed).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from tttd.tasks.denoising.root_program import _randomized_pca


def identity(train: np.ndarray) -> np.ndarray:
    return train.astype(np.float64)


def zeros(train: np.ndarray) -> np.ndarray:
    return np.zeros(train.shape, dtype=np.float64)


def train_sq(train: np.ndarray) -> np.ndarray:
    return 1e-9 * train.astype(np.float64) ** 2


def knn_smooth(train: np.ndarray, k: int = 10, n_pca: int = 50, seed: int = 0) -> np.ndarray:
    """Mean of each cell's k nearest cells (itself included) in sqrt-normalised PCA space."""
    root = np.sqrt(train.astype(np.float64))
    libsize = root.sum(axis=1)
    data = root / np.where(libsize > 0, libsize, 1.0)[:, None]
    Z = _randomized_pca(data, n_pca, np.random.default_rng(seed))
    sq = np.sum(Z * Z, axis=1)
    out = np.empty_like(data)
    k = min(k, Z.shape[0])
    for start in range(0, Z.shape[0], 2048):
        stop = min(Z.shape[0], start + 2048)
        d2 = sq[start:stop, None] + sq[None, :] - 2.0 * (Z[start:stop] @ Z.T)
        idx = np.argpartition(d2, k - 1, axis=1)[:, :k]
        out[start:stop] = data[idx].mean(axis=1)
    return np.square(out) * libsize[:, None]


def magic_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("magic", "scprep", "graphtools"))


def magic_reversed(train: np.ndarray, random_state: int = 42) -> np.ndarray:
    """OP v1's ``magic_approx_reverse_norm`` with a fixed seed (needs the GPL extra)."""
    import magic  # GPL-2.0: optional, imported only here
    import scprep  # GPL-3.0

    X = np.sqrt(train.astype(np.float64))
    X, libsize = scprep.normalize.library_size_normalize(X, rescale=1, return_library_size=True)
    op = magic.MAGIC(solver="approximate", random_state=random_state, verbose=0)
    Y = op.fit_transform(X, genes="all_genes")
    Y = np.asarray(Y, dtype=np.float64)
    Y = scprep.utils.matrix_vector_elementwise_multiply(np.square(Y), np.asarray(libsize), axis=0)
    return np.asarray(Y, dtype=np.float64)


def sanity_baselines(include_magic: bool | None = None) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """The baselines scored beside a candidate (functions of the train counts)."""
    out: dict[str, Callable[[np.ndarray], np.ndarray]] = {"zeros": zeros, "train_sq": train_sq}
    if include_magic if include_magic is not None else magic_available():
        out["magic_rev"] = magic_reversed
    return out
