"""``tttd resume RUN``: continue a run from its last completed step, optionally with more steps or a
raised budget cap; a finished run says so before any model is loaded."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from tttd.cli import common
from tttd.cli.common import budget_flags, json_quiet_flags, print_summary, weak_flag
from tttd.config import config_from_dict
from tttd.rundir import RunDir
from tttd.wording import plural


def add_parser(sub: Any) -> None:
    rs = sub.add_parser("resume", help="continue a run after an interruption")
    rs.add_argument("run", help="run directory")
    rs.add_argument("--steps", type=int, help="raise the total number of steps")
    rs.add_argument("--accept-task-change", action="store_true",
                    help="resume although the task's source or options changed since the start")
    weak_flag(rs)
    budget_flags(rs)
    json_quiet_flags(rs)
    rs.set_defaults(func=cmd_resume)


def finished_message(run_dir: str | Path, steps: int) -> str | None:
    """A one-line note when the run at ``run_dir`` already completed ``steps`` steps, else None."""

    rd = RunDir(run_dir)
    ckpt = rd.latest_step_dir()
    if ckpt is None:
        return None
    _, loop = rd.read_checkpoint(ckpt)  # a damaged checkpoint is refused with one line
    done = int(loop["step"]) + 1
    if done < steps:
        return None
    best = loop.get("best", {}).get("value")
    if done > steps:  # --steps below what is done (issue 32): say what was done, not the request
        return (f"{run_dir} has already done {plural(done, 'step')}, more than the {steps} asked (best value "
                f"{best}); nothing to resume. To continue it: tttd resume {run_dir} --steps N (N > {done})")
    return (f"{run_dir} already finished its {plural(steps, 'step')} (best value {best}); nothing to resume. "
            f"To continue it: tttd resume {run_dir} --steps N (N > {steps})")


def cmd_resume(args: argparse.Namespace) -> int:
    from tttd.cli.preflight import check_run_config
    from tttd.rundir import atomic_write_json

    rd = RunDir(args.run)
    full = rd.read_config()
    data = {k: v for k, v in full.items() if not k.startswith("_")}
    if args.steps is not None:
        data["steps"] = args.steps
    from tttd.ledger import CAPS

    caps = {k: getattr(args, k) for k in CAPS if getattr(args, k, None) is not None}
    data.update(caps)  # raise (or lower) a budget cap for the rest of the run
    if args.allow_weak_isolation:  # this invocation only (issue 19)
        data["allow_weak_isolation"] = True
    cfg = config_from_dict(data)
    done = finished_message(args.run, cfg.steps)  # before any model is loaded
    if done is not None:
        print(done, file=sys.stderr)
        return 0
    check_run_config(cfg)

    def persist_steps() -> None:  # only once the checkpoint restored: a failed resume keeps all
        changes = dict(caps)
        if args.steps is not None and args.steps != full.get("steps"):
            changes["steps"] = args.steps
        if changes:
            atomic_write_json(rd.config, {**rd.read_config(), **changes})

    summary = common.execute(cfg, args.run, cfg.task, args.quiet, resume=True,
                       accept_task_change=args.accept_task_change, after_restore=persist_steps)
    print_summary(summary, args.json)
    return 0
