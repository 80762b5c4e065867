"""``tttd ablate TASK``: the paper's ablations at an equal sample budget over seeds, and their table."""

from __future__ import annotations

import argparse
import json
import signal
import os
import sys
from pathlib import Path
from typing import Any

from tttd.ablate.spec import DEFAULT_VARIANTS, VARIANTS, build_spec, open_spec, parse_assignments, run_config
from tttd.config import ConfigError

RESULTS = "ablation-results.json"
TABLE = "ablation.md"


def add_ablate_parser(sub) -> None:
    names = ", ".join(f"{k} ({v[0]})" for k, v in VARIANTS.items())
    a = sub.add_parser(
        "ablate", help="the paper's ablations (frozen, mean reward, no reuse, ...) over seeds, and their table",
        description="Run every variant of the method on TASK at the same sample budget over several seeds, "
                    "as ordinary run directories under one ablation directory, and write the table "
                    f"(ablation.md, ablation-results.json). Variants: {names}. A killed ablation "
                    "continues where it stopped when the same command is given again.")
    a.add_argument("task", help="registered task name or path/to/task.py[:name]")
    a.add_argument("--seeds", type=int, default=8, help="seeds per variant (default 8): seeds 0..N-1")
    a.add_argument("--steps", type=int, help="steps per run (default: the preset's)")
    a.add_argument("--variants", nargs="+", metavar="NAME",
                   help=f"built-in variants to run (default: {', '.join(DEFAULT_VARIANTS)}; also "
                        f"{', '.join(v for v in VARIANTS if v not in DEFAULT_VARIANTS)})")
    a.add_argument("--variant", action="append", metavar="NAME:KEY=VALUE[,KEY=VALUE]", dest="extra",
                   help="an extra variant: full with these settings changed (e.g. per-rollout:visit_counting=rollout)")
    a.add_argument("--jobs", "-j", type=int, help="runs at the same time (default: one per core, as memory allows)")
    a.add_argument("--out", help="ablation directory (default ablations/<task>)")
    a.add_argument("--dry-run", action="store_true", help="say how many runs and how long; run and write nothing")
    a.add_argument("--preset", help="settings preset of every run (default: demo for the tiny local model)")
    a.add_argument("--model", help="model of every run (default: the tiny local model)")
    a.add_argument("--backend", choices=["local", "tinker", "api"], help="backend of every run (default local)")
    a.add_argument("--groups", type=int, help="start states per step")
    a.add_argument("--group-size", type=int, help="samples per start state")
    a.add_argument("--set", action="append", metavar="KEY=VALUE[,KEY=VALUE]",
                   help="any other run setting shared by every variant (e.g. learning_rate=1e-3)")
    a.add_argument("--task-option", action="append", metavar="KEY=VALUE", help="option for the task")
    a.add_argument("--threshold", type=float, help="value for 'samples to reach' (default: the median final best)")
    a.add_argument("--json", action="store_true", help="print the results as one JSON object")
    a.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    a.set_defaults(func=cmd_ablate)


def _base(args: argparse.Namespace) -> dict[str, Any]:
    from tttd.cli.common import parse_kv as _kv

    base: dict[str, Any] = {}
    for text in args.set or []:
        base.update(parse_assignments(text, "--set"))
    flags = dict(preset=args.preset, model=args.model, backend=args.backend, groups=args.groups,
                 group_size=args.group_size)
    base.update({k: v for k, v in flags.items() if v is not None})
    if args.task_option:
        base["task_options"] = _kv(args.task_option, "--task-option")
    return base


def cmd_ablate(args: argparse.Namespace) -> int:
    from tttd.ablate import runner
    from tttd.cli.run import default_preset
    from tttd.config import resolve_config
    from tttd.cli.preflight import check_run_config
    from tttd.registry import absolute_task_spec, get_task

    from tttd.registry import list_tasks

    # a registered name stays a name, even where a folder of that name sits in the working directory
    # (the default ablation directory ablations/<task> is one)
    task_spec = args.task if args.task in list_tasks() else absolute_task_spec(args.task)
    base = _base(args)
    task = get_task(task_spec, **base.get("task_options", {}))
    preset = default_preset(base.get("model"), base.get("backend"))
    steps = args.steps
    if steps is None:
        probe = {k: v for k, v in base.items() if k != "preset"}
        steps = resolve_config(task.presets, preset=base.get("preset") or preset,
                               flag_values={**probe, "task": task_spec}).steps
    if args.jobs is not None and args.jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {args.jobs}")
    given = build_spec(task_spec, args.seeds, steps, args.variants, args.extra, base, args.threshold)
    name = Path(task_spec).stem if task_spec.endswith(".py") else Path(task_spec.rstrip("/")).name
    root = Path(args.out or Path("ablations") / name)
    configs = {rid: run_config(given, root, *rid, task.presets, preset) for rid in given.run_ids()}
    for cfg in {json.dumps(c.to_dict(), sort_keys=True): c for c in configs.values()}.values():
        check_run_config(cfg)  # every run's options, before anything is written
    spec = open_spec(root, given, write=False)  # refuses changed arguments before anything runs
    plan = runner.Plan.read(spec, root)
    jobs = args.jobs or runner.default_jobs(len(plan.todo()))
    if args.dry_run:
        return _dry_run(plan, configs, jobs, root, args.json)
    from tttd.sandbox.report import check_isolation

    check_isolation(any(c.require_isolation for c in configs.values()))
    open_spec(root, given, write=True)
    if not args.quiet:
        from tttd.wording import plural

        print(f"tttd ablate: {plural(len(plan.status), 'run')} in {root} ({plural(len(spec.variants), 'variant')} x "
              f"{plural(len(spec.seeds), 'seed')}, {plural(steps, 'step')} of {configs[spec.run_ids()[0]].groups} x {configs[spec.run_ids()[0]].group_size} "
              f"samples); {plan.count('finished')} finished, {plan.count('unfinished')} to resume; {jobs} jobs",
              file=sys.stderr)
    errors = runner.execute(plan, configs, jobs, quiet=args.quiet)
    result = write_results(spec, root)
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k != "curves"}, sort_keys=True))
    else:
        from tttd.ablate.table import markdown

        print(markdown(result))
        print(f"\nresults: {root / RESULTS}, table: {root / TABLE}; report: tttd report {root}")
    if plan.stopped_by is not None:  # Ctrl-C / SIGTERM: each worker committed its step in flight
        after = runner.Plan.read(spec, root)
        left = [f"{v} seed {s} ({done}/{spec.steps} steps)" for (v, s), (st, done) in sorted(after.status.items())
                if st != "finished"]
        name = signal.Signals(plan.stopped_by).name
        print(f"tttd ablate: stopped by {name}; {len(left)} run(s) unfinished"
              + (f": {', '.join(left)}" if left else "") + "; run the same command again to continue them",
              file=sys.stderr)
        return 128 + plan.stopped_by
    if errors:
        print(f"tttd ablate: {len(errors)} run(s) failed (see {root}/logs); run the same command again "
              "to retry them", file=sys.stderr)
        return 1
    return 0


def write_results(spec, root: Path) -> dict[str, Any]:
    from tttd.ablate.stats import analyse
    from tttd.ablate.table import markdown
    from tttd.atomic import atomic_write_json, atomic_write_text

    result = analyse(spec, root)
    atomic_write_json(root / RESULTS, result)
    atomic_write_text(root / TABLE, markdown(result) + "\n")
    return result


def _dry_run(plan, configs, jobs: int, root: Path, as_json: bool) -> int:
    from tttd.ablate.runner import clock, estimate_seconds, usable_cores

    est = estimate_seconds(plan, configs, jobs)
    first = configs[plan.spec.run_ids()[0]]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    info = {"ablation_dir": str(root), "runs": len(plan.status), "variants": list(plan.spec.variants),
            "seeds": len(plan.spec.seeds), "steps": plan.spec.steps,
            "samples_per_run": plan.spec.steps * first.groups * first.group_size,
            "finished": plan.count("finished"), "unfinished": plan.count("unfinished"), "new": plan.count("new"),
            "jobs": jobs, "cores": usable_cores(), "estimate_seconds_idle": round(est, 1), "load_average": load}
    if as_json:
        print(json.dumps(info, sort_keys=True))
        return 0
    from tttd.wording import plural

    print(f"{plural(info['runs'], 'run')} ({plural(len(plan.spec.variants), 'variant')} x {plural(info['seeds'], 'seed')}: "
          f"{', '.join(plan.spec.variants)}), {plural(plan.spec.steps, 'step')} of {first.groups} x {first.group_size} "
          f"samples = {info['samples_per_run']} samples each")
    print(f"{info['finished']} finished, {info['unfinished']} to resume, {info['new']} to start; in {root}")
    print(f"estimate: about {clock(est)} with {jobs} jobs on {info['cores']} idle cores (the tiny model's "
          "measured step times); a busy machine is several times slower"
          + (f" (load average now {load:.1f})" if load is not None else ""))
    return 0
