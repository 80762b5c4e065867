"""The ablation's numbers, from its run directories alone: per variant and against ``full``.

Per variant, over the seeds whose run finished:

- the best value at the final step and at fixed sample counts (a quarter, half and three quarters
  of the budget): the mean and a 95% percentile-bootstrap interval of the mean (10,000 resamples,
  a fixed generator: the same directory gives the same numbers);
- the valid rate (valid samples / samples; mean and interval);
- samples to reach a threshold: the first sample count at which the run's best-so-far reached it;
  the threshold is ``--threshold`` or, by default, the median final best of all finished runs
  pooled (so about half the runs reach it), stated in the output;
- paired with ``full`` on the seeds both finished (same seed = same initial states): which seeds
  each one won, the mean paired difference (oriented: positive = better than full) with its
  interval, an exact two-sided sign test and a Wilcoxon signed-rank test (scipy, when installed;
  ``None`` otherwise or when every difference is zero).

Best-so-far curves (for the plots) are the runs' ``best_value`` per step against the cumulative
sample count, with the mean and a bootstrap band per sample count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tttd.ablate.spec import AblationSpec, run_path

BOOTSTRAP = 10_000
FRACTIONS = (0.25, 0.5, 0.75)


@dataclass
class RunCurve:
    variant: str
    seed: int
    finished: bool
    samples: list[int]  # cumulative samples after each step
    best: list[float | None]  # best-so-far value after each step
    valid: int
    total: int

    @property
    def final(self) -> float | None:
        return self.best[-1] if self.best else None


def read_curve(root: Path, variant: str, seed: int, steps: int) -> RunCurve | None:
    from tttd.rundir import NotARunError
    from tttd.runinfo import load_run

    path = run_path(root, variant, seed)
    if not (path / "config.json").is_file():
        return None
    try:
        info = load_run(path)
    except (NotARunError, OSError, ValueError):
        return None
    samples, best, n = [], [], 0
    for m in info.metrics:
        n += int(m.get("samples") or 0)
        samples.append(n)
        best.append(m.get("best_value"))
    led = info.ledger
    return RunCurve(variant, seed, info.steps_done >= steps, samples, best, led.valid, led.samples)


def bootstrap_mean(x: list[float] | np.ndarray, rng: np.random.Generator | None = None) -> dict[str, Any]:
    """Mean and 95% percentile-bootstrap interval of the mean (None for no data)."""
    a = np.asarray([v for v in x if v is not None], dtype=float)
    if len(a) == 0:
        return {"mean": None, "lo": None, "hi": None, "n": 0}
    if len(a) == 1:
        return {"mean": float(a[0]), "lo": float(a[0]), "hi": float(a[0]), "n": 1}
    rng = rng or np.random.default_rng(0)
    means = a[rng.integers(0, len(a), size=(BOOTSTRAP, len(a)))].mean(axis=1)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return {"mean": float(a.mean()), "lo": float(lo), "hi": float(hi), "n": int(len(a))}


def sign_test(wins: int, losses: int) -> float | None:
    """Exact two-sided sign test p-value (ties dropped); None when there is nothing to test."""
    n = wins + losses
    if n == 0:
        return None
    k = min(wins, losses)
    p = 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
    return min(1.0, p)


def wilcoxon(diffs: list[float]) -> float | None:
    d = [x for x in diffs if x != 0]
    if not d:
        return None
    try:
        from scipy.stats import wilcoxon as _w
    except ImportError:
        return None
    return float(_w(d).pvalue)


def value_at(curve: RunCurve, samples: int) -> float | None:
    """The run's best-so-far after the last step that stayed within ``samples`` samples."""
    out = None
    for n, b in zip(curve.samples, curve.best):
        if n > samples:
            break
        out = b
    return out


def samples_to(curve: RunCurve, threshold: float, maximize: bool) -> int | None:
    for n, b in zip(curve.samples, curve.best):
        if b is not None and (b >= threshold if maximize else b <= threshold):
            return n
    return None


def direction(spec: AblationSpec) -> bool:
    """True when the task maximises (read from the task's objective)."""
    from tttd.registry import get_task

    return get_task(spec.task, **spec.base.get("task_options", {})).objective.maximize


def analyse(spec: AblationSpec, root: str | Path, maximize: bool | None = None) -> dict[str, Any]:
    """Everything the table, the plot and ablation-results.json show."""
    root = Path(root)
    maximize = direction(spec) if maximize is None else maximize
    sign = 1.0 if maximize else -1.0
    curves = {(v, s): read_curve(root, v, s, spec.steps) for v, s in spec.run_ids()}
    done = {rid: c for rid, c in curves.items() if c is not None and c.finished}
    budget = max((c.samples[-1] for c in done.values() if c.samples), default=0)
    finals = [c.final for c in done.values() if c.final is not None]
    threshold = spec.threshold if spec.threshold is not None else (float(np.median(finals)) if finals else None)
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {
        "task": spec.task, "steps": spec.steps, "seeds": spec.seeds, "direction": "maximize" if maximize else "minimize",
        "samples_per_run": budget, "threshold": threshold,
        "threshold_rule": "given (--threshold)" if spec.threshold is not None else "median final best of all finished runs",
        "runs_total": len(curves), "runs_finished": len(done), "variants": {},
    }
    checkpoints = [int(round(f * budget)) for f in FRACTIONS]
    for variant in spec.variants:
        runs = [done[(variant, s)] for s in spec.seeds if (variant, s) in done]
        row: dict[str, Any] = {
            "settings": spec.variants[variant],
            "seeds_finished": [c.seed for c in runs],
            "final": bootstrap_mean([c.final for c in runs], rng),
            "at_samples": {str(n): bootstrap_mean([value_at(c, n) for c in runs], rng) for n in checkpoints},
            "valid_rate": bootstrap_mean([c.valid / c.total for c in runs if c.total], rng),
        }
        if threshold is not None:
            reach = [samples_to(c, threshold, maximize) for c in runs]
            hit = [r for r in reach if r is not None]
            row["to_threshold"] = {"reached": len(hit), "of": len(runs),
                                   "median_samples": float(np.median(hit)) if hit else None,
                                   "per_seed": {str(c.seed): r for c, r in zip(runs, reach)}}
        if variant != "full":
            row["vs_full"] = paired(done, variant, spec.seeds, sign, rng)
        out["variants"][variant] = row
    out["curves"] = {v: [{"seed": c.seed, "samples": c.samples, "best": c.best}
                         for c in (done.get((v, s)) for s in spec.seeds) if c is not None]
                     for v in spec.variants}
    return out


def paired(done: dict, variant: str, seeds: list[int], sign: float, rng) -> dict[str, Any]:
    """Variant vs full on the seeds both finished; differences oriented so > 0 = variant better."""
    wins, losses, ties, diffs = [], [], [], []
    for s in seeds:
        a, b = done.get((variant, s)), done.get(("full", s))
        if a is None or b is None or a.final is None or b.final is None:
            continue
        d = sign * (a.final - b.final)
        diffs.append(d)
        (wins if d > 0 else losses if d < 0 else ties).append(s)
    return {"pairs": len(diffs), "variant_better_seeds": wins, "full_better_seeds": losses, "tied_seeds": ties,
            "mean_difference": bootstrap_mean(diffs, rng), "sign_test_p": sign_test(len(wins), len(losses)),
            "wilcoxon_p": wilcoxon(diffs)}


def band(curves: list[dict[str, Any]], rng: np.random.Generator | None = None) -> dict[str, list]:
    """Mean best-so-far and a 95% bootstrap band per sample count, over seeds (for the plot)."""
    if not curves:
        return {"samples": [], "mean": [], "lo": [], "hi": []}
    n = min(len(c["samples"]) for c in curves)
    xs = curves[0]["samples"][:n]
    rows = {"samples": xs, "mean": [], "lo": [], "hi": []}
    rng = rng or np.random.default_rng(0)
    for i in range(n):
        b = bootstrap_mean([c["best"][i] for c in curves], rng)
        for k in ("mean", "lo", "hi"):
            rows[k].append(b[k])
    return rows
