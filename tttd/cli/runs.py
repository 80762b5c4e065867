"""``tttd runs [DIR]``: a table of the runs under DIR (task, status, steps, best, spend, age), and
``tttd show RUN``. Both read a run through :mod:`tttd.runinfo`, so they use the same status words
and the same step numbering (:mod:`tttd.wording`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tttd.rundir import NotARunError
from tttd.runinfo import find_runs, human_age, load_run
from tttd.text import safe
from tttd.wording import shown_step, step_text


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
            "samples": ledger.samples, "usd": ledger.usd, "hours": round(ledger.seconds / 3600, 4),
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
        usd = "$?" if r["usd"] is None else f"${r['usd']:.2f}"  # best_step: already as shown
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


def show_main(run: str, as_json: bool) -> int:
    """``tttd show RUN``: progress, best so far, spend, and the next command."""
    from tttd.ledger import spend_lines
    from tttd.rundir import RunDir, read_jsonl

    info = load_run(run, metrics=False)
    rd = RunDir(run)
    cfg = info.config
    last = None
    for last in read_jsonl(rd.metrics):
        pass
    files = {"best": rd.best, "metrics": rd.metrics, "archive": rd.archive}
    existing = {k: str(p) for k, p in files.items() if p.exists()}
    best = info.best
    data = {
        "run_dir": str(rd.path), "task": task_name(cfg), "task_spec": cfg.get("task"),
        "backend": cfg.get("backend"), "model": cfg.get("model"), "steps_done": info.steps_done,
        "steps": cfg.get("steps"), "status": info.status,
        "best_value": best.get("value"), "best_step": shown_step(best.get("step")),
        "samples": info.ledger.samples, "spend": (info.loop or {}).get("ledger"),
        "budget": {k: cfg.get(k) for k in ("max_usd", "max_samples", "max_hours")},
        "stopped": info.stop_reason, "last_step": last, "files": existing,
    }
    if as_json:
        print(json.dumps(data, sort_keys=True))
        return 0
    print(safe(f"{data['run_dir']}: task {data['task']}, {data['backend']} {data['model']}"))
    print(f"status: {info.status} ({info.steps_done}/{data['steps']} steps, {data['samples']} samples)")
    if best.get("value") is None:
        print("best value: none yet (no step completed)" if info.loop is None else "best value: none yet")
    else:
        print(f"best value: {best['value']:.10g} ({step_text(best.get('step'))})")
    best_json = rd.best / "best.json"
    if best_json.exists():
        verify = json.loads(best_json.read_text()).get("verify")
        if verify:
            print(f"re-verify: {safe(verify)}")
    if existing:
        print(safe("files: " + "  ".join(str(p) + ("/" if p.is_dir() else "") for p in files.values() if p.exists())))
    cfg_obj = info.run_config()
    if info.loop is not None and cfg_obj is not None:
        for line in spend_lines(info.ledger, cfg_obj):
            print(line)
    if info.stop_reason and cfg_obj is not None:
        from tttd.wording import raise_cap_command

        print(f"stopped by a budget cap: {info.stop_reason}; to go on: "
              f"{raise_cap_command(rd.path, info.stop_reason, info.ledger, cfg_obj, info.steps_done)}")
    elif info.status != "finished":
        print(f"continue: tttd resume {rd.path}")
    return 0
