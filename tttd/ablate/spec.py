"""What an ablation is: a task, the variants, the seeds and the shared settings; and its directory.

An ablation directory holds ``ablation.json`` (this spec, written once, atomically, when the
ablation starts) and one ordinary run directory per (variant, seed) under ``runs/<variant>/seed<k>``.
Every variant gets the same steps, groups and group size, so the same sample budget; seed k gives
every variant the same initial states (the roots are drawn from the run seed), so the runs pair up
by seed. A second ``tttd ablate`` on the same directory must give the same spec (``--jobs`` may
differ): otherwise it is refused with one line, so one table never mixes two settings.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tttd.atomic import atomic_write_json
from tttd.config import FIELDS, ConfigError, RunConfig, _coerce, resolve_config

SPEC_FILE = "ablation.json"
SPEC_VERSION = 1

#: The paper's ablations (section 4 of the paper, Table 5), as changes to the run configuration.
#: ``full`` spells its settings out so that a preset or --set with other values cannot change what
#: "full" means; every other variant changes exactly the part it removes.
FULL = {"objective": "entropic", "reuse": "puct", "train": True}
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "full": ("entropic objective, adaptive beta, PUCT reuse, training on", {}),
    "constant-beta": ("entropic objective with a fixed beta (config beta, default 2)", {"objective": "entropic-fixed"}),
    "mean": ("expected reward: mean-baseline advantages", {"objective": "mean"}),
    "no-reuse": ("every group starts from a root (no archive reuse)", {"reuse": "none"}),
    "no-train": ("frozen policy, PUCT reuse (best-of-N with reuse)", {"train": False}),
    "best-of-n": ("frozen policy, no reuse: plain best-of-N sampling", {"train": False, "reuse": "none"}),
    # Issue 35: not ablations of the method but of the schedule (tttd.async_steps); not run by default.
    "async1": ("full, sampled one step ahead (--async-steps 1)", {"async_steps": 1}),
    "async2": ("full, sampled two steps ahead (--async-steps 2)", {"async_steps": 2}),
}
#: The paper's ablations, run when no --variants is given (the async variants are asked for by name).
DEFAULT_VARIANTS = tuple(v for v in VARIANTS if not v.startswith("async"))
#: Settings an ablation cannot vary per variant or set: they name the run, not the method.
NOT_SETTABLE = {"task", "steps", "seed", "out", "preset"}


@dataclass
class AblationSpec:
    task: str
    seeds: list[int]
    steps: int
    variants: dict[str, dict[str, Any]]  # name -> config changes on top of FULL
    base: dict[str, Any] = field(default_factory=dict)  # shared settings (preset, groups, --set ...)
    threshold: float | None = None  # samples-to-threshold; None = the pooled median final best
    version: int = SPEC_VERSION

    def run_ids(self) -> list[tuple[str, int]]:
        """(variant, seed) in the order they run: seed-major, so a stopped ablation is paired."""
        return [(v, s) for s in self.seeds for v in self.variants]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "AblationSpec":
        spec = cls(**{k: data[k] for k in ("task", "seeds", "steps", "variants", "base", "threshold", "version")
                      if k in data})
        # ablation.json is written with sorted keys: the built-in variants go back to their order
        # (full first), extra variants follow by name
        names = [v for v in VARIANTS if v in spec.variants] + sorted(v for v in spec.variants if v not in VARIANTS)
        spec.variants = {v: spec.variants[v] for v in names}
        return spec


def run_path(root: str | Path, variant: str, seed: int) -> Path:
    return Path(root) / "runs" / variant / f"seed{seed}"


def parse_assignments(text: str, what: str) -> dict[str, Any]:
    """``KEY=VALUE[,KEY=VALUE...]`` into config changes (values as JSON when they parse)."""
    out: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        key, sep, raw = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise ConfigError(f"{what} must look like KEY=VALUE, got {item!r}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        out[key] = value
    return check_changes(out, what)


def check_changes(changes: dict[str, Any], what: str) -> dict[str, Any]:
    """Config changes checked against RunConfig's fields and types (ConfigError, one line)."""
    for key, value in changes.items():
        if key in NOT_SETTABLE:
            raise ConfigError(f"{what}: {key!r} is set by tttd ablate itself (use its own flag)")
        if key not in FIELDS:
            raise ConfigError(f"{what}: unknown setting {key!r}; known: {', '.join(sorted(set(FIELDS) - NOT_SETTABLE))}")
        changes[key] = _coerce(key, value)
    return changes


def parse_variant(text: str) -> tuple[str, dict[str, Any]]:
    """An extra variant ``NAME:KEY=VALUE[,KEY=VALUE...]`` (changes on top of ``full``)."""
    name, sep, rest = text.partition(":")
    name = name.strip()
    if not sep or not name or not rest.strip():
        raise ConfigError(f"--variant must look like NAME:KEY=VALUE[,KEY=VALUE], got {text!r}")
    if not all(c.isalnum() or c in "-_." for c in name) or name.startswith("."):
        raise ConfigError(f"--variant name {name!r}: letters, digits, '-', '_' and '.' only")
    if name in VARIANTS:
        raise ConfigError(f"--variant name {name!r} is a built-in variant; pick another name")
    return name, parse_assignments(rest, f"--variant {name}")


def build_spec(task: str, seeds: int, steps: int, variants: list[str] | None, extra: list[str] | None,
               base: dict[str, Any], threshold: float | None) -> AblationSpec:
    """The spec from the command line (ConfigError, one line, on a bad value)."""
    if seeds < 1:
        raise ConfigError(f"--seeds must be >= 1, got {seeds}")
    if steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {steps}")
    chosen = list(variants or DEFAULT_VARIANTS)
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown:
        raise ConfigError(f"unknown variant {unknown[0]!r}; built-in variants: {', '.join(VARIANTS)} "
                          "(add your own with --variant NAME:KEY=VALUE)")
    if "full" not in chosen:
        raise ConfigError("--variants must include 'full': every variant is compared with it")
    table = {v: {**FULL, **VARIANTS[v][1]} for v in dict.fromkeys(chosen)}
    for text in extra or []:
        name, changes = parse_variant(text)
        if name in table:
            raise ConfigError(f"--variant {name!r} is given twice")
        table[name] = {**FULL, **changes}
    return AblationSpec(task=task, seeds=list(range(seeds)), steps=steps, variants=table, base=dict(base),
                        threshold=threshold)


def run_config(spec: AblationSpec, root: str | Path, variant: str, seed: int,
               task_presets: dict[str, dict[str, Any]] | None, default_preset: str | None) -> RunConfig:
    """One run's resolved configuration: defaults < preset < shared settings < the variant."""
    base = dict(spec.base)
    preset = base.pop("preset", None) or default_preset
    flags = {**base, **spec.variants[variant], "task": spec.task, "steps": spec.steps, "seed": seed,
             "out": str(run_path(root, variant, seed))}
    return resolve_config(task_presets, preset=preset, flag_values=flags)


def load_spec(root: str | Path) -> AblationSpec | None:
    """The stored spec of an ablation directory, None when there is none (NotAnAblation if damaged)."""
    path = Path(root) / SPEC_FILE
    if not path.is_file():
        return None
    try:
        return AblationSpec.from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError, KeyError) as exc:
        raise ConfigError(f"{path} is damaged ({type(exc).__name__}); refusing to continue this ablation") from None


def is_ablation_dir(path: str | Path) -> bool:
    return (Path(path) / SPEC_FILE).is_file()


def difference(stored: AblationSpec, given: AblationSpec) -> str | None:
    """The first setting that differs between two specs, in words, or None when they match."""
    a, b = json.loads(json.dumps(stored.to_dict())), json.loads(json.dumps(given.to_dict()))
    for key in ("task", "steps", "seeds", "variants", "base", "threshold", "version"):
        if a.get(key) != b.get(key):
            if key == "seeds":
                return f"--seeds {len(b[key])} (it was started with {len(a[key])})"
            if isinstance(a.get(key), dict) and isinstance(b.get(key), dict):
                for k in sorted(set(a[key]) | set(b[key])):
                    if a[key].get(k) != b[key].get(k):
                        return f"{key} {k}: {b[key].get(k)!r} (it was started with {a[key].get(k)!r})"
            return f"{key} {b.get(key)!r} (it was started with {a.get(key)!r})"
    return None


def open_spec(root: str | Path, given: AblationSpec, write: bool) -> AblationSpec:
    """The ablation at ``root``: the stored spec when it matches ``given`` (ConfigError otherwise);
    a new directory gets ``given`` written to it when ``write`` (not in a dry run)."""
    root = Path(root)
    stored = load_spec(root)
    if stored is not None:
        diff = difference(stored, given)
        if diff is not None:
            raise ConfigError(f"{root} holds an ablation started with other arguments: {diff}; "
                              "give the same arguments to continue it, or another --out")
        return stored
    if root.exists() and any(root.iterdir()):
        raise ConfigError(f"{root} exists and is not an ablation directory; give another --out")
    if write:
        root.mkdir(parents=True, exist_ok=True)
        atomic_write_json(root / SPEC_FILE, given.to_dict())
    return given
