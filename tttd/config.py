"""Run configuration: defaults, presets, config files and flags, resolved into one RunConfig.

Resolution order (later wins): the defaults below, the named preset (a task's own preset of
that name overrides the global one), a TOML or YAML config file, then command-line flags. Every
run writes its fully resolved config to ``config.json`` so it can be resumed and reproduced.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OBJECTIVES = ("entropic", "entropic-fixed", "mean")
REUSE = ("puct", "greedy", "none", "pareto")
BACKENDS = ("local", "tinker", "api")
EXECUTORS = ("local", "ray")


@dataclass
class RunConfig:
    """Everything a run needs. Field comments give the paper's value where it differs."""

    task: str = "demo"
    task_options: dict[str, Any] = field(default_factory=dict)
    backend: str = "local"
    model: str = "tiny"
    backend_options: dict[str, Any] = field(default_factory=dict)  # base_url, device, ...
    chat_template_kwargs: dict[str, Any] = field(default_factory=dict)  # e.g. reasoning_effort (paper: high)
    steps: int = 50
    groups: int = 8  # start states per step (paper: 8)
    group_size: int = 64  # samples per start state (paper: 64)
    learning_rate: float = 4e-5
    lora_rank: int = 32
    full_finetune: bool = False
    temperature: float = 1.0
    max_tokens: int = 26000
    objective: str = "entropic"  # entropic (adaptive beta) | entropic-fixed | mean
    beta: float = 2.0  # only for entropic-fixed
    kl_coef: float = 0.1
    clip: float | None = None  # PPO clip epsilon; None = plain importance sampling (paper)
    train: bool = True  # False = frozen policy (best-of-N with reuse), the no-train ablation
    reuse: str = "puct"  # puct | greedy | none | pareto (the front first: several objectives)
    rule: str = "primary"  # several objectives: how one reward is made of the metrics (tttd.objectives)
    puct_c: float = 1.0
    topk_children: int = 2
    archive_size: int = 1000
    visit_counting: str = "group"  # group (tttd) | rollout (the paper's code and the paper preset)
    # Reasoning models: a sample that spends its budget thinking gets a short "out of thinking
    # tokens" text (not trained) and its final-answer header, then continues (tttd.policy.forced_answer).
    # Off by default: it only acts on chat templates with a thinking/final split; on in the paper preset.
    forced_answer: bool = False
    executor: str = "local"  # local | ray
    workers: int | None = None  # evaluation workers; default one per core
    cpus_per_eval: int = 1
    eval_timeout_s: float = 60.0
    eval_memory_mb: int | None = None  # None = the task's default (the math tasks': 4096)
    sample_chunk_groups: int = 0  # groups per sampling call; 0 = all groups in one call
    # Issue 35: step t+1 samples from the policy after step t-K's update while step t evaluates
    # and trains (tttd.async_steps). 0 = synchronous, as the paper.
    async_steps: int = 0
    seed: int = 0
    out: str | None = None  # run directory; default runs/<task>-<time>
    preset: str | None = None
    # Spend and budgets (tttd.ledger): caps stop the run at a step boundary; prices extend the table.
    max_usd: float | None = None
    max_samples: int | None = None
    max_hours: float | None = None
    prices: dict[str, Any] = field(default_factory=dict)  # "backend:model" -> USD per 1M tokens
    log: str = ""  # extra metric logs: "tensorboard", "wandb" or both, comma-separated
    engine: str = "auto"  # local backend's sampler: auto | hf | vllm (tttd.policy.engines)
    require_isolation: bool = False  # refuse to run unless the sandbox isolation is full (tttd.sandbox)
    allow_weak_isolation: bool = False  # run candidate code without full isolation (docs/sandbox.md)

    def validate(self) -> "RunConfig":
        def need(cond: bool, msg: str) -> None:
            if not cond:
                raise ConfigError(msg)

        need(self.steps >= 1, f"steps must be >= 1, got {self.steps}")
        need(self.groups >= 1, f"groups must be >= 1, got {self.groups}")
        need(self.group_size >= 1, f"group_size must be >= 1, got {self.group_size}")
        need(self.learning_rate > 0, f"learning_rate must be > 0, got {self.learning_rate}")
        need(self.max_tokens >= 1, f"max_tokens must be >= 1, got {self.max_tokens}")
        need(self.temperature > 0, f"temperature must be > 0, got {self.temperature}")
        need(self.objective in OBJECTIVES, f"objective must be one of {OBJECTIVES}, got {self.objective!r}")
        need(self.reuse in REUSE, f"reuse must be one of {REUSE}, got {self.reuse!r}")
        try:
            from tttd.objectives import parse_rule

            parse_rule(self.rule)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        need(self.backend in BACKENDS, f"backend must be one of {BACKENDS}, got {self.backend!r}")
        need(self.executor in EXECUTORS, f"executor must be one of {EXECUTORS}, got {self.executor!r}")
        need(self.visit_counting in ("group", "rollout"), f"visit_counting must be group or rollout, got {self.visit_counting!r}")
        need(self.kl_coef >= 0, f"kl_coef must be >= 0, got {self.kl_coef}")
        need(self.eval_timeout_s > 0, f"eval_timeout_s must be > 0, got {self.eval_timeout_s}")
        need(self.cpus_per_eval >= 1, f"cpus_per_eval must be >= 1, got {self.cpus_per_eval}")
        need(self.archive_size >= 1, f"archive_size must be >= 1, got {self.archive_size}")
        need(0 <= self.async_steps <= 8, f"async_steps must be in 0..8, got {self.async_steps}")
        need(self.workers is None or self.workers >= 1, f"workers must be >= 1, got {self.workers}")
        for cap in ("max_usd", "max_samples", "max_hours"):
            v = getattr(self, cap)
            need(v is None or v > 0, f"{cap} must be > 0, got {v}")
        need(self.eval_memory_mb is None or self.eval_memory_mb >= 64,
             f"eval_memory_mb must be >= 64, got {self.eval_memory_mb}")
        need(self.engine in ("auto", "hf", "vllm"), f"engine must be auto, hf or vllm, got {self.engine!r}")
        need(self.engine == "auto" or self.backend == "local",
             f"engine {self.engine!r} applies to the local backend only (backend is {self.backend!r})")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class ConfigError(ValueError):
    """A bad configuration value; the CLI prints it as one line."""


PRESETS: dict[str, dict[str, Any]] = {
    # DESIGN.md: the paper's settings.
    "paper": dict(
        steps=50, groups=8, group_size=64, learning_rate=4e-5, lora_rank=32, temperature=1.0,
        max_tokens=26000, objective="entropic", kl_coef=0.1, reuse="puct", puct_c=1.0,
        visit_counting="rollout", forced_answer=True,  # as the authors' code (issue 20)
        chat_template_kwargs={"reasoning_effort": "high"},  # gpt-oss "Reasoning: high"; other templates ignore it
    ),
    # Sized for a laptop CPU with the tiny model (tttd demo); tasks may override.
    "demo": dict(
        steps=20, groups=4, group_size=8, learning_rate=2e-3, lora_rank=8, max_tokens=48,
        kl_coef=0.0, eval_timeout_s=10.0,
    ),
}

FIELDS = {f.name: f for f in dataclasses.fields(RunConfig)}


def _coerce(name: str, value: Any) -> Any:
    f = FIELDS.get(name)
    if f is None:
        raise ConfigError(f"unknown config key {name!r}; known keys: {', '.join(sorted(FIELDS))}")
    default = f.default if f.default is not dataclasses.MISSING else None
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    if value is None:
        return None
    try:
        if kind.startswith("int"):
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            return int(value)
        if kind.startswith("float"):
            return float(value)
        if kind == "bool":
            if isinstance(value, str):
                if value.lower() in ("1", "true", "yes", "on"):
                    return True
                if value.lower() in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            return bool(value)
        if kind.startswith("dict"):
            if not isinstance(value, dict):
                raise ValueError
            return dict(value)
        if kind.startswith("str") and not isinstance(value, str):
            raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(f"bad value for {name}: {value!r} (expected {kind}, e.g. {default!r})") from None
    return value


def load_config_file(path: str | Path) -> dict[str, Any]:
    """Read a TOML (.toml) or YAML (.yaml/.yml) or JSON config file into a flat dict."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file not found: {p}")
    text = p.read_text()
    try:
        if p.suffix == ".toml":
            try:
                import tomllib
            except ModuleNotFoundError:  # Python 3.10
                import tomli as tomllib  # type: ignore[no-redef]
            data = tomllib.loads(text)
        elif p.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        elif p.suffix == ".json":
            data = json.loads(text)
        else:
            raise ConfigError(f"config file must be .toml, .yaml, .yml or .json: {p}")
    except ConfigError:
        raise
    except Exception as exc:
        raise ConfigError(f"cannot parse config file {p}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a table of settings")
    return normalize_keys(data)


#: Config-file spellings of the command-line flags, mapped to RunConfig's field names (which
#: config.json records). Any key may also use dashes for underscores (``group-size``).
KEY_ALIASES = {"lr": "learning_rate", "task_option": "task_options", "backend_option": "backend_options"}


def normalize_keys(data: dict[str, Any]) -> dict[str, Any]:
    """Accept flag names as config keys: dashes, ``lr``, ``task_option(s)``, ``no_train``."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        name = KEY_ALIASES.get(name, name)
        if name == "no_train":
            name, value = "train", (not value if isinstance(value, bool) else value)
            if not isinstance(value, bool):
                raise ConfigError(f"bad value for no_train: {data[key]!r} (expected true or false)")
        if name in out:
            raise ConfigError(f"config key {key!r} repeats {name!r}: give it once")
        out[name] = value
    return out


def resolve_config(
    task_presets: dict[str, dict[str, Any]] | None = None,
    preset: str | None = None,
    file_values: dict[str, Any] | None = None,
    flag_values: dict[str, Any] | None = None,
) -> RunConfig:
    """Defaults < preset (global, then the task's own) < config file < flags (None = not given)."""
    values: dict[str, Any] = {}
    file_values = dict(file_values or {})
    flag_values = {k: v for k, v in (flag_values or {}).items() if v is not None}
    preset = flag_values.get("preset", file_values.get("preset", preset))
    if preset is not None:
        task_presets = task_presets or {}
        if preset not in PRESETS and preset not in task_presets:
            known = sorted(set(PRESETS) | set(task_presets))
            raise ConfigError(f"unknown preset {preset!r}; known: {', '.join(known)}")
        values.update(PRESETS.get(preset, {}))
        values.update(task_presets.get(preset, {}))
    values.update(file_values)
    values.update(flag_values)
    values["preset"] = preset
    cfg = RunConfig(**{k: _coerce(k, v) for k, v in values.items()})
    return cfg.validate()


def config_from_dict(data: dict[str, Any]) -> RunConfig:
    return RunConfig(**{k: _coerce(k, v) for k, v in data.items() if k in FIELDS}).validate()
