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
  tttd demo                      a CPU demo with a tiny local model (~2 min on 2 idle cores)
  tttd tasks                     the problems tttd knows
  tttd run erdos --preset paper --backend tinker --model Qwen/Qwen3-8B
  tttd new-task my_problem       start your own problem from a commented template
  tttd run ./my_task.py          your own problem (see examples/)
  tttd run path/to/problem_dir   an OpenEvolve or ShinkaEvolve problem folder
  tttd show runs/<run>           how a run is doing; tttd resume runs/<run> continues it
  tttd report runs/<run>         an offline HTML report; tttd runs lists runs
  tttd ablate demo               the paper's ablations over 8 seeds, as a table and a report
  tttd run TASK --dry-run        the prompt, a verifier check and the run's size and cost
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
    name = Path(task).stem if task.endswith(".py") else (Path(task.rstrip("/")).name or task)
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

            self.console.print(Text(safe(text, multiline=False), style="dim" if self.bar else ""), highlight=False,
                               soft_wrap=True)

    def step(self, m: dict[str, Any]) -> None:
        if self.quiet:
            return
        from rich.markup import escape

        from tttd.progress import step_info

        info = escape(step_info(m))  # statuses come from tasks: no rich markup
        info += kl_warning(m.get("kl_sample_train"))
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


#: Mean per-token log q - log p (sampler vs trainer) above which the progress line warns: exact
#: engines measure ~1e-6 (fp32 CPU); bf16 samplers ~1e-3; beyond 0.01 the importance weights
#: drift and the update is noticeably off-policy (a stale adapter, a sampler setting, a bug).
KL_WARN = 0.01


def kl_warning(kl: float | None) -> str:
    if kl is None or abs(kl) <= KL_WARN:
        return ""
    return f"  WARNING sampler-trainer KL {kl:.3g} > {KL_WARN}"


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
    from tttd.demo_cmd import run_demo

    return run_demo(args)


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
        kl_coef=args.kl_coef, executor=args.executor, workers=args.workers, temperature=args.temperature,
        train=False if args.no_train else None,
        max_usd=args.max_usd, max_samples=args.max_samples, max_hours=args.max_hours, log=args.log,
        engine=args.engine,
        require_isolation=True if args.require_isolation else None,
    )
    if args.task_option:
        flags["task_options"] = _kv(args.task_option, "--task-option")
    if args.backend_option:
        flags["backend_options"] = _kv(args.backend_option, "--backend-option")
    if args.chat_template_option:
        flags["chat_template_kwargs"] = _kv(args.chat_template_option, "--chat-template-option")
    from tttd.cli_extra import default_preset, describe_preset

    preset = default_preset(flags["model"] or file_values.get("model"), flags["backend"] or file_values.get("backend"))
    cfg = resolve_config(task.presets, preset=preset, file_values=file_values, flag_values=flags)
    if preset is not None and cfg.preset == preset and not args.quiet and not args.preset:
        print(describe_preset(cfg), file=sys.stderr)
    if args.dry_run:  # nothing sampled, nothing written
        from tttd.dryrun import dry_run_main
        from tttd.loop import build_task

        return dry_run_main(build_task(cfg), cfg, args.json)
    cfg.out = cfg.out or _default_out(args.task)
    check_run_config(cfg)  # every option checked before anything is written
    summary = _execute(cfg, cfg.out, task.name, args.quiet)
    _print_summary(summary, args.json)
    return 0


def cmd_resume(args: argparse.Namespace) -> int:
    from tttd.cli_extra import finished_message
    from tttd.preflight import check_run_config
    from tttd.rundir import atomic_write_json

    rd = RunDir(args.run)
    full = rd.read_config()
    data = {k: v for k, v in full.items() if not k.startswith("_")}
    if args.steps is not None:
        data["steps"] = args.steps
    from tttd.ledger import CAPS

    caps = {k: getattr(args, k) for k in CAPS if getattr(args, k, None) is not None}
    data.update(caps)  # raise (or lower) a budget cap for the rest of the run
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
        "spend": loop["ledger"] if loop else None,
        "budget": {k: cfg.get(k) for k in ("max_usd", "max_samples", "max_hours")},
        "stopped": _budget_stop(cfg, loop, done),
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
    from tttd.ledger import Ledger, spend_lines

    if loop is not None:
        for line in spend_lines(Ledger.from_dict(loop["ledger"]), config_from_dict(
                {k: v for k, v in cfg.items() if not k.startswith("_")})):
            print(line)
    if info["stopped"]:
        print(f"stopped by a budget cap: {info['stopped']}; raise it: tttd resume {rd.path} --max-...")
    elif info["status"] != "finished":
        print(f"continue: tttd resume {rd.path}")
    return 0


def _budget_stop(cfg: dict[str, Any], loop: dict[str, Any] | None, done: int) -> str | None:
    """Why a budget cap keeps the run from its next step, or None."""
    from tttd.ledger import Ledger, budget_stop

    if loop is None or done >= cfg.get("steps", 0):
        return None
    return budget_stop(Ledger.from_dict(loop["ledger"]),
                      config_from_dict({k: v for k, v in cfg.items() if not k.startswith("_")}))


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


def cmd_new_task(args: argparse.Namespace) -> int:
    from tttd.new_task import new_task_main

    return new_task_main(args.name, args.dir)


# ------------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tttd", description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def common(sp, json_help="print one JSON object as the last line"):
        sp.add_argument("--json", action="store_true", help=json_help)
        sp.add_argument("--quiet", "-q", action="store_true", help="no progress output")

    d = sub.add_parser("demo", help="run the CPU demo: a tiny local model learns a toy problem (~2 min on 2 idle cores)")
    d.add_argument("--no-train", action="store_true", help="frozen model only (the no-training ablation)")
    d.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    d.add_argument("--out", help="run directory (default runs/demo-<time>)")
    d.add_argument("--steps", type=int, default=None, help="steps (default: the demo preset's)")
    d.add_argument("--engine", choices=["auto", "hf", "vllm"], help="sampling engine (default auto)")
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
    r.add_argument("--learning-rate", "--lr", dest="lr", type=float, help="learning rate (paper: 4e-5)")
    r.add_argument("--temperature", type=float, help="sampling temperature (paper: 1.0)")
    r.add_argument("--max-tokens", type=int, help="token budget per sample")
    r.add_argument("--kl-coef", type=float, help="KL-to-base penalty lambda (paper: 0.1)")
    r.add_argument("--no-train", action="store_true", help="ablation: frozen policy (best-of-N with reuse)")
    r.add_argument("--reuse", choices=["puct", "greedy", "none"], help="ablation: how start states are picked")
    r.add_argument("--objective", choices=["entropic", "entropic-fixed", "mean"], help="ablation: advantages")
    r.add_argument("--executor", choices=["local", "ray"], help="where evaluations run (default local)")
    r.add_argument("--workers", type=int, help="evaluation workers (default: one per core)")
    r.add_argument("--task-option", action="append", metavar="KEY=VALUE", help="option for the task")
    r.add_argument("--backend-option", action="append", metavar="KEY=VALUE", help="option for the backend (e.g. base_url=...)")
    r.add_argument("--chat-template-option", action="append", metavar="KEY=VALUE",
                   help="option for the chat template, e.g. reasoning_effort=high (the paper preset's)")
    r.add_argument("--engine", choices=["auto", "hf", "vllm"],
                   help="local backend's sampling engine (default auto: vllm when installed and usable)")
    r.add_argument("--out", help="run directory (default runs/<task>-<time>)")
    r.add_argument("--seed", type=int, help="random seed (default 0)")
    r.add_argument("--dry-run", action="store_true",
                   help="render a prompt, check the verifier, estimate the run's size and cost; sample nothing")
    r.add_argument("--log", help="also log metrics offline to tensorboard, wandb (comma-separated)")
    _budget_flags(r)
    r.add_argument("--require-isolation", action="store_true",
                   help="refuse to run (exit 2) unless the sandbox has full isolation (bubblewrap)")
    common(r)
    r.set_defaults(func=cmd_run)

    rs = sub.add_parser("resume", help="continue a run after an interruption")
    rs.add_argument("run", help="run directory")
    rs.add_argument("--steps", type=int, help="raise the total number of steps")
    rs.add_argument("--accept-task-change", action="store_true",
                    help="resume although the task's source or options changed since the start")
    _budget_flags(rs)
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

    nt = sub.add_parser("new-task", help="write a commented, runnable task file and a test of its scorer")
    nt.add_argument("name", help="task name (the files are NAME.py and test_NAME.py)")
    nt.add_argument("--dir", default=".", help="where to write them (default: here)")
    nt.set_defaults(func=cmd_new_task)
    _more_commands(sub)
    return p


def _budget_flags(sp) -> None:
    sp.add_argument("--max-usd", type=float, help="stop before a step would cross this spend (needs a price)")
    sp.add_argument("--max-samples", type=int, help="stop before a step would cross this many samples")
    sp.add_argument("--max-hours", type=float, help="stop before a step would cross this wall time")


def _more_commands(sub) -> None:
    """report, runs, prompt: their bodies live in their own modules."""
    from tttd.cli_runs import cmd_runs
    from tttd.report.cli import add_report_parser

    add_report_parser(sub)
    from tttd.ablate.cli import add_ablate_parser  # issue 21

    add_ablate_parser(sub)
    rn = sub.add_parser("runs", help="a table of runs: task, status, steps, best, spend, age")
    rn.add_argument("dir", nargs="?", default="runs", help="directory holding runs (default runs/)")
    rn.add_argument("--json", action="store_true", help="print one JSON list")
    rn.set_defaults(func=cmd_runs)
    pr = sub.add_parser("prompt", help="render a task's root prompt, parse an example answer, verify the root")
    pr.add_argument("task", help="registered task name or path/to/task.py[:name]")
    pr.add_argument("--preset", help="settings preset (affects evaluation limits)")
    pr.add_argument("--task-option", action="append", metavar="KEY=VALUE", help="option for the task")
    pr.add_argument("--seed", type=int, help="random seed of the roots (default 0)")
    pr.add_argument("--json", action="store_true", help="print one JSON object")
    pr.set_defaults(func=cmd_prompt)


def cmd_prompt(args: argparse.Namespace) -> int:
    from tttd.dryrun import dry_run_main
    from tttd.loop import build_task
    from tttd.task import get_task

    options = _kv(args.task_option, "--task-option")
    task = get_task(args.task, **options)
    flags = dict(task=args.task, preset=args.preset, seed=args.seed, task_options=options or None)
    cfg = resolve_config(task.presets, flag_values=flags)
    return dry_run_main(build_task(cfg), cfg, args.json, with_estimate=False)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from tttd.loop import PolicyLoadError
    from tttd.sandbox.report import IsolationError
    from tttd.task import TaskOptionError, UnknownTaskError

    from tttd.cli_extra import quiet_broken_pipe

    try:
        return quiet_broken_pipe(lambda: args.func(args))
    except (ConfigError, UnknownTaskError, TaskOptionError, NotARunError, FileExistsError,
            PolicyLoadError, IsolationError) as exc:
        print(f"tttd: error: {safe(exc, multiline=False)}", file=sys.stderr)
        return 2
    except (FileNotFoundError, OSError, ImportError) as exc:
        print(f"tttd: error: {safe(exc, multiline=False)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
