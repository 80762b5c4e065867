"""``tttd show RUN``: progress, best so far, spend, and the next command. It reads the run through
:mod:`tttd.runinfo`, like ``tttd runs``, so both use the same status words and step numbering."""

from __future__ import annotations

import argparse
import json
from typing import Any

from tttd.runinfo import load_run
from tttd.text import safe
from tttd.wording import shown_step, step_text


def add_parser(sub: Any) -> None:
    s = sub.add_parser("show", help="status of a run: progress, best so far, where things are")
    s.add_argument("run", help="run directory")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=cmd_show)


def cmd_show(args: argparse.Namespace) -> int:
    return show_main(args.run, args.json)


def show_main(run: str, as_json: bool) -> int:
    """``tttd show RUN``: progress, best so far, spend, and the next command."""
    from tttd.cli.runs import task_name
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
        "notes": (info.loop or {}).get("notes") or [],
    }
    front = pareto_front(rd.archive)
    if front is not None:
        data["front"] = front
    if as_json:
        print(json.dumps(data, sort_keys=True))
        return 0
    print(safe(f"{data['run_dir']}: task {data['task']}, {data['backend']} {data['model']}"))
    print(f"status: {info.status} ({info.steps_done}/{data['steps']} steps, {data['samples']} samples)")
    if best.get("value") is None:
        print("best value: none yet (no step completed)" if info.loop is None else "best value: none yet")
    else:
        print(f"best value: {best['value']:.10g} ({step_text(best.get('step'))})")
    if front is not None:
        print(f"Pareto front ({len(front)} states, metrics {', '.join(f'{n} ({d[:3]})' for n, d in front_directions(rd.archive).items())}):")
        for row in front:
            shown = ", ".join(f"{k}={v:.6g}" for k, v in row["objectives"].items())
            print(safe(f"  {row['id']} (step {shown_step(row['step'])}): value {row['value']:.6g}; {shown}"))
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
    for note in data["notes"]:  # said once during the run (a dropped api parameter, how tokens are counted)
        print(safe(f"note: {note}"))
    if info.stop_reason and cfg_obj is not None:
        from tttd.wording import raise_cap_command

        print(f"stopped by a budget cap: {info.stop_reason}; to go on: "
              f"{raise_cap_command(rd.path, info.stop_reason, info.ledger, cfg_obj, info.steps_done)}")
    elif info.status != "finished":
        print(f"continue: tttd resume {rd.path}")
    return 0


def front_directions(path: Any) -> dict[str, str]:
    try:
        return json.loads(path.read_text())["config"].get("directions") or {}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def pareto_front(path: Any) -> list[dict[str, Any]] | None:
    """The archive's Pareto front (issue 37): id, step, value and metrics of each state on it;
    None when the run has one objective or no archive yet."""
    from tttd.archive import Archive

    if not front_directions(path):
        return None
    try:
        arch = Archive.load(path)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return [{"id": s.id, "step": s.step, "value": s.value, "objectives": dict(s.metrics.get("objectives") or {})}
            for s in arch.front()]
