"""How a run is built from its configuration: the policy, the task, the executor; the versions it
records; and ``best/`` with the command that re-verifies it.

Moved out of :mod:`tttd.loop` (issue 32) so that the loop holds the step only; the bodies are as
they were there.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from tttd.config import RunConfig
from tttd.multifile import write_tree
from tttd.policy import Policy, backend_class
from tttd.policy.backends import backend_spec
from tttd.registry import get_task
from tttd.rundir import RunDir, atomic_write_json, atomic_write_text
from tttd.task import Task


def _sandbox_report() -> dict[str, Any]:
    """Which sandbox protections this machine provides (recorded in config.json)."""
    from tttd.sandbox import isolation_report

    rep = isolation_report()
    return {"full": rep["full"], "active": rep["active"], "missing": rep["missing"], "notes": rep["notes"]}


class PolicyLoadError(RuntimeError):
    """The configured model or service could not be loaded (the CLI prints it as one line)."""


def build_policy(cfg: RunConfig) -> Policy:
    """The configured backend, given the run's settings that its declaration lists
    (:mod:`tttd.policy.backends`) and then the user's backend options."""
    try:
        cls = backend_class(cfg.backend)
    except ImportError as exc:
        raise PolicyLoadError(str(exc)) from exc
    offered = dict(
        model=cfg.model, lora_rank=cfg.lora_rank, full_finetune=cfg.full_finetune, seed=cfg.seed,
        learning_rate=cfg.learning_rate, total_steps=cfg.steps, engine=cfg.engine,
        chat_template_kwargs=dict(cfg.chat_template_kwargs) or None,
    )
    declared = backend_spec(cfg.backend).names()
    kwargs = {k: v for k, v in offered.items() if k in declared}
    kwargs.update(cfg.backend_options)
    try:
        policy = cls(**kwargs)
        check = getattr(policy, "check_reachable", None)  # remote endpoints: fail before writing
        if check is not None:
            check()
        return policy
    except (ValueError, OSError, ImportError, RuntimeError, TimeoutError) as exc:
        raise PolicyLoadError(f"cannot load the {cfg.backend} policy {cfg.model!r}: {exc}") from exc


def package_versions(names=("torch", "transformers", "peft", "tokenizers", "accelerate", "tinker", "openai",
                                 "ray", "vllm")) -> dict[str, str]:
    """Installed versions of the packages a run may use (read from metadata, nothing imported)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in names:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            pass
    return found


def verify_command(task: str, target: Path, options: str = "") -> str:
    """The shell command that re-verifies ``target``: a task given as a file path (or a problem
    folder) is named by its absolute path, so the command works from any directory."""
    import shlex

    from tttd.registry import absolute_task_spec

    name = absolute_task_spec(task)
    return f"tttd verify {shlex.quote(name)}{options} {shlex.quote(str(Path(target).resolve()))}"


def build_task(cfg: RunConfig) -> Task:
    """The configured task; the run's evaluation limits reach it when its factory takes them."""
    from tttd.registry import declared_options, task_factory

    offered = dict(eval_timeout_s=cfg.eval_timeout_s, cpus_per_eval=cfg.cpus_per_eval,
                   eval_memory_mb=cfg.eval_memory_mb)
    declared = declared_options(task_factory(cfg.task)) or []
    options = {k: v for k, v in offered.items() if k in declared and v is not None}  # None: task default
    options.update(cfg.task_options)
    return get_task(cfg.task, **options)


def build_executor(cfg: RunConfig):
    from tttd.executor import make_executor

    return make_executor(cfg.executor, workers=cfg.workers, cpus_per_eval=cfg.cpus_per_eval)


def write_best(run_dir: RunDir, b: Any, task: Task, cfg: RunConfig) -> None:
    """best/: the artifact (artifact.json, solution.py/.cpp if code), its value, and the command
    that re-verifies it (best.json)."""
    if b.value is None:
        return
    d = run_dir.best
    d.mkdir(exist_ok=True)
    data = {k: v for k, v in b.artifact.items() if k != "code"}
    target = None
    if data:
        atomic_write_json(d / "artifact.json", data)
        target = d / "artifact.json"
    if b.artifact.get("code"):
        solution = d / ("solution" + task.program_suffixes[0])  # .py, .cpp, ...
        atomic_write_text(solution, b.artifact["code"] + "\n")
        target = target or solution
    if isinstance(b.artifact.get("files"), dict):  # issue 37: a multi-file program, re-verified as a directory
        write_tree(d / "files", b.artifact["files"])
        target = d / "files"
    opts = "".join(f" --task-option {shlex.quote(f'{k}={v if isinstance(v, str) else json.dumps(v)}')}"
                   for k, v in sorted(cfg.task_options.items()))  # as the run built its task
    if cfg.rule != "primary":  # issue 37: the value is the run's rule of several metrics
        opts += f" --rule {shlex.quote(cfg.rule)}"
    command = verify_command(cfg.task, target, opts) if target else None
    atomic_write_json(d / "best.json", {"value": b.value, "reward": b.reward, "step": b.step,
                                        "message": b.message, "artifact": b.artifact,
                                        "verify": command})


def describe_run(cfg: RunConfig, task: Task, policy: Any, fingerprint: str) -> dict[str, Any]:
    """``config.json``: the resolved configuration with the versions, the task, the sampling
    engine and the sandbox this run used."""
    import platform

    import numpy as np

    import tttd

    return {
        **cfg.to_dict(),
        "_versions": {"tttd": tttd.__version__, "python": platform.python_version(), "numpy": np.__version__,
                      **package_versions()},
        "_task": {"name": task.name, "direction": task.objective.direction,
                  "transform": task.objective.transform, "fingerprint": fingerprint},
        **({"_engine": policy.engine_info()} if hasattr(policy, "engine_info") else {}),
        "_sandbox": _sandbox_report(),
    }


def check_task_unchanged(run_dir: RunDir, cfg: RunConfig, fingerprint: str, accept: bool) -> None:
    """A task whose source or options changed since the run started is refused on resume
    (:class:`~tttd.rundir.NotARunError`) unless ``accept``."""
    from tttd.rundir import NotARunError

    stored = run_dir.read_config().get("_task", {}).get("fingerprint")
    if stored is not None and not accept and stored != fingerprint:
        raise NotARunError(
            f"the task {cfg.task!r} changed since this run started (its source or options "
            "differ); resuming would mix two scoring functions. Pass --accept-task-change to "
            "continue anyway")


def record_task_fingerprint(run_dir: RunDir, fingerprint: str) -> None:
    """Keep the task's new fingerprint (a resume that accepted a changed task, once restored)."""
    full = run_dir.read_config()
    full.setdefault("_task", {})["fingerprint"] = fingerprint
    atomic_write_json(run_dir.config, full)
