"""The ``tttd`` command line: demo, run, resume, show, tasks, verify."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from tttd.config import ConfigError, RunConfig, config_from_dict, load_config_file, resolve_config
from tttd.rundir import NotARunError, RunDir, read_jsonl
from tttd.text import safe

DESCRIPTION = """\
tttd finds one exceptional solution to a hard problem with a verifiable score by letting an
LLM keep training on that one problem while it searches (TTT-Discover).

Start here:
  tttd demo                      a 3-minute CPU demo with a tiny local model
  tttd tasks                     the problems tttd knows
  tttd run erdos --preset paper --backend tinker --model Qwen/Qwen3-8B
  tttd run ./my_task.py          your own problem (see examples/)
  tttd show runs/<run>           how a run is doing; tttd resume runs/<run> continues it
  tttd verify erdos FILE         re-verify a construction or a program
"""


def _kv(items: list[str] | None, what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{what} must look like KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def _default_out(task: str) -> str:
    name = Path(task).stem if task.endswith(".py") else task
    return str(Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}")


# ------------------------------------------------------------------------------- progress


class Progress:
    """Live progress on stderr: a rich bar on a terminal, one plain line per step otherwise."""

    def __init__(self, total: int, label: str, quiet: bool = False):
        from rich.console import Console

        self.console = Console(stderr=True)
        self.total, self.label, self.quiet = total, label, quiet
        self.bar = None
        if not quiet and self.console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress
            from rich.progress import TextColumn, TimeElapsedColumn

            self.bar = RichProgress(TextColumn("{task.description}"), BarColumn(),
                                    MofNCompleteColumn(), TimeElapsedColumn(),
                                    TextColumn("{task.fields[info]}"), console=self.console)
            self.task_id = self.bar.add_task(label, total=total, info="")

    def event(self, text: str) -> None:
        if not self.quiet:  # events may quote candidates: escaped, never rich markup
            from rich.text import Text

            self.console.print(Text(safe(text), style="dim" if self.bar else ""), highlight=False,
                               soft_wrap=True)

    def step(self, m: dict[str, Any]) -> None:
        if self.quiet:
            return
        best = m.get("best_value")
        info = (f"best {best:.6g}  " if best is not None else "best -  ") + (
            f"reward mean {m['reward_mean']:.4g} max {m['reward_max']:.4g}  "
            f"valid {m['valid_fraction']:.0%}  archive {m['archive_size']}")
        if self.bar is not None:
            self.bar.update(self.task_id, completed=m["step"] + 1, info=info)
        else:
            self.console.print(f"{self.label} step {m['step'] + 1}/{self.total}  {info}",
                               highlight=False, soft_wrap=True)

    def __enter__(self):
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()


# ------------------------------------------------------------------------------- commands


def _execute(cfg: RunConfig, out: str, label: str, quiet: bool, resume: bool = False,
             accept_task_change: bool = False, after_restore=None) -> dict[str, Any]:
    from tttd.loop import Discovery
    from tttd.sandbox.report import check_isolation

    check_isolation(cfg.require_isolation)  # before anything is written: warn, or refuse (exit 2)

    with Progress(cfg.steps, label, quiet) as progress:
        run = Discovery(cfg, out, on_step=progress.step, on_event=progress.event)
        if resume:
            run.restore(accept_task_change=accept_task_change)
            if after_restore is not None:
                after_restore()
            if run.step >= cfg.steps:
                progress.event(f"{out} already finished its {cfg.steps} steps "
                               f"(tttd resume {out} --steps N continues it)")
        else:
            run.start()
        try:
            return run.run()
        except KeyboardInterrupt:
            progress.event(f"interrupted; the last completed step is kept: tttd resume {out}")
            raise SystemExit(130) from None


def _print_summary(summary: dict[str, Any], as_json: bool, extra: dict[str, Any] | None = None) -> None:
    result = {**summary, **(extra or {})}
    if as_json:
        print(json.dumps(result, sort_keys=True))
        return
    print(f"best value {result['best_value']}  (reward {result['best_reward']}, step {result['best_step']})")
    print(f"{result['steps']} steps, {result['samples']} samples, {result['seconds']:.1f} s; "
          f"run: {safe(result['run_dir'])}")


def cmd_demo(args: argparse.Namespace) -> int:
    from tttd.policy.tiny import build_tiny_model

    t0 = time.perf_counter()
    from rich.console import Console

    err = Console(stderr=True)
    if not args.quiet:
        err.print("tttd demo: test-time training of a tiny local model on a toy Erdős-style problem")
    model_path = build_tiny_model("tiny", progress=not args.quiet)
    from tttd.task import get_task

    overrides = dict(steps=args.steps, seed=args.seed, model=str(model_path), task="demo", backend="local")
    cfg = resolve_config(get_task("demo").presets, preset="demo", flag_values=overrides)
    out = args.out or _default_out("demo")
    cfg.out = out
    runs = []
    modes = [("frozen", False)] if args.no_train else [("trained", True), ("frozen", False)]
    for name, train in modes:
        c = RunConfig(**{**cfg.to_dict(), "train": train})
        path = out if name == modes[0][0] else str(Path(out) / "baseline-frozen")
        c.out = path
        summary = _execute(c, path, f"demo ({name})", args.quiet)
        runs.append((name, summary))
    main_name, main = runs[0]
    extra: dict[str, Any] = {"mode": main_name}
    if len(runs) > 1:
        extra["frozen_best_value"] = runs[1][1]["best_value"]
        extra["frozen_run_dir"] = runs[1][1]["run_dir"]
    extra["seconds_total"] = round(time.perf_counter() - t0, 2)
    if not args.json:
        best = json.loads((Path(out) / "best" / "best.json").read_text())
        print(f"best solution: {safe(best['artifact'].get('digits'))}  overlap {best['value']:.6f} "
              f"(lower is better; a constant function scores 0.5)")
        if len(runs) > 1:
            f = runs[1][1]
            print(f"trained policy: best overlap {main['best_value']:.6f}; frozen policy, same "
                  f"{f['samples']} samples: {f['best_value']:.6f}")
    _print_summary(main, args.json, extra)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from tttd.preflight import check_run_config
    from tttd.task import absolute_task_spec, get_task

    args.task = absolute_task_spec(args.task)  # stored absolute: resumable from anywhere
    task = get_task(args.task, **_kv(args.task_option, "--task-option"))
    file_values = load_config_file(args.config) if args.config else {}
    flags = dict(
        task=args.task, backend=args.backend, model=args.model, preset=args.preset, steps=args.steps,
        groups=args.groups, group_size=args.group_size, out=args.out, seed=args.seed,
        reuse=args.reuse, objective=args.objective, learning_rate=args.lr, max_tokens=args.max_tokens,
        kl_coef=args.kl_coef, executor=args.executor, workers=args.workers,
        train=False if args.no_train else None,
        require_isolation=True if args.require_isolation else None,
    )
    if args.task_option:
        flags["task_options"] = _kv(args.task_option, "--task-option")
    if args.backend_option:
        flags["backend_options"] = _kv(args.backend_option, "--backend-option")
    cfg = resolve_config(task.presets, file_values=file_values, flag_values=flags)
    cfg.out = cfg.out or _default_out(args.task)
    check_run_config(cfg)  # every option checked before anything is written
    summary = _execute(cfg, cfg.out, task.name, args.quiet)
    _print_summary(summary, args.json)
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from tttd.rundir import atomic_write_json

    from tttd.preflight import check_run_config

    rd = RunDir(args.run)
    full = rd.read_config()
    data = {k: v for k, v in full.items() if not k.startswith("_")}
    if args.steps is not None:
        data["steps"] = args.steps
    cfg = config_from_dict(data)
    check_run_config(cfg)

    def persist_steps() -> None:  # only once the checkpoint restored: a failed resume keeps all
        if args.steps is not None and args.steps != full.get("steps"):
            atomic_write_json(rd.config, {**rd.read_config(), "steps": args.steps})

    summary = _execute(cfg, args.run, cfg.task, args.quiet, resume=True,
                       accept_task_change=args.accept_task_change, after_restore=persist_steps)
    _print_summary(summary, args.json)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    rd = RunDir(args.run)
    cfg = rd.read_config()
    ckpt = rd.latest_step_dir()
    loop = json.loads((ckpt / "loop.json").read_text()) if ckpt else None
    done = loop["step"] + 1 if loop else 0
    last = None
    for last in read_jsonl(rd.metrics):
        pass
    info = {
        "run_dir": str(rd.path), "task": cfg.get("task"), "backend": cfg.get("backend"),
        "model": cfg.get("model"), "steps_done": done, "steps": cfg.get("steps"),
        "status": "finished" if done >= cfg.get("steps", 0) else "resumable",
        "best_value": loop["best"]["value"] if loop else None,
        "best_step": loop["best"]["step"] if loop else None,
        "samples": loop["ledger"]["samples"] if loop else 0,
        "last_step": last,
        "files": {"best": str(rd.best), "metrics": str(rd.metrics), "archive": str(rd.archive)},
    }
    if args.json:
        print(json.dumps(info, sort_keys=True))
        return 0
    print(safe(f"{info['run_dir']}: task {info['task']}, {info['backend']} {info['model']}"))
    print(f"status: {info['status']} ({done}/{info['steps']} steps, {info['samples']} samples)")
    print(f"best value: {info['best_value']} (step {info['best_step']})")
    if (rd.best / "best.json").exists():
        best = json.loads((rd.best / "best.json").read_text())
        if best.get("verify"):
            print(f"re-verify: {safe(best['verify'])}")
    print(safe(f"files: {rd.best}/  {rd.metrics}  {rd.archive}"))
    if info["status"] != "finished":
        print(f"continue: tttd resume {rd.path}")
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    from tttd.task import list_tasks

    tasks = list_tasks()
    width = max(len(n) for n in tasks) if tasks else 0
    for name, summary in tasks.items():
        print(f"{name.ljust(width)}  {summary}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from tttd.sandbox.report import check_isolation
    from tttd.verify import verify_main

    check_isolation(False)  # a loud warning when the candidate would run with weaker isolation

    return verify_main(args.task, args.file, args.json,
                       task_options=_kv(getattr(args, "task_option", None), "--task-option"))


# ------------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tttd", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def common(sp, json_help="print one JSON object as the last line"):
        sp.add_argument("--json", action="store_true", help=json_help)
        sp.add_argument("--quiet", "-q", action="store_true", help="no progress output")

    d = sub.add_parser("demo", help="run the CPU demo: a tiny local model learns a toy problem (~3 min)")
    d.add_argument("--no-train", action="store_true", help="frozen model only (the no-training ablation)")
    d.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    d.add_argument("--out", help="run directory (default runs/demo-<time>)")
    d.add_argument("--steps", type=int, default=None, help="steps (default: the demo preset's)")
    common(d)
    d.set_defaults(func=cmd_demo)

    r = sub.add_parser("run", help="run test-time training on a task",
                       description="Run TTT-Discover on TASK: a registered name (tttd tasks) or a path "
                                   "to your own Python file that registers a task.")
    r.add_argument("task", help="registered task name or path/to/task.py[:name]")
    r.add_argument("--config", help="TOML/YAML/JSON file of settings (flags override it)")
    r.add_argument("--preset", help="settings preset: paper, demo, or one the task defines")
    r.add_argument("--backend", choices=["local", "tinker", "api"], help="where the policy runs (default local)")
    r.add_argument("--model", help="model: HF folder or name, 'tiny'/'small' (built locally), or the service's model")
    r.add_argument("--steps", type=int, help="training steps (paper: 50)")
    r.add_argument("--groups", type=int, help="start states per step (paper: 8)")
    r.add_argument("--group-size", type=int, help="samples per start state (paper: 64)")
    r.add_argument("--lr", type=float, help="learning rate (paper: 4e-5)")
    r.add_argument("--max-tokens", type=int, help="token budget per sample")
    r.add_argument("--kl-coef", type=float, help="KL-to-base penalty lambda (paper: 0.1)")
    r.add_argument("--no-train", action="store_true", help="ablation: frozen policy (best-of-N with reuse)")
    r.add_argument("--reuse", choices=["puct", "greedy", "none"], help="ablation: how start states are picked")
    r.add_argument("--objective", choices=["entropic", "entropic-fixed", "mean"], help="ablation: advantages")
    r.add_argument("--executor", choices=["local", "ray"], help="where evaluations run (default local)")
    r.add_argument("--workers", type=int, help="evaluation workers (default: one per core)")
    r.add_argument("--task-option", action="append", metavar="KEY=VALUE", help="option for the task")
    r.add_argument("--backend-option", action="append", metavar="KEY=VALUE", help="option for the backend (e.g. base_url=...)")
    r.add_argument("--out", help="run directory (default runs/<task>-<time>)")
    r.add_argument("--seed", type=int, help="random seed (default 0)")
    r.add_argument("--require-isolation", action="store_true",
                   help="refuse to run (exit 2) unless the sandbox has full isolation (bubblewrap)")
    common(r)
    r.set_defaults(func=cmd_run)

    rs = sub.add_parser("resume", help="continue a run after an interruption")
    rs.add_argument("run", help="run directory")
    rs.add_argument("--steps", type=int, help="raise the total number of steps")
    rs.add_argument("--accept-task-change", action="store_true",
                    help="resume although the task's source or options changed since the start")
    common(rs)
    rs.set_defaults(func=cmd_resume)

    s = sub.add_parser("show", help="status of a run: progress, best so far, where things are")
    s.add_argument("run", help="run directory")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    s.set_defaults(func=cmd_show)

    t = sub.add_parser("tasks", help="list registered tasks")
    t.set_defaults(func=cmd_tasks)

    v = sub.add_parser("verify", help="re-verify a construction file or a program for a task")
    v.add_argument("task", help="task name")
    v.add_argument("file", help="construction (.json) or program (.py, or .cpp for the AHC tasks)")
    v.add_argument("--task-option", action="append", metavar="KEY=VALUE", help="option for the task (e.g. cases=0-9)")
    v.add_argument("--json", action="store_true", help='print {"valid", "value", "reward", "message"}')
    v.set_defaults(func=cmd_verify)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from tttd.loop import PolicyLoadError
    from tttd.sandbox.report import IsolationError
    from tttd.task import TaskOptionError, UnknownTaskError

    try:
        return args.func(args)
    except (ConfigError, UnknownTaskError, TaskOptionError, NotARunError, FileExistsError,
            PolicyLoadError, IsolationError) as exc:
        print(f"tttd: error: {safe(exc)}", file=sys.stderr)
        return 2
    except (FileNotFoundError, OSError, ImportError) as exc:
        print(f"tttd: error: {safe(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
