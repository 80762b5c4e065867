"""``tttd runs [DIR]``: a table of the runs under DIR (task, status, steps, best, spend, age). Like
``tttd show RUN`` (:mod:`tttd.cli.show`) it reads a run through :mod:`tttd.runinfo`, so they use the same status words
and the same step numbering (:mod:`tttd.wording`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tttd.rundir import NotARunError
from tttd.runinfo import find_runs, human_age, load_run
from tttd.text import safe
from tttd.wording import shown_step


def add_parser(sub) -> None:
    rn = sub.add_parser("runs", help="a table of runs: task, status, steps, best, spend, age")
    rn.add_argument("dir", nargs="?", default="runs", help="directory holding runs (default runs/)")
    rn.add_argument("--json", action="store_true", help="print one JSON list")
    rn.set_defaults(func=cmd_runs)


def run_rows(root: str | Path) -> list[dict]:
    rows = []
    for path in find_runs(root):
        try:
            info = load_run(path, metrics=False)
        except (NotARunError, OSError, ValueError, KeyError) as exc:
            rows.append({"run": str(path), "status": f"unreadable: {exc}"})
            continue
        ledger = info.ledger
        rows.append({
            "run": str(path), "task": task_name(info.config), "status": info.status,
            "train": bool(info.config.get("train", True)),
            "steps_done": info.steps_done, "steps": info.steps,
            "best_value": info.best.get("value"), "best_step": shown_step(info.best.get("step")),
            "samples": ledger.samples, "usd": ledger.usd, "backend": info.config.get("backend"), "hours": round(ledger.seconds / 3600, 4),
            "age_s": round(info.age_s, 1),
        })
    return rows


def cmd_runs(args: argparse.Namespace) -> int:
    root = Path(args.dir)
    if not root.is_dir():
        raise NotARunError(f"no such directory: {root}")
    rows = run_rows(root)
    if args.json:
        print(json.dumps(rows, sort_keys=True))
        return 0
    if not rows:
        print(f"no runs under {root}")
        return 0
    header = ["run", "task", "status", "steps", "best", "samples", "spend", "age"]
    table = [header]
    for r in rows:
        if "task" not in r:
            table.append([safe(r["run"]), "-", safe(r["status"]), "", "", "", "", ""])
            continue
        best = "-" if r["best_value"] is None else f"{r['best_value']:.6g} (step {r['best_step']})"
        usd = "-" if r.get("backend") == "local" and not r["usd"] else (  # no $0 price for a local run
            "$?" if r["usd"] is None else f"${r['usd']:.2f}")  # best_step: already as shown
        table.append([safe(r["run"]), safe(str(r["task"])) + ("" if r["train"] else " (frozen)"),
                      r["status"], f"{r['steps_done']}/{r['steps']}", best, str(r["samples"]),
                      f"{usd} {r['hours']:.2f}h", human_age(r["age_s"])])
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    return 0


def task_name(config: dict) -> str | None:
    """The task's registered name (a task file's path only when the run did not record a name)."""
    return (config.get("_task") or {}).get("name") or config.get("task")
