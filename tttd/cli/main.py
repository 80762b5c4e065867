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

    def __init__(self, total: int, label: str, quiet: bool = False, then=None):
        from rich.console import Console

        from tttd.progress import Eta

        self.eta = Eta(total, then)  # time left, measured from this run's own steps
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
        eta = self.eta.add(m)
        info = f"{eta}  {info}" if eta else info
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
             accept_task_change: bool = False, after_restore=None, then=None) -> dict[str, Any]:
    from tttd.loop import Discovery
    from tttd.sandbox.report import check_isolation, task_runs_code

    # before anything is written: refuse (exit 2) or warn once (issue 19: no weak mode by accident)
    check_isolation(cfg.require_isolation, allow_weak=cfg.allow_weak_isolation, runs_code=task_runs_code(cfg.task))

    with Progress(cfg.steps, label, quiet, then=then) as progress:
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
    from tttd.wording import shown_step, step_text

    result = {**summary, **(extra or {})}
    result["best_step"] = shown_step(result.get("best_step"))  # one numbering: steps from 1, roots 0
    if as_json:
        print(json.dumps(result, sort_keys=True))
        return
    print(f"best value {result['best_value']}  (reward {result['best_reward']}, "
          f"{step_text(summary.get('best_step'))})")
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
        visit_counting=args.visit_counting, forced_answer=args.forced_answer,  # issue 20
        allow_weak_isolation=True if args.allow_weak_isolation else None,
    )
    if args.task_option:
        flags["task_options"] = _kv(args.task_option, "--task-option")
    if args.backend_option:
        flags["backend_options"] = _kv(args.backend_option, "--backend-option")
    if args.chat_template_option:
        flags["chat_template_kwargs"] = _kv(args.chat_template_option, "--chat-template-option")
    from tttd.cli_extra import default_preset, describe_preset

    preset = default_preset(flags["model"] or file_values.get("model"), flags["backend"] or file_values.get("backend"))
    # A problem folder's own config (e.g. OpenEvolve's llm.temperature) counts as a config file's (#22).
    file_values = {**getattr(task, "run_defaults", {}), **file_values}
    cfg = resolve_config(task.presets, preset=preset, file_values=file_values, flag_values=flags)
    if preset is not None and cfg.preset == preset and not args.quiet and not args.preset:
        print(describe_preset(cfg), file=sys.stderr)
    if args.dry_run:  # nothing sampled, nothing written
        from tttd.dryrun import dry_run_main
        from tttd.loop import build_task

        return dry_run_main(build_task(cfg), cfg, args.json)
    cfg.out = cfg.out or _default_out(args.task)
    check_run_config(cfg)  # every option checked before anything is written
    from tttd.dryrun import toy_model_warning

    if toy_model_warning(cfg, task.name):  # said up front, also with --quiet
        print(f"warning: {toy_model_warning(cfg, task.name)}", file=sys.stderr)
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

    summary = _execute(cfg, args.run, cfg.task, args.quiet, resume=True,
                       accept_task_change=args.accept_task_change, after_restore=persist_steps)
    _print_summary(summary, args.json)
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from tttd.cli_runs import show_main

    return show_main(args.run, args.json)


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

    if not args.file.lower().endswith(".json"):  # a program runs in the sandbox: refuse or warn
        check_isolation(False, allow_weak=args.allow_weak_isolation)

    return verify_main(args.task, args.file, args.json,
                       task_options=_kv(getattr(args, "task_option", None), "--task-option"))


def cmd_new_task(args: argparse.Namespace) -> int:
    from tttd.new_task import new_task_main

    return new_task_main(args.name, args.dir)


# ------------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    from tttd.cli_extra import OneLineParser

    p = OneLineParser(prog="tttd", description=DESCRIPTION,
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
    r.add_argument("--visit-counting", choices=["group", "rollout"],
                   help="PUCT visits per group (default) or per rollout (the authors' code; paper preset)")
    r.add_argument("--forced-answer", action=argparse.BooleanOptionalAction, default=None,
                   help="reasoning models: a sample out of budget while thinking is made to answer (paper preset: on)")
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
    _weak_flag(r)
    common(r)
    r.set_defaults(func=cmd_run)

    rs = sub.add_parser("resume", help="continue a run after an interruption")
    rs.add_argument("run", help="run directory")
    rs.add_argument("--steps", type=int, help="raise the total number of steps")
    rs.add_argument("--accept-task-change", action="store_true",
                    help="resume although the task's source or options changed since the start")
    _weak_flag(rs)
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
    v.add_argument("task", help="registered task name (tttd tasks) or path/to/task.py[:name]")
    v.add_argument("file", help="construction (.json) or program (.py, or .cpp for the AHC tasks)")
    v.add_argument("--task-option", action="append", metavar="KEY=VALUE", help="option for the task (e.g. cases=0-9)")
    v.add_argument("--json", action="store_true", help='print {"valid", "value", "reward", "message"}')
    _weak_flag(v)
    v.set_defaults(func=cmd_verify)

    nt = sub.add_parser("new-task", help="write a commented, runnable task file and a check of its contract")
    nt.add_argument("name", help="task name (the files are NAME.py and check_NAME.py)")
    nt.add_argument("--dir", default=".", help="where to write them (default: here)")
    nt.set_defaults(func=cmd_new_task)
    _more_commands(sub)
    return p


def _weak_flag(sp) -> None:
    sp.add_argument("--allow-weak-isolation", action="store_true",
                    help="run candidate code even without full isolation (no bubblewrap): see docs/sandbox.md")


def _budget_flags(sp) -> None:
    sp.add_argument("--max-usd", type=float, help="stop before a step would cross this spend (needs a price)")
    sp.add_argument("--max-samples", type=int, help="stop before a step would cross this many samples")
    sp.add_argument("--max-hours", type=float, help="stop before a step would cross this wall time")


def _more_commands(sub) -> None:
    """report, runs, prompt: their bodies live in their own modules."""
    from tttd.cli_runs import cmd_runs
    from tttd.report.cli import add_report_parser

    add_report_parser(sub)
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
    cfg = resolve_config(task.presets, file_values=getattr(task, "run_defaults", None), flag_values=flags)
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

    from tttd.task_errors import ScorerErrorStop, TaskFileError

    try:
        return quiet_broken_pipe(lambda: args.func(args))
    except (ConfigError, UnknownTaskError, TaskOptionError, NotARunError, FileExistsError,
            PolicyLoadError, IsolationError, TaskFileError, ScorerErrorStop) as exc:
        print(f"tttd: error: {safe(exc, multiline=False)}", file=sys.stderr)
        return 2
    except (FileNotFoundError, OSError, ImportError) as exc:
        print(f"tttd: error: {safe(exc, multiline=False)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
