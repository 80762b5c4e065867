"""``tttd prompt TASK``: render a task's root prompt, parse an example answer, verify the root (the
dry run without the size and cost estimate: :mod:`tttd.cli.dryrun`)."""

from __future__ import annotations

import argparse
from typing import Any

from tttd.cli.common import parse_kv
from tttd.config import resolve_config


def add_parser(sub: Any) -> None:
    pr = sub.add_parser("prompt", help="render a task's root prompt, parse an example answer, verify the root")
    pr.add_argument("task", help="registered task name or path/to/task.py[:name]")
    pr.add_argument("--preset", help="settings preset (affects evaluation limits)")
    pr.add_argument("--task-option", action="append", metavar="KEY=VALUE", help="option for the task")
    pr.add_argument("--seed", type=int, help="random seed of the roots (default 0)")
    pr.add_argument("--json", action="store_true", help="print one JSON object")
    pr.set_defaults(func=cmd_prompt)


def cmd_prompt(args: argparse.Namespace) -> int:
    from tttd.cli.dryrun import dry_run_main
    from tttd.build import build_task
    from tttd.registry import get_task

    options = parse_kv(args.task_option, "--task-option")
    task = get_task(args.task, **options)
    flags = dict(task=args.task, preset=args.preset, seed=args.seed, task_options=options or None)
    # the preset `tttd run TASK` takes (demo for the tiny model): the same roots, "1 of N" alike (issue 36)
    from tttd.cli.run import default_preset

    cfg = resolve_config(task.presets, preset=default_preset(None, None),
                         file_values=getattr(task, "run_defaults", None), flag_values=flags)
    return dry_run_main(build_task(cfg), cfg, args.json, with_estimate=False)
