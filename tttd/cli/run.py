"""``tttd run TASK``: resolve the settings (preset, config file, flags), check them, then run the loop
(or, with ``--dry-run``, describe the run and sample nothing: :mod:`tttd.cli.dryrun`).

A tiny local model with no ``--preset`` takes the ``demo`` preset (sized for a CPU) and says so,
instead of the paper's 8 x 64 samples of 26,000 tokens (which ran for 10+ minutes without output
on the tiny model)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tttd.cli import common
from tttd.cli.common import (budget_flags, default_out, is_tiny_model, json_quiet_flags, parse_kv,
                             print_summary, weak_flag)
from tttd.config import load_config_file, resolve_config


def default_preset(model: str | None, backend: str | None) -> str | None:
    """The preset a run takes when none is given: ``demo`` for a tiny local model or a named real
    model sized for a CPU (``smollm2``, :mod:`tttd.policy.models`), else none (the defaults, which
    are the paper's settings)."""
    from tttd.policy.models import NAMED

    if (backend or "local") == "local" and (is_tiny_model(model) or model in NAMED):
        return "demo"
    return None


PRESET_NOTE = ("no --preset given: using 'demo' (sized for a CPU: {steps} of "
               "{groups} x {group_size} samples, {max_tokens} tokens); --preset paper for the paper's settings")


def describe_preset(cfg: Any) -> str:
    from tttd.wording import plural

    return PRESET_NOTE.format(steps=plural(cfg.steps, "step"), groups=cfg.groups, group_size=cfg.group_size,
                              max_tokens=cfg.max_tokens)


def add_parser(sub: Any) -> None:
    r = sub.add_parser("run", help="run test-time training on a task",
                       description="Run TTT-Discover on TASK: a registered name (tttd tasks) or a path "
                                   "to your own Python file that registers a task.")
    r.add_argument("task", help="registered task name or path/to/task.py[:name]")
    r.add_argument("--config", help="TOML/YAML/JSON file of settings (flags override it)")
    r.add_argument("--preset", help="settings preset: paper, demo, or one the task defines")
    r.add_argument("--backend", choices=["local", "tinker", "api"], help="where the policy runs (default local)")
    r.add_argument("--model", help="model: HF folder or name, 'tiny'/'small' (built locally), 'smollm2' (tttd models install smollm2), or the service's model")
    r.add_argument("--steps", type=int, help="training steps (paper: 50)")
    r.add_argument("--groups", type=int, help="start states per step (paper: 8)")
    r.add_argument("--group-size", type=int, help="samples per start state (paper: 64)")
    r.add_argument("--learning-rate", "--lr", dest="lr", type=float, help="learning rate (paper: 4e-5)")
    r.add_argument("--temperature", type=float, help="sampling temperature (paper: 1.0)")
    r.add_argument("--max-tokens", type=int, help="token budget per sample")
    r.add_argument("--kl-coef", type=float, help="KL-to-base penalty lambda (paper: 0.1)")
    r.add_argument("--no-train", action="store_true", help="ablation: frozen policy (best-of-N with reuse)")
    r.add_argument("--reuse", choices=["puct", "greedy", "none", "pareto"],
                   help="how start states are picked (pareto: the front of several objectives first)")
    r.add_argument("--rule", help="several objectives: primary (default), metric:NAME, "
                                  "weighted:A=1,B=0.5@LO..HI, constrained:A,B<=X (docs/own-problem.md)")
    r.add_argument("--objective", choices=["entropic", "entropic-fixed", "mean"], help="ablation: advantages")
    r.add_argument("--visit-counting", choices=["group", "rollout"],
                   help="PUCT visits per group (default) or per rollout (the authors' code; paper preset)")
    r.add_argument("--forced-answer", action=argparse.BooleanOptionalAction, default=None,
                   help="reasoning models: a sample out of budget while thinking is made to answer (paper preset: on)")
    r.add_argument("--executor", choices=["local", "ray"], help="where evaluations run (default local)")
    r.add_argument("--workers", type=int, help="evaluation workers (default: one per core)")
    r.add_argument("--async-steps", type=int, metavar="K",
                   help="sample K steps ahead of training, so evaluation overlaps sampling and training "
                        "(default 0: synchronous, the paper; docs/runs.md)")
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
    budget_flags(r)
    r.add_argument("--require-isolation", action="store_true",
                   help="refuse to run (exit 2) unless the sandbox has full isolation (bubblewrap)")
    weak_flag(r)
    json_quiet_flags(r)
    r.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from tttd.cli.preflight import check_run_config
    from tttd.registry import absolute_task_spec, get_task

    args.task = absolute_task_spec(args.task)  # stored absolute: resumable from anywhere
    task = get_task(args.task, **parse_kv(args.task_option, "--task-option"))
    file_values = load_config_file(args.config) if args.config else {}
    flags = dict(
        task=args.task, backend=args.backend, model=args.model, preset=args.preset, steps=args.steps,
        groups=args.groups, group_size=args.group_size, out=args.out, seed=args.seed,
        reuse=args.reuse, rule=args.rule, objective=args.objective, learning_rate=args.lr, max_tokens=args.max_tokens,
        kl_coef=args.kl_coef, executor=args.executor, workers=args.workers, temperature=args.temperature,
        train=False if args.no_train else None,
        max_usd=args.max_usd, max_samples=args.max_samples, max_hours=args.max_hours, log=args.log,
        engine=args.engine, async_steps=args.async_steps,
        require_isolation=True if args.require_isolation else None,
        visit_counting=args.visit_counting, forced_answer=args.forced_answer,  # issue 20
        allow_weak_isolation=True if args.allow_weak_isolation else None,
    )
    if args.task_option:
        flags["task_options"] = parse_kv(args.task_option, "--task-option")
    if args.backend_option:
        flags["backend_options"] = parse_kv(args.backend_option, "--backend-option")
    if args.chat_template_option:
        flags["chat_template_kwargs"] = parse_kv(args.chat_template_option, "--chat-template-option")
    preset = default_preset(flags["model"] or file_values.get("model"), flags["backend"] or file_values.get("backend"))
    # A problem folder's own config (e.g. OpenEvolve's llm.temperature) counts as a config file's (#22).
    folder_values = getattr(task, "run_defaults", {})
    tokens_from = ("--max-tokens" if args.max_tokens is not None else f"from {args.config}" if "max_tokens" in file_values
                   else "from the task folder's config" if "max_tokens" in folder_values else "from the settings")
    file_values = {**folder_values, **file_values}
    cfg = resolve_config(task.presets, preset=preset, file_values=file_values, flag_values=flags)
    task.use_rule(cfg.rule)  # issue 37: a rule that does not fit the task's metrics is one line, now
    from tttd.cli.dryrun import clamp_to_context

    clamped = clamp_to_context(cfg, tokens_from)  # the dry run's context check, applied (issue 36)
    if not args.dry_run:
        common.check_run_isolation(cfg)  # a refusal is the only line (issue 19)
    if preset is not None and cfg.preset == preset and not args.quiet and not args.preset:
        print(describe_preset(cfg), file=sys.stderr)
    if args.dry_run:  # nothing sampled, nothing written
        from tttd.cli.dryrun import dry_run_main
        from tttd.build import build_task

        dry_task = build_task(cfg)
        dry_task.use_rule(cfg.rule)
        return dry_run_main(dry_task, cfg, args.json, notes=[clamped] if clamped else None)
    if clamped:  # said also with --quiet: it changes what the run does
        print(f"note: {clamped}", file=sys.stderr)
    cfg.out = cfg.out or default_out(args.task)
    check_run_config(cfg)  # every option checked before anything is written
    common.check_out_free(cfg.out)  # before a model loads
    add_run_secrets(task, cfg)
    from tttd.cli.dryrun import toy_model_warning

    if toy_model_warning(cfg, task.name):  # said up front, also with --quiet
        print(f"warning: {toy_model_warning(cfg, task.name)}", file=sys.stderr)
    summary = common.execute(cfg, cfg.out, task.name, args.quiet)
    print_summary(summary, args.json)
    return 0


def add_run_secrets(task, cfg) -> None:
    """Issue 31: options a task wants drawn fresh for each run and kept from the candidate (the
    denoising task's held-out split): a random value unless given, recorded in the run's config
    (resume and the best program's verify command use it), never in a prompt. A task lists them
    in ``secret_options``; ``public_alternatives`` names options that choose a public value instead."""
    import secrets

    for name in getattr(type(task), "secret_options", ()):
        public = getattr(type(task), "public_alternatives", {}).get(name, ())
        if cfg.task_options.get(name) is None and not any(cfg.task_options.get(k) is not None for k in public):
            cfg.task_options = {**cfg.task_options, name: secrets.token_hex(16)}
