"""``tttd run --dry-run`` and ``tttd prompt TASK``: see a run before paying for it.

Renders the first root's prompt, parses the task's example answer (running its program in the
sandbox once, like a real evaluation) and re-verifies the root; ``--dry-run`` adds the run's size
(samples, tokens, evaluations, CPU-seconds, cost where a price is known) and warnings when the
settings do not fit the model or the machine. Nothing is sampled, no model is loaded and no run
directory is written.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from tttd.config import RunConfig
from tttd.ledger import check_budget, price_for
from tttd.task import Task
from tttd.text import safe
from tttd.types import State
from tttd.wording import plural

CHARS_PER_TOKEN = 4  # a rough rule for English and code; the real tokenizer is not loaded
TOY_MODELS = {"tiny": 4096, "small": 4096}  # tttd's locally built models and their context


def _describe_inject(inject: dict[str, Any]) -> dict[str, str]:
    out = {}
    for name, value in inject.items():
        arr = np.asarray(value) if isinstance(value, (list, np.ndarray)) else None
        out[name] = f"array of shape {arr.shape}" if arr is not None else type(value).__name__
    return out


def verify_root(task: Task, root: State) -> dict[str, Any]:
    """Re-verify the root's construction with the trusted verifier (as ``tttd verify`` would)."""
    from tttd.cli.verify import verify_construction

    if root.value is None:
        return {"empty": True, "message": "an empty root (no solution yet): the model starts from scratch"}
    artifact = {k: v for k, v in (root.artifact or {}).items() if k != "code"}
    if not artifact and (root.artifact or {}).get("code"):
        return {"empty": False, "program_only": True, "stored_value": root.value,
                "message": "the root is a program with no construction: running it is the check "
                           "(see the example answer)"}
    tries = [artifact] + ([artifact["construction"]] if "construction" in artifact else [])
    ev = None
    for obj in tries:
        ev = verify_construction(task, obj)
        if ev.valid:
            break
    assert ev is not None
    return {"empty": False, "stored_value": root.value, "valid": ev.valid, "value": ev.value,
            "matches": bool(ev.valid and ev.value == root.value), "message": safe(ev.message)}


def try_example(task: Task, root: State) -> dict[str, Any]:
    """Parse the task's example answer and evaluate it (sandbox + verifier), timed."""
    text = task.example_answer(root)
    if text is None:
        return {"answer": None, "note": "the task gives no example answer (Task.example_answer)"}
    cand = task.parse(text, root)
    out: dict[str, Any] = {"answer": text, "parse_error": cand.error}
    if cand.error is not None:
        return out
    result = None
    t0 = time.perf_counter()
    if cand.program is not None:
        from tttd.executor import LocalExecutor

        p = cand.program
        entry = f"{task.main}:{task.entry}" if p.entry == "_tttd_run" and getattr(task, "main", None) else p.entry  # issue 37: the launcher runs main:entry
        out["program"] = {"entry": entry, "args": p.args, "inject": _describe_inject(p.inject),
                          "limits": {"wall_s": p.limits.wall_s, "memory_mb": p.limits.memory_mb,
                                     "threads": p.limits.threads}}
        with LocalExecutor() as pool:  # task.launch may run several programs (compile, cases)
            result = task.launch(cand, pool.submit, root).result()
    else:
        out["data"] = safe(repr(cand.data))[:300]
    ev = task.evaluate(cand, result, root)
    out["evaluation"] = {"valid": ev.valid, "value": ev.value, "reward": ev.reward,
                         "status": ev.status, "message": safe(ev.message),
                         "seconds": round(time.perf_counter() - t0, 3)}
    return out


def has_gpu(dev_root: str = "/dev", sys_root: str = "/sys") -> bool:
    """An NVIDIA GPU (``nvidia-smi`` or ``/dev/nvidia0``) or an AMD ROCm one (``/dev/kfd`` and a GPU
    node in the KFD topology)."""
    from tttd.sandbox.gpu import amd_gpus

    if shutil.which("nvidia-smi") or Path(dev_root, "nvidia0").exists():
        return True
    return Path(dev_root, "kfd").exists() and bool(amd_gpus(sys_root))


def model_context(model: str) -> int | None:
    if model in TOY_MODELS:
        return TOY_MODELS[model]
    cfg = Path(model) / "config.json"
    if cfg.is_file():
        try:
            return int(json.loads(cfg.read_text()).get("max_position_embeddings"))
        except (ValueError, TypeError, json.JSONDecodeError):
            return None
    return None


def clamp_to_context(cfg: RunConfig, source: str) -> str | None:
    """``tttd run`` and ``--dry-run`` (issue 36): a token budget the local model's context cannot
    hold (e.g. an OpenEvolve folder's ``llm.max_tokens: 16000`` on the 4,096-token tiny model) is
    clamped to the context; the sampler then also leaves room for each prompt (as the paper's
    dynamic max_tokens does). Returns the one line that says so (None: nothing changed). Clamped,
    not refused: the run still does what was asked within what the model can hold, and the line
    names the flag that chooses another budget."""
    ctx = model_context(cfg.model) if cfg.backend == "local" else None
    if ctx is None or cfg.max_tokens <= ctx:
        return None
    asked = cfg.max_tokens
    cfg.max_tokens = ctx
    return (f"max_tokens {asked:,} ({source}) exceeds the {cfg.model} model's {ctx:,}-token context: clamped to "
            f"{ctx:,} less each prompt's length; --max-tokens N sets another budget")


def estimate(cfg: RunConfig, prompt_chars: int, example: dict[str, Any]) -> dict[str, Any]:
    """The run's size; token counts are upper bounds (every sample at its token budget)."""
    samples = cfg.steps * cfg.groups * cfg.group_size
    prompt_tokens = samples * max(1, prompt_chars // CHARS_PER_TOKEN)
    sampled = samples * cfg.max_tokens
    trained = sampled if cfg.train and cfg.backend != "api" else 0
    limits = (example.get("program") or {}).get("limits") or {}
    wall = float(limits.get("wall_s") or cfg.eval_timeout_s)
    cpus = int(limits.get("threads") or cfg.cpus_per_eval)
    ev_s = (example.get("evaluation") or {}).get("seconds")
    price = price_for(cfg)
    usd = None
    if price is not None:
        usd = ((prompt_tokens * price.get("prompt", 0.0) + sampled * price.get("sampled", 0.0)
                + trained * price.get("trained", 0.0)) / 1e6)
    if cfg.max_samples is not None:
        steps_allowed = min(cfg.steps, cfg.max_samples // (cfg.groups * cfg.group_size))
    else:
        steps_allowed = cfg.steps
    return {
        "steps": cfg.steps, "samples": samples, "samples_per_step": cfg.groups * cfg.group_size,
        "prompt_tokens_approx": prompt_tokens, "sampled_tokens_max": sampled,
        "trained_tokens_max": trained, "evaluations_max": samples,
        "eval_cpu_seconds_max": samples * wall * cpus,
        "eval_cpu_seconds_if_like_example": None if ev_s is None else round(samples * ev_s * cpus, 1),
        "usd_max": usd, "price": price, "steps_within_max_samples": steps_allowed,
    }


def toy_model_warning(cfg: RunConfig, task_name: str) -> str | None:
    """The warning ``run`` and ``--dry-run`` give when the model is tttd's demo toy and the task
    is not the demo: the toy cannot write programs for it (issue 23)."""
    from tttd.cli.common import is_tiny_model

    if cfg.backend != "local" or not is_tiny_model(cfg.model) or task_name == "demo":
        return None
    return (f"the {cfg.model!r} model is a ~1M-parameter toy built for the demo: it cannot write {task_name} "
            "programs, so expect every sample to fail (parse_error) and no training step: this run only "
            "smoke-tests the task. For real results use a real model: a local OpenAI-compatible server "
            "(--backend api --no-train --backend-option base_url=URL --model NAME), a model folder "
            "(--backend local --model DIR, a GPU helps), or --backend tinker; see docs/own-problem.md")


def warnings_for(cfg: RunConfig, task: Task, est: dict[str, Any], prompt_tokens: int) -> list[str]:
    out = []
    gpu = has_gpu()
    ctx = model_context(cfg.model) if cfg.backend == "local" else None
    if ctx is not None and prompt_tokens + cfg.max_tokens > ctx and cfg.max_tokens < ctx:  # (== ctx: clamped)
        out.append(f"max_tokens {cfg.max_tokens} + a ~{prompt_tokens}-token prompt exceed the model's "
                   f"context of {ctx} tokens: lower --max-tokens")
    toy = toy_model_warning(cfg, task.name)
    if toy:
        out.append(toy)
    if cfg.backend == "local" and not gpu:
        if cfg.model not in TOY_MODELS:
            out.append(f"no GPU here: the local backend would run {cfg.model} on the CPU, far too slow "
                       f"for a real model; use a GPU machine or --backend tinker/api")
        if est["sampled_tokens_max"] > 2_000_000:
            out.append(f"up to {est['sampled_tokens_max']:,} sampled tokens on a CPU "
                       f"({cfg.steps} steps x {cfg.groups} groups x {cfg.group_size} samples x "
                       f"{cfg.max_tokens} tokens): this preset is sized for GPUs or a service")
    if cfg.backend == "api" and cfg.train:
        out.append("the api backend is frozen: nothing is trained (add --no-train to say so)")
    cores = os.cpu_count() or 1
    workers = cfg.workers or cores
    if est["eval_cpu_seconds_max"] / max(1, min(workers, cores)) > 24 * 3600:
        out.append(f"if every evaluation used its time limit, evaluation alone would take "
                   f"{est['eval_cpu_seconds_max'] / min(workers, cores) / 3600:.0f} h on {min(workers, cores)} "
                   f"cores; consider --executor ray")
    if est["price"] is None and cfg.backend != "local":
        out.append(f"no price known for {cfg.backend}:{cfg.model}: add one under [prices] in a config "
                   f"file to see the cost (and to use --max-usd)")
    if est["steps_within_max_samples"] < cfg.steps:
        out.append(f"max_samples {cfg.max_samples} stops the run after {est['steps_within_max_samples']} "
                   f"of {plural(cfg.steps, 'step')}")
    return out


def noise_note(task: Task, root: State, example: dict[str, Any]) -> str | None:
    """When the example answer is the root's own program and it scored differently from the root
    (the same program, scored twice), the evaluator is noisy: say so, and for a task that can
    re-score (a problem folder's ``rescore`` option) point to it (issue 36)."""
    ev = example.get("evaluation") or {}
    code = (root.artifact or {}).get("code")
    if not (ev.get("valid") and root.value is not None and isinstance(code, str) and code.strip()
            and code.strip() in (example.get("answer") or "")):
        return None
    a, b = float(root.value), float(ev["value"])
    if abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b)):
        return None
    text = f"the same program scored {a:.6g} then {b:.6g}: the evaluator is noisy"
    if hasattr(task, "rescorer"):
        text += ("; --task-option rescore=K scores the top candidates K times and keeps the mean "
                 "(docs/coming-from-openevolve.md)")
    else:
        text += "; a value found once may not repeat: score() should be deterministic"
    return text


def inspect_run(task: Task, cfg: RunConfig, with_estimate: bool) -> dict[str, Any]:
    from tttd.task_errors import checked_roots

    roots = checked_roots(task, cfg.groups, np.random.default_rng(cfg.seed))  # a mistake: one line
    root = roots[0]
    messages = task.prompt(root, None)
    chars = sum(len(m.get("content", "")) for m in messages)
    info: dict[str, Any] = {
        "task": task.name, "roots": len(roots), "prompt": messages,
        "prompt_chars": chars, "prompt_tokens_approx": chars // CHARS_PER_TOKEN,
        "example": try_example(task, root), "root_verification": verify_root(task, root),
    }
    noise = noise_note(task, root, info["example"])
    if noise:
        info["noise"] = noise
    notes = getattr(task, "dry_run_notes", None)  # e.g. how an OpenEvolve folder's config was read
    if callable(notes):
        info["task_notes"] = notes()
    if with_estimate:
        check_budget(cfg)
        est = estimate(cfg, chars, info["example"])
        info["estimate"] = est
        info["warnings"] = warnings_for(cfg, task, est, chars // CHARS_PER_TOKEN)
        info["config"] = cfg.to_dict()
        info["backend"] = backend_lines(cfg, chars // CHARS_PER_TOKEN)
        info["settings"] = paper_settings(cfg, task)
    return info


def _local_chat_template(model: str) -> str | None | bool:
    """The chat template of a local model without loading it (False: not readable here)."""
    if model in TOY_MODELS:
        from tttd.policy.tiny import CHAT_TEMPLATE

        return CHAT_TEMPLATE
    folder = Path(model).expanduser()
    jinja = folder / "chat_template.jinja"
    if jinja.is_file():
        return jinja.read_text(errors="replace")
    cfg = folder / "tokenizer_config.json"
    if cfg.is_file():
        try:
            value = json.loads(cfg.read_text()).get("chat_template")
        except (ValueError, OSError):
            return False
        return value if isinstance(value, str) else None
    return False


def paper_settings(cfg: RunConfig, task: Task) -> dict[str, str]:
    """The settings where the authors' code and tttd's defaults differ (issue 20): forced final
    answer, PUCT visit counting, the reward fed to learning, CPUs per evaluation."""
    from tttd.policy.forced_answer import describe

    lines: dict[str, str] = {}
    if not cfg.forced_answer:
        lines["forced final answer"] = "off"
    elif cfg.backend == "api":
        lines["forced final answer"] = "on, but the api backend samples in one request: no effect"
    else:
        template = _local_chat_template(cfg.model) if cfg.backend == "local" else False
        lines["forced final answer"] = (describe(template) if template is not False else
                                        "on (acts when the model's chat template has a thinking/answer split: "
                                        "gpt-oss channels or <think> blocks; read when the model loads)")
    if cfg.reuse != "puct":
        lines["PUCT visits"] = f"not used (reuse={cfg.reuse})"
    elif cfg.visit_counting == "rollout":
        lines["PUCT visits"] = (f"one per rollout, as the authors' code (a group of {cfg.group_size} adds "
                                f"{cfg.group_size} to n of its start state and its ancestors, and to T)")
    else:
        lines["PUCT visits"] = "one per group (tttd's default; --visit-counting rollout counts as the authors' code)"
    describe_reward = getattr(task, "reward_description", None)
    if describe_reward is not None:
        lines["reward"] = describe_reward()
    else:
        obj = task.objective
        how = {"identity": "the value", "negate": "-value", "reciprocal": "1 / value"}.get(obj.transform, obj.transform)
        lines["reward"] = f"{how} (value: {obj.direction}); a failure gets {obj.failure_reward:g}"
    unit = getattr(task, "evaluation_unit", "evaluation")
    lines["CPUs"] = f"{cfg.cpus_per_eval} per {unit} (cpus_per_eval)"
    return lines


def backend_lines(cfg: RunConfig, prompt_tokens: int) -> dict[str, str]:
    """What the backend would be sent (token budget after the context clamp, chat-template
    options, stops), where the backend can say it without being built; else empty."""
    if cfg.backend != "tinker":
        kw = cfg.chat_template_kwargs or {}
        return {"chat template options": ", ".join(f"{k}={v!r}" for k, v in sorted(kw.items())) or "none"}
    try:
        from tttd.policy.tinker import TinkerPolicy
    except ImportError as exc:
        return {"note": f"the tinker backend is not installed: {exc}"}
    options = {"chat_template_kwargs": cfg.chat_template_kwargs, "lora_rank": cfg.lora_rank,
               **cfg.backend_options}
    return TinkerPolicy.dry_run_info(cfg.max_tokens, options, prompt_tokens=prompt_tokens)


def price_text(price: dict[str, float]) -> str:
    """``$1/M prompt, $2/M sampled tokens`` (issue 36: the dry run printed the raw dict)."""
    parts = [f"${float(v):g}/M {k}" for k, v in price.items() if isinstance(v, (int, float))]
    return (", ".join(parts) or "no per-token price") + " tokens"


def print_report(info: dict[str, Any]) -> None:
    print(f"== root prompt ({info['task']}, 1 of {info['roots']} roots; {info['prompt_chars']} "
          f"characters, ~{info['prompt_tokens_approx']} tokens)")
    for m in info["prompt"]:
        print(f"[{safe(m.get('role', '?'))}]")
        print(safe(m.get("content", "")))
    ex = info["example"]
    print("\n== example answer")
    if ex.get("answer") is None:
        print(ex["note"])
    else:
        print(safe(ex["answer"]))
        if ex.get("parse_error"):
            print(f"parse: error: {safe(ex['parse_error'])}")
        elif "program" in ex:
            p = ex["program"]
            print(f"parse: program calling {p['entry']}({', '.join(f'{k}={v!r}' for k, v in p['args'].items())}); "
                  f"injected: {p['inject'] or 'nothing'}; limits: {p['limits']}")
        else:
            print(f"parse: data {ex.get('data')}")
        e = ex.get("evaluation")
        if e:
            verdict = f"valid, value {e['value']}, reward {e['reward']:.6g}" if e["valid"] else f"invalid ({e['status']})"
            print(f"evaluation ({e['seconds']} s): {verdict}: {e['message']}")
    if info.get("task_notes"):
        print("\n== how the task was read")
        for line in info["task_notes"]:
            print(safe(line))
    rv = info["root_verification"]
    print("\n== verifier on the root")
    if info.get("noise"):
        print(f"warning: {info['noise']}")
    if rv["empty"] or rv.get("program_only"):
        print(rv["message"])
    else:
        state = "matches" if rv["matches"] else "DOES NOT match"
        print(f"stored value {rv['stored_value']}; re-verified: {'valid' if rv['valid'] else 'invalid'}, "
              f"value {rv['value']} ({state}): {rv['message']}")
    if "estimate" not in info:
        return
    e = info["estimate"]
    print("\n== run size (nothing sampled; token counts are upper bounds)")
    print(f"{plural(e['steps'], 'step')} x {plural(e['samples_per_step'], 'sample')} = "
          f"{plural(e['samples'], 'sample')} and evaluations")
    print(f"tokens: ~{e['prompt_tokens_approx']:,} prompt, <= {e['sampled_tokens_max']:,} sampled, "
          f"<= {e['trained_tokens_max']:,} trained")
    like = e["eval_cpu_seconds_if_like_example"]
    print(f"evaluation: <= {e['eval_cpu_seconds_max']:,.0f} CPU-seconds (every evaluation at its time limit)"
          + (f"; ~{like:,.0f} if each took as long as the example" if like is not None else ""))
    if e["usd_max"] is None:
        print("cost: unknown (no price for this backend and model)")
    else:
        print(f"cost: <= ${e['usd_max']:,.2f} at {price_text(e['price'])}")
    if info.get("backend"):
        print(f"\n== backend ({info['config']['backend']})")
        for label, text in info["backend"].items():
            print(f"{label}: {safe(text)}")
    if info.get("settings"):
        print("\n== settings where the authors' code and tttd's defaults differ (docs/paper-deviations.md)")
        for label, text in info["settings"].items():
            print(f"{label}: {safe(text)}")
    for w in info["warnings"]:
        print(f"warning: {w}")
    print("(dry run: nothing was sampled and no run directory was written)")


def dry_run_main(task: Task, cfg: RunConfig, as_json: bool, with_estimate: bool = True,
                 notes: list[str] | None = None) -> int:
    info = inspect_run(task, cfg, with_estimate)
    if with_estimate and notes:  # what `tttd run` changed before the run (the context clamp)
        info["warnings"] = list(notes) + info["warnings"]
    if as_json:
        print(json.dumps(info, sort_keys=True, default=str))
    else:
        print_report(info)
    return 0
