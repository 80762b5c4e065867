"""Why the demo's valid fraction falls and recovers: per-step figures from run directories.

Usage: python benchmarks/demo_collapse.py RUN [RUN ...]   (runs of the `demo` task, any length)
       python benchmarks/demo_collapse.py --smoke         (a synthetic two-step run: checks the script runs)

For each step it prints the valid fraction, the mean number of digits per completion, the share of
completions cut at the token limit, the mean adaptive beta and the largest advantage; then, over all
runs given, how the digits per completion change after steps with a large beta (a winner-take-all
update) and after steps with a small one (a valid-vs-invalid update). Issue 21; see docs/ablation.md.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np


def per_step(run: Path) -> list[dict]:
    rows = defaultdict(list)
    with open(run / "rollouts.jsonl") as f:
        for line in f:
            r = json.loads(line)
            rows[r["step"]].append(r)
    metrics = {}
    with open(run / "metrics.jsonl") as f:
        for line in f:
            m = json.loads(line)
            metrics[m["step"]] = m
    out = []
    for step in sorted(metrics):
        rs = rows[step]
        adv = [r["advantage"] for r in rs if r["advantage"] is not None]
        out.append({
            "step": step,
            "valid": metrics[step]["valid_fraction"],
            "digits": float(np.mean([sum(c.isdigit() for c in r["completion"]) for r in rs])),
            "at_limit": float(np.mean([r["stop_reason"] == "length" for r in rs])),
            "beta": metrics[step].get("beta_mean") or 0.0,
            "max_adv": max(adv) if adv else 0.0,
        })
    return out


def main(paths: list[str]) -> None:
    after = {"beta >= 15": [], "beta < 5": [], "5 <= beta < 15": []}
    for p in paths:
        steps = per_step(Path(p))
        print(f"\n{p}\nstep  valid  digits  at-limit  beta  max-advantage")
        for s in steps:
            print(f"{s['step']:4d}  {s['valid']:.2f}  {s['digits']:6.1f}  {s['at_limit']:8.2f}  "
                  f"{s['beta']:5.1f}  {s['max_adv']:6.1f}")
        for a, b in zip(steps, steps[1:]):
            key = "beta >= 15" if a["beta"] >= 15 else ("beta < 5" if a["beta"] < 5 else "5 <= beta < 15")
            after[key].append(b["digits"] - a["digits"])
        late = steps[len(steps) * 2 // 3:]
        print(f"valid fraction, last third of the steps: {np.mean([s['valid'] for s in late]):.2f}; "
              f"all steps: {np.mean([s['valid'] for s in steps]):.2f}")
    print("\nchange of the mean digits per completion in the next step, by this step's beta:")
    for key, d in after.items():
        if d:
            print(f"  {key:>15}: {np.mean(d):+.2f} digits (n = {len(d)} steps; fell in {np.mean(np.array(d) < 0):.0%})")


def smoke_run(folder: Path) -> Path:
    """A synthetic two-step run directory with the fields this script reads (not a measurement)."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "metrics.jsonl", "w") as f:
        for step, (valid, beta) in enumerate([(0.5, 20.0), (0.25, 1.0)]):
            f.write(json.dumps({"step": step, "valid_fraction": valid, "beta_mean": beta}) + "\n")
    with open(folder / "rollouts.jsonl", "w") as f:
        for step in range(2):
            for j in range(4):
                f.write(json.dumps({"step": step, "advantage": float(j - 1.5), "completion": "12345 x" * (2 - step),
                                    "stop_reason": "length" if j == 0 else "stop"}) + "\n")
    return folder


if __name__ == "__main__":
    if "--smoke" in sys.argv[1:]:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            main([str(smoke_run(Path(tmp) / "run"))])
        sys.exit(0)
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
