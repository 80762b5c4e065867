"""Archive speed: select 8 states from random trees of 1k / 10k / 100k states, and record 512
rollouts (8 groups x 64) with update + flush.

Run: ``python benchmarks/archive_bench.py`` (goal: select under 50 ms at 10k states).
The archives are built with a cap large enough to hold every state, so sizes are as stated.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from tttd.archive import Archive
from tttd.types import State


def build(n_states: int, n_roots: int = 8, seed: int = 0) -> Archive:
    """A random tree: each new state's parent is a uniformly random existing state."""
    rng = np.random.default_rng(seed)
    arch = Archive(max_size=10 * n_states, topk_children=None)
    arch.add_roots([State(id=f"root{i}", value=float(rng.normal())) for i in range(n_roots)])
    ids = [f"root{i}" for i in range(n_roots)]
    step = 0
    while len(arch) < n_states:
        parent = ids[int(rng.integers(len(ids)))]
        batch = min(4, n_states - len(arch))
        kids = [State(id="", value=float(rng.normal())) for _ in range(batch)]
        ids.extend(s.id for s in arch.update(parent, kids, step=step))
        step += 1
    return arch


def timed(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1_000, 10_000, 100_000])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: checks that the command runs (the tests use it); not a measurement")
    args = ap.parse_args()
    if args.smoke:
        args.sizes, args.repeat = [200], 1
    print(f"{'states':>8} {'build s':>8} {'select(8) ms':>13} {'update 8x64 ms':>15} "
          f"{'flush ms':>9} {'max depth':>9}")
    for n in args.sizes:
        t0 = time.perf_counter()
        arch = build(n)
        build_s = time.perf_counter() - t0
        sel = timed(lambda: arch.select(8), args.repeat)
        rng = np.random.default_rng(1)

        picks = arch.select(8)

        def record() -> None:
            for g, p in enumerate(picks):
                kids = [None if rng.random() < 0.3 else State(id="", value=float(rng.normal()),
                                                               key=f"{g}-{rng.integers(1 << 60)}")
                        for _ in range(64)]
                arch.update(p.id, kids, step=10**6)

        t0 = time.perf_counter()
        record()
        upd = time.perf_counter() - t0
        arch.max_size = n  # flush back to the original size (top-k off, cap only)
        t0 = time.perf_counter()
        arch.flush()
        fl = time.perf_counter() - t0
        print(f"{n:>8} {build_s:>8.2f} {sel * 1e3:>13.2f} {upd * 1e3:>15.2f} {fl * 1e3:>9.2f} "
              f"{arch.stats()['max_depth']:>9}")


if __name__ == "__main__":
    main()
