"""One denoising problem: a dataset's MCV split held in the trusted process, and its scoring.

The candidate only ever receives the train counts; the test counts (the held-out molecules)
never leave this process. :meth:`Problem.score` computes every metric itself from the returned
matrix, and :meth:`Problem.baselines` scores the sanity baselines on the same split so that a
candidate's number is always reported beside them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from tttd.tasks.denoising import metrics as M
from tttd.tasks.denoising.data import Counts, load

#: The paper's gate on the swapped Poisson metric (TTT verifier: rejected below it).
GATE_POISSON_NORM = 0.97
#: A normalised MSE or deviance above this is rejected as a leak of the held-out split: no method
#: that sees only the train counts comes near it (on the celltypist sample MAGIC scores 0.22, the
#: sharpening trick 1e-9*train**2 0.41; on 500 x 3000 synthetic data even the true expression
#: rates score 0.11 (MSE) and 0.30 (hardened)), while a program that reads the source counts and
#: subtracts the train counts scores 1.0.
#:
#: What it catches: a program that obtains the held-out counts and returns them (or nearly so).
#: What it cannot catch (issue 31): a program that blends a leaked truth with its input to land
#: under the ceiling (0.87 hardened / 0.76 paper on synthetic data rebuilt from public seeds,
#: against about 0.3 for honest methods). The defence against that is that the truth cannot be
#: rebuilt: in a run the split (and synthetic data) comes from a per-run secret
#: (:func:`secret_seeds`, the ``split_secret`` task option), so the ceiling is a last line only.
LEAK_CEILING = 0.9


def secret_seeds(secret: str) -> tuple[tuple[int, ...], int]:
    """(split seed, synthetic generator seed) derived from a per-run secret: 256 bits for the
    split's RandomState (seeded by an array, init_by_array) and 128 bits for the generator, so
    neither can be searched. The secret lives only in the trusted process and the run's config."""
    import hashlib

    if not isinstance(secret, str) or len(secret) < 16:
        raise ValueError("split_secret must be a string of at least 16 characters")
    split = hashlib.sha256(b"tttd-denoising-split\0" + secret.encode()).digest()
    data = hashlib.sha256(b"tttd-denoising-data\0" + secret.encode()).digest()
    words = tuple(int.from_bytes(split[i:i + 4], "little") for i in range(0, 32, 4))
    return words, int.from_bytes(data[:16], "little")


@dataclass(frozen=True)
class Scores:
    """Raw metrics of one output and their normalised values (0 = no denoising, 1 = perfect)."""

    mse: float
    poisson: float
    poisson_intended: float
    deviance: float
    mse_norm: float
    poisson_norm: float
    deviance_norm: float

    @property
    def mean(self) -> float:
        """The paper's reported score: the mean of the two normalised metrics."""
        return (self.mse_norm + self.poisson_norm) / 2.0

    def to_dict(self) -> dict[str, float]:
        d = {k: round(v, 6) for k, v in asdict(self).items()}
        d["mean"] = round(self.mean, 6)
        return d

    def short(self) -> str:
        return (f"MSE_norm {self.mse_norm:.3f}, Poisson_norm {self.poisson_norm:.3f}, "
                f"mean {self.mean:.3f}, hardened {self.deviance_norm:.3f}")


class Problem:
    """A count matrix split into train (given to the candidate) and test (kept here)."""

    def __init__(self, counts: Counts, split_seed: int | tuple[int, ...]):
        self.counts_name = counts.name
        self.source = counts.source
        self.sha256 = counts.sha256
        self.split_seed = split_seed if isinstance(split_seed, tuple) else int(split_seed)
        seed = np.array(split_seed, dtype=np.uint32) if isinstance(split_seed, tuple) else self.split_seed
        train, test, _ = M.split_counts(counts.X, seed)
        self.train = train.astype(np.float64)  # what the candidate receives
        self.test = test.astype(np.float64)
        self.test_norm = M.log_normalize(self.test)
        self.train_total = float(self.train.sum())
        self.train_rowsums = self.train.sum(axis=1)
        self.test_fraction = 1.0 - M.TRAIN_FRACTION
        self._identity = self.raw(self.train)
        self._perfect = self.raw(self.test)
        self._baselines: dict[str, Scores] | None = None
        self.root_output: np.ndarray | None = None  # the root program's output, computed once

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.train.shape)  # type: ignore[return-value]

    def raw(self, D: np.ndarray) -> tuple[float, float, float, float]:
        return (
            M.mse(self.test, D, self.test_norm),
            M.poisson_paper(self.test, D, self.train_total),
            M.poisson_intended(self.test, D, self.train_total),
            M.count_deviance(self.test, D, self.train_rowsums, self.test_fraction),
        )

    def score(self, D: np.ndarray) -> Scores:
        mse, poi, poi_int, dev = self.raw(D)
        i, p = self._identity, self._perfect
        return Scores(
            mse=mse, poisson=poi, poisson_intended=poi_int, deviance=dev,
            mse_norm=M.normalized(mse, i[0], p[0]),
            poisson_norm=M.normalized(poi, i[1], p[1]),
            deviance_norm=M.normalized(dev, i[3], p[3]),
        )

    @property
    def poisson_perfect(self) -> float:
        return self._perfect[1]

    def check(self, D: Any) -> np.ndarray:
        """The output as float64, or ValueError: the paper's validity rules (same shape, finite,
        non-negative, max <= sum of the train counts) plus a real numeric array."""
        if not isinstance(D, np.ndarray):
            raise ValueError(f"magic_denoise must return a numpy array, got {type(D).__name__}")
        if D.shape != self.shape:
            raise ValueError(f"the output has shape {D.shape}; the input has shape {self.shape}")
        if D.dtype.kind not in "iuf":
            raise ValueError(f"the output must be a real numeric array, got dtype {D.dtype}")
        D = D.astype(np.float64, copy=False)
        bad = ~np.isfinite(D)
        if bad.any():
            raise ValueError(f"the output has {int(bad.sum())} non-finite entries (NaN or inf)")
        if (D < 0).any():
            raise ValueError(f"the output has {int((D < 0).sum())} negative entries (min {D.min():.3g})")
        if D.max() > self.train_total:
            raise ValueError(f"the output's max {D.max():.3g} exceeds the sum of the train counts")
        return D

    def baselines(self, include_magic: bool | None = None) -> dict[str, Scores]:
        """identity, perfect, zeros, train_sq (and magic_rev with the GPL extra), scored once."""
        if self._baselines is None:
            from tttd.tasks.denoising import baselines as B

            out = {"identity": self.score(self.train), "perfect": self.score(self.test)}
            for name, fn in B.sanity_baselines(include_magic).items():
                out[name] = self.score(fn(self.train))
            self._baselines = out
        return self._baselines


def value_of(scores: Scores, metric: str) -> float:
    """The task value: clip(normalised score, 0, 1) of the chosen metric (the paper's: MSE)."""
    x = scores.mse_norm if metric == "paper" else scores.deviance_norm
    return float(min(1.0, max(0.0, x))) if math.isfinite(x) else 0.0


@lru_cache(maxsize=2)
def _cached(dataset: str, split_seed: int | tuple[int, ...], options: tuple) -> Problem:
    return Problem(load(dataset, **dict(options)), split_seed)


def get_problem(dataset: str, split_seed: int | tuple[int, ...], **options: Any) -> Problem:
    """A problem, cached per (dataset, split seed, loader options) in this process."""
    seed = tuple(int(x) for x in split_seed) if isinstance(split_seed, tuple) else int(split_seed)
    return _cached(dataset, seed, tuple(sorted(options.items())))
