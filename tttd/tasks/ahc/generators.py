"""The official input generators of AHC039 and AHC058, ported exactly (AHC.md 1.2, 2.2, 3).

``generate(problem, seed)`` returns the input file's text; seeds 0..149 give the 150 public
inputs byte for byte (tests/tasks/ahc/test_generators.py compares digests), other seeds give
fresh cases from the same distribution. ``python -m tttd.tasks.ahc.generators ahc039 0 9 DIR``
writes seeds 0..9 as ``DIR/0000.txt`` ... .
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

from tttd.tasks.ahc.rng import ChaCha, Weighted, f64, int_incl, normal, round_half_away, unif_incl

PROBLEMS = ("ahc039", "ahc058")


def gen_ahc039(seed: int) -> str:
    r = ChaCha(seed)
    n_fish = 5000
    seen: set[tuple[int, int]] = set()
    lines = [str(n_fish)]
    for g in range(2):
        n = int_incl(r, 10, 25)
        w = [f64(r) for _ in range(n)]
        centres = [(int_incl(r, 20000, 80000), int_incl(r, 20000, 80000)) for _ in range(n)]
        sigma = [float(int_incl(r, 1000, 5000)) for _ in range(n)]
        pick = Weighted(w)
        target = n_fish * (g + 1)
        while len(seen) < target:
            k = pick.sample(r)
            bx = normal(r)
            by = normal(r)
            cx, cy = centres[k]
            x = round_half_away(cx + sigma[k] * bx)
            y = round_half_away(cy + sigma[k] * by)
            if 0 <= x <= 100000 and 0 <= y <= 100000 and (x, y) not in seen:
                seen.add((x, y))
                lines.append(f"{x} {y}")
    return "\n".join(lines) + "\n"


def gen_ahc058(seed: int) -> str:
    r = ChaCha(seed)
    n, levels, turns, k = 10, 4, 500, 1
    a = [1] + [round_half_away(math.pow(10.0, unif_incl(r, 0.0, 2.0))) for _ in range(n - 1)]
    a.sort()
    c = [[0] * n for _ in range(levels)]
    for i in range(levels):
        for j in range(n):
            if i == 0 and j == 0:
                c[i][j] = 1
            else:
                c[i][j] = round_half_away((a[j] * 500.0 ** i) * math.pow(10.0, unif_incl(r, 0.0, 2.0)))
    rows = [f"{n} {levels} {turns} {k}", " ".join(map(str, a))] + [" ".join(map(str, row)) for row in c]
    return "\n".join(rows) + "\n"


GENERATORS = {"ahc039": gen_ahc039, "ahc058": gen_ahc058}


def generate(problem: str, seed: int) -> str:
    """The input file of ``problem`` for ``seed`` (seeds 0..149 are the public cases)."""
    if problem not in GENERATORS:
        raise ValueError(f"unknown AHC problem {problem!r}; known: {', '.join(PROBLEMS)}")
    if not 0 <= int(seed) < 2**64:
        raise ValueError(f"seed must be in [0, 2^64), got {seed}")
    return GENERATORS[problem](int(seed))


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print("usage: python -m tttd.tasks.ahc.generators PROBLEM FIRST_SEED LAST_SEED OUT_DIR", file=sys.stderr)
        return 2
    problem, first, last, out = argv[0], int(argv[1]), int(argv[2]), Path(argv[3])
    out.mkdir(parents=True, exist_ok=True)
    for seed in range(first, last + 1):
        (out / f"{seed:04d}.txt").write_text(generate(problem, seed))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
