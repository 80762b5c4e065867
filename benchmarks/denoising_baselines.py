"""Print the denoising baselines side by side under the paper's metric and the hardened one.

    python benchmarks/denoising_baselines.py                       # celltypist sample, split seed 0
    python benchmarks/denoising_baselines.py --dataset synthetic --n-cells 500 --n-genes 3000

Rows: identity, perfect, all-zeros, 1e-9*train**2, kNN smoothing, the MAGIC-like root program,
MAGIC approx reversed order (only with the GPL extra) and, on synthetic data, the true rates
("oracle"). Columns: raw MSE and Poisson, their normalised values, the paper's mean, the hardened
deviance (normalised), and seconds per method.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from tttd.tasks.denoising import baselines as B
from tttd.tasks.denoising.data import Counts, load
from tttd.tasks.denoising.metrics import split_counts
from tttd.tasks.denoising.problem import Problem
from tttd.tasks.denoising.root_program import magic_denoise
from tttd.tasks.denoising.synthetic import SyntheticConfig, generate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", default="celltypist")
    ap.add_argument("--split-seed", type=int, default=0)
    ap.add_argument("--n-cells", type=int, default=800)
    ap.add_argument("--n-genes", type=int, default=8000)
    ap.add_argument("--data-seed", type=int, default=0)
    args = ap.parse_args()
    oracle = None
    if args.dataset == "synthetic":
        X, rate = generate(SyntheticConfig(n_cells=args.n_cells, n_genes=args.n_genes, seed=args.data_seed))
        counts = Counts("synthetic", X)
        oracle = rate[:, split_counts(X, args.split_seed)[2]]
    else:
        counts = load(args.dataset)
    p = Problem(counts, args.split_seed)
    print(f"{counts.name} {p.shape[0]} x {p.shape[1]}, split seed {args.split_seed}, "
          f"test density {(p.test > 0).mean():.3f}")
    methods = {"identity": lambda T: T, "perfect": lambda T: p.test, "zeros": B.zeros, "train_sq": B.train_sq,
               "knn": B.knn_smooth, "root (MAGIC-like)": magic_denoise}
    if B.magic_available():
        methods["magic_rev"] = B.magic_reversed
    if oracle is not None:
        methods["oracle (true rates)"] = lambda T: oracle
    print(f"{'method':<22}{'MSE':>8}{'Poisson':>9}{'MSE_n':>8}{'Pois_n':>8}{'mean':>7}{'hard_n':>8}{'s':>7}")
    for name, fn in methods.items():
        t0 = time.perf_counter()
        D = np.asarray(fn(p.train.copy()), dtype=np.float64)
        dt = time.perf_counter() - t0
        s = p.score(D)
        print(f"{name:<22}{s.mse:8.4f}{s.poisson:9.4f}{s.mse_norm:8.3f}{s.poisson_norm:8.3f}"
              f"{s.mean:7.3f}{s.deviance_norm:8.3f}{dt:7.1f}")


if __name__ == "__main__":
    main()
