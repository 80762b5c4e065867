"""``tttd audit RUN [--top K] [--json]``: re-verify a run's best candidate and its top K.

Each candidate (the run's best first, then the K best other states of its archive, roots excluded,
one per artifact) is re-verified as ``tttd verify`` would: a program (one file, or a multi-file
program's files) runs again in a fresh sandboxed process, with fresh secret seeds; a construction
goes through the trusted verifier again. A run with several objectives is judged by its ``--rule``.
Each line shows the candidate's static flags (speed tasks: :mod:`tttd.tasks.speed.scan`), its
re-measured value against the recorded one and a verdict:

- ``consistent``: valid now, and the value agrees with the recorded one within the task's audit
  tolerance (``audit_rtol``: 1e-6 by default, timed tasks declare a wider one, e.g. the speed kit's
  0.25 for timing noise);
- ``irreproducible``: valid now, but the value differs beyond that tolerance;
- ``invalid now``: the verifier refuses it today (e.g. a GPU task on a machine without a GPU says
  why in the message).

The result is written to ``RUN/audit.json`` (the report shows it). Exit status: 0 when the best is
consistent, 1 when it is not, 2 usage error (not a run, unknown task).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path
from typing import Any

from tttd.text import safe

VERDICTS = ("consistent", "irreproducible", "invalid now")


def candidates(run: Path, top: int) -> tuple[list[dict[str, Any]], bool]:
    """(the best then the top ``top`` other non-root states, one per artifact; maximize?)."""
    from tttd.rundir import RunDir

    rd = RunDir(run)
    out: list[dict[str, Any]] = []
    seen: set[str] = set()

    def add(label: str, artifact: dict[str, Any], value: Any, step: Any) -> None:
        key = json.dumps(artifact, sort_keys=True, default=str)
        if artifact and key not in seen:
            seen.add(key)
            out.append({"label": label, "artifact": artifact, "recorded": value, "step": step})

    best_file = rd.best / "best.json"
    if best_file.is_file():
        b = json.loads(best_file.read_text())
        add("best", b.get("artifact") or {}, b.get("value"), b.get("step"))
    maximize = True
    if rd.archive.is_file():
        data = json.loads(rd.archive.read_text())
        maximize = bool((data.get("config") or {}).get("maximize", True))
        states = [e["state"] for e in data.get("states", []) if e.get("state", {}).get("value") is not None
                  and e["state"].get("parent_id") is not None]
        states.sort(key=lambda s: float(s["value"]), reverse=maximize)
        if not out and states:
            s = states[0]
            add("best", s.get("artifact") or {}, s["value"], s.get("step"))
        for s in states:
            if len(out) > top:
                break
            add(f"top {len(out)}", s.get("artifact") or {}, s["value"], s.get("step"))
    return out, maximize


def build_task(config: dict[str, Any]):
    """The run's task, built as the run built it (its options and evaluation limits)."""
    from tttd.registry import declared_options, get_task, task_factory

    name = config["task"]
    offered = {k: config.get(k) for k in ("eval_timeout_s", "cpus_per_eval", "eval_memory_mb")}
    declared = declared_options(task_factory(name)) or []
    options = {k: v for k, v in offered.items() if k in declared and v is not None}
    options.update(config.get("task_options") or {})
    task = get_task(name, **options)
    task.use_rule(config.get("rule") or "primary")  # issue 37: the run's value of several metrics
    return task


def audit_one(task: Any, cand: dict[str, Any]) -> dict[str, Any]:
    """Re-verify one candidate: its row of the audit."""
    from tttd.cli.verify import verify_construction, verify_program, verify_tree

    art = cand["artifact"]
    code = art.get("code")
    files = art.get("files") if isinstance(art.get("files"), dict) else None
    flags: list[str] = []
    if (code or files) and hasattr(task, "spec") and hasattr(task.spec, "invalid_flags"):
        from tttd.tasks.speed.scan import scan

        flags = scan(code or "\n".join(files.values()))  # type: ignore[union-attr]
    t0 = time.perf_counter()
    if files is not None and hasattr(task, "program_from_files"):  # issue 37: the files run again
        try:
            ev = verify_tree(task, files)
        except ValueError as exc:
            ev = task.invalid(f"the archived files cannot be run: {exc}")
    elif code and len(art) == 1:
        ev = verify_program(task, code)
    else:
        ev = verify_construction(task, {k: v for k, v in art.items() if k != "code"})
    rtol = float(getattr(task, "audit_rtol", 1e-6))
    rec = cand.get("recorded")
    if not ev.valid:
        verdict = "invalid now"
    elif rec is None or not math.isclose(float(ev.value), float(rec), rel_tol=rtol, abs_tol=1e-12):
        verdict = "irreproducible"
    else:
        verdict = "consistent"
    return {"label": cand["label"], "step": cand.get("step"), "recorded": rec,
            "remeasured": ev.value if ev.valid else None, "verdict": verdict, "flags": flags,
            "status": ev.status, "message": ev.message.splitlines()[0][:300] if ev.message else "",
            "rtol": rtol, "seconds": round(time.perf_counter() - t0, 3)}


def run_audit(run: str | Path, top: int = 5, out=None) -> tuple[int, dict[str, Any]]:
    """Audit a run; write RUN/audit.json; (exit status, the audit)."""
    import sys

    from tttd.atomic import atomic_write_json
    from tttd.rundir import RunDir

    out = out or sys.stdout
    run = Path(run)
    config = RunDir(run).read_config()
    task = build_task(config)
    getattr(task, "prepare", lambda: None)()
    cands, _ = candidates(run, top)
    rows = []
    for c in cands:
        row = audit_one(task, c)
        rows.append(row)
        print(format_row(row), file=out, flush=True)
    if not rows:
        print("tttd audit: the run has no valid candidate to audit", file=out)
    best_ok = bool(rows) and rows[0]["verdict"] == "consistent"
    doc = {"task": config.get("task"), "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "top": top,
           "best_consistent": best_ok, "rows": rows}
    atomic_write_json(run / "audit.json", doc)
    return (0 if best_ok else 1), doc


def format_row(row: dict[str, Any]) -> str:
    rec = "-" if row["recorded"] is None else f"{row['recorded']:.6g}"
    now = "-" if row["remeasured"] is None else f"{row['remeasured']:.6g}"
    flags = ", ".join(row["flags"]) or "none"
    text = f"{row['label']:>6}  recorded {rec:>12}  now {now:>12}  {row['verdict']:<15} flags: {flags}"
    if row["verdict"] != "consistent" and row["message"]:
        text += f"\n        {safe(row['message'], multiline=False)}"
    return text


def add_parser(sub: Any) -> None:
    from tttd.cli.common import weak_flag

    a = sub.add_parser("audit", help="re-verify a run's best and top-K candidates with fresh seeds")
    a.add_argument("run", help="run directory")
    a.add_argument("--top", type=int, default=5, metavar="K", help="also the K best other states (default 5)")
    a.add_argument("--json", action="store_true", help="print the audit as one JSON document")
    weak_flag(a)
    a.set_defaults(func=cmd_audit)


def cmd_audit(args: argparse.Namespace) -> int:
    import io
    import sys

    from tttd.registry import UnknownTaskError
    from tttd.rundir import NotARunError
    from tttd.sandbox.report import check_isolation

    if args.top < 0:
        print("tttd audit: error: --top must be >= 0", file=sys.stderr)
        return 2
    try:
        from tttd.rundir import RunDir

        RunDir(args.run).read_config()
    except (NotARunError, OSError) as exc:
        print(f"tttd audit: error: {safe(exc, multiline=False)}", file=sys.stderr)
        return 2
    check_isolation(False, allow_weak=args.allow_weak_isolation)
    try:
        code, doc = run_audit(args.run, args.top, out=io.StringIO() if args.json else None)
    except (UnknownTaskError, ValueError, TypeError, KeyError) as exc:
        print(f"tttd audit: error: {safe(exc, multiline=False)}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(doc))
    return code
