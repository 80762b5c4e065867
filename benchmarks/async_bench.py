"""Issue 35: wall time, best value and valid rate of ``--async-steps`` variants, from a finished
``tttd ablate`` directory (variants ``full``, ``async1``, ``async2``, paired by seed).

    python benchmarks/async_bench.py ABLATION_DIR [--json]
    python benchmarks/async_bench.py --smoke       # a 2-seed, 2-step demo ablation of the tiny model, then its table
                                                   # (--smoke ignores ABLATION_DIR)

Per variant: the wall time of the run's steps (the ledger's seconds: from the first step's start
to the last commit, model loading excluded), the final best value, the valid rate; then, paired
with ``full`` by seed, the wall-time ratio (full / variant: > 1 means the variant finished
sooner) and the two-sided Wilcoxon signed-rank p of the best values and of the wall times.
Figures only: it asserts nothing (tests check behaviour, not timings).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from tttd.ablate.spec import load_spec, run_path
from tttd.ablate.stats import bootstrap_mean, direction, wilcoxon
from tttd.runinfo import load_run


def read_runs(root: Path):
    spec = load_spec(root)
    if spec is None:
        raise SystemExit(f"{root} is not an ablation directory")
    runs: dict[tuple[str, int], dict] = {}
    for variant, seed in spec.run_ids():
        path = run_path(root, variant, seed)
        if not (path / "config.json").is_file():
            continue
        info = load_run(path)
        if info.steps_done < spec.steps:
            continue
        led = info.ledger
        runs[(variant, seed)] = {"seconds": float(led.seconds), "best": info.metrics[-1].get("best_value"),
                                 "valid": led.valid / max(1, led.samples), "samples": led.samples}
    return spec, runs


def analyse(root: Path) -> dict:
    spec, runs = read_runs(root)
    sign = 1.0 if direction(spec) else -1.0
    out = {"task": spec.task, "steps": spec.steps, "variants": {}}
    for v in spec.variants:
        seeds = [s for s in spec.seeds if (v, s) in runs]
        row = {"seeds": len(seeds),
               "seconds": bootstrap_mean([runs[(v, s)]["seconds"] for s in seeds]),
               "best": bootstrap_mean([runs[(v, s)]["best"] for s in seeds]),
               "valid": bootstrap_mean([runs[(v, s)]["valid"] for s in seeds]),
               "samples": sorted({runs[(v, s)]["samples"] for s in seeds})}
        if v != "full":
            both = [s for s in seeds if ("full", s) in runs]
            ratio = [runs[("full", s)]["seconds"] / runs[(v, s)]["seconds"] for s in both]
            gain = [sign * (runs[(v, s)]["best"] - runs[("full", s)]["best"]) for s in both
                    if runs[(v, s)]["best"] is not None and runs[("full", s)]["best"] is not None]
            row["paired"] = {
                "seeds": len(both),
                "wall_ratio": bootstrap_mean(ratio),
                "wall_ratio_of_means": (float(np.mean([runs[("full", s)]["seconds"] for s in both]))
                                        / float(np.mean([runs[(v, s)]["seconds"] for s in both]))) if both else None,
                "wilcoxon_p_wall": wilcoxon([runs[(v, s)]["seconds"] - runs[("full", s)]["seconds"] for s in both]),
                "best_better": sum(g > 0 for g in gain), "best_worse": sum(g < 0 for g in gain),
                "best_gain": bootstrap_mean(gain),  # > 0: the variant found better values
                "wilcoxon_p_best": wilcoxon(gain),
            }
        out["variants"][v] = row
    return out


def _m(b, digits=4):
    if not b or b.get("mean") is None:
        return "-"
    return f"{b['mean']:.{digits}f} [{b['lo']:.{digits}f}, {b['hi']:.{digits}f}]"


def _p(p):
    return "-" if p is None else f"{p:.3f}"


def markdown(res: dict) -> str:
    lines = [f"task `{res['task']}`, {res['steps']} steps; mean [95% bootstrap interval] over seeds", "",
             "| variant | seeds | wall s | best at the end | valid rate | wall ratio full/variant | "
             "p (wall) | best: better/worse | p (best) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for v, row in res["variants"].items():
        pr = row.get("paired")
        tail = ("| - | - | - | - |" if pr is None else
                f"| {_m(pr['wall_ratio'], 2)} | {_p(pr['wilcoxon_p_wall'])} | "
                f"{pr['best_better']}/{pr['best_worse']} | {_p(pr['wilcoxon_p_best'])} |")
        lines.append(f"| {v} | {row['seeds']} | {_m(row['seconds'], 1)} | {_m(row['best'])} | "
                     f"{_m(row['valid'], 2)} " + tail)
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path, nargs="?")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--smoke", action="store_true", help="run a tiny ablation first (checks that this runs)")
    args = ap.parse_args(argv)
    if args.smoke:  # the documented commands name directories of their own: a fresh tiny one instead
        args.root = Path(tempfile.mkdtemp(prefix="async-bench-")) / "ablation"
        subprocess.run([sys.executable, "-m", "tttd.cli", "ablate", "demo", "--model", "tiny", "--variants", "full",
                        "async1", "--seeds", "2", "--steps", "2", "--groups", "2", "--group-size", "2",
                        "--set", "max_tokens=8", "--out", str(args.root), "--quiet", "--jobs", "1"], check=True)
    if args.root is None:
        ap.error("give ABLATION_DIR (or --smoke)")
    res = analyse(args.root)
    print(json.dumps(res, indent=1) if args.json else markdown(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
