"""``tttd demo``: the trained run of ``tttd run demo``, then the same model frozen, then a verdict.

The trained phase is exactly ``tttd run demo`` (same preset, model and seed: :func:`demo_config`);
the frozen phase repeats it with training off, on the same sample budget. Before it starts the
demo prints how long it is expected to take (the idle figure, and a rough load-scaled one when the
machine is busy); every progress line carries an ETA measured from the run's own steps, including
the frozen phase still to come; between the phases it announces the frozen one; at
the end it prints a verdict: best value and share of valid samples, trained vs frozen, rounded,
with the time each part took.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from tttd.config import RunConfig, resolve_config
from tttd.text import safe

#: Measured on 2 idle CPU cores with empty caches (benchmarks/first_command.sh, 2026-12-07, 0.4,
#: load average 0.7 at the start): the demo 104 s from start to its report (model build 38 s,
#: trained phase 40 s, frozen phase 20 s for the 48-step demo); 0.3 measured 33, 25 and 12 s, 0.2
#: 39, 41 and 20 s. The step figure below makes the whole estimate come to the measured 104 s.
#: A busy machine is much slower: the same demo took 20 min 47 s on a 2-core machine shared with
#: other jobs; under a load average of 15-20 on 2 cores the model build alone took 1951 s.
IDLE_BUILD_S = 38.0
IDLE_STEP_S = 0.625
IDLE_PHASE_S = 3.0  # loading the policy, starting the evaluation workers
#: A frozen step costs about half a trained one (no train step): 20 s / 40 s measured above.
FROZEN_STEP_RATIO = 0.5

#: ``tttd demo --model smollm2``: the real-model demo (issue 33). Fewer steps (a step of the real
#: model costs ~100x one of the tiny model) and a smaller learning rate for a pretrained model's
#: LoRA than the tiny model's 3e-3 (chosen, not tuned). Its estimate comes from its own measured
#: step times (trained and frozen) at the load they were measured at, scaled to today's load.
REAL_DEMO = {"smollm2": dict(steps=8, learning_rate=1e-3)}
#: measured: (trained step s, frozen step s, 1-minute load average then), 2 cores, OMP_NUM_THREADS=1:
#: `tttd demo --model smollm2 --steps 3` on 2026-12-07, trained steps 453/494/299 s (sampling
#: 163/201/133 s of them), load 15-19 on the shared machine; a frozen step is the sampling part.
REAL_STEP_S = {"smollm2": (415.0, 165.0, 16.5)}
MODEL_WORDS = {"tiny": "a tiny local model", "smollm2": "a real pretrained model, SmolLM2-135M-Instruct,"}


def busy_factor() -> tuple[float, float, int]:
    """(slow-down guess, load average, cores): how much slower than idle this machine runs now,
    guessed from the 1-minute load average (the demo's work shares the cores with that load). A
    rough guess, said as one; the progress line's ETA is measured from the run's own steps."""
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):
        return 1.0, 0.0, cores
    return max(1.0, (load + 1.0) / cores), load, cores


def demo_config(steps: int | None = None, seed: int | None = 0, train: bool = True,
                engine: str | None = None, model: str = "tiny") -> RunConfig:
    """The configuration ``tttd run demo`` resolves to with the same flags (the tiny model; with
    ``model="smollm2"`` the real-model demo's steps and learning rate, :data:`REAL_DEMO`)."""
    from tttd.registry import get_task

    real = REAL_DEMO.get(model, {})
    flags = dict(task="demo", backend="local", steps=steps if steps is not None else real.get("steps"), seed=seed,
                 train=None if train else False, engine=engine, model=None if model == "tiny" else model,
                 learning_rate=real.get("learning_rate"))
    if engine == "vllm":  # vLLM serves LoRA on the attention/MLP layers only (see tttd.policy.engines)
        flags["backend_options"] = {"train_unembed": False}
    return resolve_config(get_task("demo").presets, preset="demo", flag_values=flags)


def _model_cached() -> bool:
    from tttd.policy.tiny import tiny_model_path

    return (tiny_model_path("tiny") / "tttd_build.json").is_file()


def expected_seconds(steps: int, phases: int, cached: bool) -> float:
    return (0.0 if cached else IDLE_BUILD_S) + (IDLE_PHASE_S + IDLE_STEP_S * steps) * phases


def idle_estimate(cached: bool = False) -> float:
    """The default demo's expected seconds on an idle 2-core machine (the README's figure)."""
    cfg = demo_config()
    return expected_seconds(cfg.steps, 2, cached)


def estimate_basis() -> str:
    """``about 70 s on an idle 2-core machine, more under load``: the figure ``tttd --help``, the
    demo's help and its first lines give (issue 36: they said ~2 min while the README said 70 s)."""
    return f"about {idle_estimate():.0f} s on an idle 2-core machine, more under load"


def real_estimate(model: str, steps: int, modes: list, factor: float, load: float, cores: int) -> str:
    """The real-model demo's expected time: its measured step times (:data:`REAL_STEP_S`) scaled
    from the load they were measured at to today's (a rough guess, said as one)."""
    trained_s, frozen_s, then = REAL_STEP_S[model]
    then_factor = max(1.0, (then + 1.0) / 2)
    scale = factor / then_factor
    total = sum((trained_s if train else frozen_s) * steps + 20.0 for _, train in modes) * scale
    return (f"expected: roughly {minutes(total)} now (load average {load:.1f} on {cores} cores), from this "
            f"demo's own step times measured at load {then:g} on 2 cores ({trained_s:g} s a trained step, "
            f"{frozen_s:g} s a frozen one); an idle machine is several times faster, and on a machine "
            "busier than its cores OMP_NUM_THREADS=1 helps; the ETA on the progress line is measured "
            "from this machine's own steps")


def minutes(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    return f"{seconds // 60} min {seconds % 60:02d} s"


def verdict(runs: list[tuple[str, dict[str, Any]]], times: dict[str, float], best_digits: str | None,
            model: str = "tiny") -> str:
    """The human-readable end of the demo (values rounded to 4 decimals, rates to whole percent)."""
    main = runs[0][1]
    from tttd.wording import plural

    lines = [f"verdict ({plural(main['steps'], 'step')}, {plural(main['samples'], 'sample')} per policy; lower overlap is better, "
             f"a constant function scores 0.5):",
             f"  {'policy':<9}{'best overlap':>14}{'valid samples':>16}"]
    for name, s in runs:
        rate = s["valid"] / max(1, s["samples"])
        best = "-" if s["best_value"] is None else f"{s['best_value']:.4f}"
        lines.append(f"  {name:<9}{best:>14}{rate:>16.0%}")
    if len(runs) == 2 and None not in (runs[0][1]["best_value"], runs[1][1]["best_value"]):
        a, b = runs[0][1]["best_value"], runs[1][1]["best_value"]
        word = "lower (better) than" if a < b else ("the same as" if a == b else "higher (worse) than")
        size = "1M-parameter" if model == "tiny" else "135M-parameter"
        lines.append(f"  the trained policy's best is {word} the frozen one's; a toy on a {size} "
                     "model, so expect seed-to-seed noise")
    if best_digits:
        lines.append(f"  best solution: {safe(best_digits)}")
    parts = ", ".join(f"{k} {minutes(v)}" + (" (cached)" if k == "model" and v < 5 else "")
                      for k, v in times.items())
    lines.append(f"total time {minutes(sum(times.values()))} ({parts})")
    return "\n".join(lines)


def write_report(out: str) -> tuple[str | None, str]:
    """The demo's HTML report (trained run and frozen baseline), as ``tttd report OUT`` writes it
    (issue 36: the demo neither wrote nor named it). (path, "") or (None, why not)."""
    try:
        import jinja2  # noqa: F401
        import matplotlib  # noqa: F401
    except ImportError as exc:
        return None, f"it needs the plot extra: pip install 'tttd[plot]' ({exc})"
    from tttd.report.build import build_report, default_out
    from tttd.report.cli import with_baselines

    if not (Path(out) / "config.json").is_file():
        return None, "the run left no run directory"
    folder = default_out([out])
    return str(build_report(with_baselines([out]), folder)), ""


def add_parser(sub: Any) -> None:
    from tttd.cli.common import json_quiet_flags

    d = sub.add_parser("demo", help=f"run the CPU demo: a tiny local model learns a toy problem ({estimate_basis()})")
    d.add_argument("--no-train", action="store_true", help="frozen model only (the no-training ablation)")
    d.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    d.add_argument("--out", help="run directory (default runs/demo-<time>)")
    d.add_argument("--steps", type=int, default=None, help="steps (default: the demo preset's)")
    d.add_argument("--engine", choices=["auto", "hf", "vllm"], help="sampling engine (default auto)")
    d.add_argument("--model", choices=["tiny", *REAL_DEMO], default="tiny",
                   help="tiny (default, ~2 min) or smollm2: the real-model demo (tttd models install smollm2 "
                        "first; tens of minutes on 2 cores)")
    json_quiet_flags(d)
    d.set_defaults(func=run_demo)


def run_demo(args: Any) -> int:
    from rich.console import Console

    from tttd.cli import common
    from tttd.cli.common import default_out, print_summary
    from tttd.policy.tiny import build_tiny_model

    err = Console(stderr=True, highlight=False)
    say = (lambda text: None) if args.quiet else err.print
    modes = [("frozen", False)] if args.no_train else [("trained", True), ("frozen", False)]
    model = getattr(args, "model", "tiny") or "tiny"
    if model != "tiny":  # not installed: one line now, not after the banner
        from tttd.config import ConfigError
        from tttd.policy.models import check

        try:
            check(model)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    cfg = demo_config(args.steps, args.seed, engine=getattr(args, "engine", None), model=model)
    if args.out:
        common.check_out_free(args.out)  # before the model is built or loaded
    cached = model != "tiny" or _model_cached()
    command = f"tttd run demo --seed {cfg.seed}" + ("" if model == "tiny" else
                                                      f" --model {model} --lr {cfg.learning_rate:g}")
    command += f" --steps {cfg.steps}" if args.steps or model != "tiny" else ""
    say(f"tttd demo: test-time training of {MODEL_WORDS[model]} on a toy Erdős-style problem. "
        + (f"The frozen run is `{command} --no-train`." if args.no_train else
           f"The trained run is `{command}`; then the same model, frozen, on the same budget."))
    factor, load, cores = busy_factor()
    idle = expected_seconds(cfg.steps, len(modes), cached)
    if model != "tiny":
        say(real_estimate(model, cfg.steps, modes, factor, load, cores))
    else:
        say(f"expected: about {idle:.0f} s on an idle 2-core machine, more under load (measured with "
            "benchmarks/first_command.sh"
            + ("" if cached else f"; it includes about {IDLE_BUILD_S:.0f} s to build the tiny model once") + ")"
            + (f"; this machine is busy now (load average {load:.1f} on {cores} cores): roughly "
               f"{minutes(idle * factor)}" if factor >= 1.5 else "")
            + "; from the first step on, the ETA on the progress line is measured from this machine's own steps")
    times: dict[str, float] = {}
    t = time.perf_counter()
    if model == "tiny":
        build_tiny_model("tiny", progress=not args.quiet)
    times["model"] = time.perf_counter() - t
    out = args.out or default_out("demo")
    runs = []
    for i, (name, train) in enumerate(modes):
        path = out if i == 0 else str(Path(out) / "baseline-frozen")
        c = RunConfig(**{**cfg.to_dict(), "train": train, "out": path})
        if name == "frozen" and i > 0:
            say(f"now the frozen baseline: the same model without training, {runs[0][1]['samples']} "
                "samples, as many as the trained run")
        t = time.perf_counter()
        ratio = FROZEN_STEP_RATIO if model == "tiny" else REAL_STEP_S[model][1] / REAL_STEP_S[model][0]
        then = ("frozen baseline", cfg.steps, ratio) if i + 1 < len(modes) else None
        runs.append((name, common.execute(c, path, f"demo ({name})", args.quiet, then=then)))
        times[name] = time.perf_counter() - t
    main_name, main = runs[0]
    extra: dict[str, Any] = {"mode": main_name, "valid_fraction": round(main["valid"] / max(1, main["samples"]), 4)}
    if len(runs) > 1:
        f = runs[1][1]
        extra.update(frozen_best_value=f["best_value"], frozen_run_dir=f["run_dir"],
                     frozen_valid_fraction=round(f["valid"] / max(1, f["samples"]), 4))
    extra["seconds_total"] = round(sum(times.values()), 2)
    extra["seconds_parts"] = {k: round(v, 2) for k, v in times.items()}
    report, why = write_report(out)
    extra["report"] = report
    if not args.json:
        best_file = Path(out) / "best" / "best.json"
        digits = json.loads(best_file.read_text())["artifact"].get("digits") if best_file.exists() else None
        print(verdict(runs, times, digits, model))
        print(f"run: {out}" + (f"  (frozen: {runs[1][1]['run_dir']})" if len(runs) > 1 else ""))
        print(f"report: {report}  (open it in a browser)" if report else f"report: not written ({why})")
        sys.stdout.flush()
        return 0
    print_summary(main, True, extra)
    return 0
