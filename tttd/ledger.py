"""Spend and budgets: what a run has used, what it costs, and when a cap stops it.

The :class:`Ledger` counts tokens (prompt, sampled, trained), samples, evaluations, evaluation
CPU/GPU-seconds and wall time, and money from a price table. It is checkpointed with every step
(``loop.json``), so it carries across resumes.

Where the counts come from (issue 32): tokens and requests are what the backend itself counted,
the change in ``policy.usage()`` over the step, so requests the loop never sees (the forced
answer's second phase, the KL term's base-model log-probs, retried requests) are paid for, and
prompt tokens are counted as the backend sends them (per request, not per sample). Trained tokens
are whole trained sequences (prompt and completion) as the backend counts them. Evaluation
CPU/GPU-seconds are measured on every sandboxed program the executor ran (:class:`EvalMeter`),
whatever the task kind (an AHC candidate is a compile plus one program per case).

Prices are USD per million tokens, per backend and model, with an optional ``hour`` rate for
wall time (e.g. a rented GPU). The table below holds only what tttd knows for sure (your own
machine's tokens cost nothing); extend it in a config file::

    [prices."tinker:Qwen/Qwen3-8B"]        # "backend:model", or "backend" for every model
    prompt = 0.2
    sampled = 0.6
    trained = 0.6
    hour = 0.0

Caps (``max_usd``, ``max_samples``, ``max_hours``) are checked at each step boundary: the run
stops cleanly *before* a step that would cross one, estimating that step from the last one (the
samples of a step are known exactly: groups x group size). The stopped run is resumable, and
``tttd resume RUN --max-usd X`` raises a cap.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from typing import Any

from tttd.config import ConfigError, RunConfig

#: Built-in prices (USD per 1M tokens; "hour": USD per wall hour). Only certain entries.
DEFAULT_PRICES: dict[str, dict[str, float]] = {
    "local": {"prompt": 0.0, "sampled": 0.0, "trained": 0.0, "hour": 0.0},
}
PRICE_KEYS = ("prompt", "sampled", "trained", "hour")
CAPS = ("max_usd", "max_samples", "max_hours")


@dataclass
class Ledger:
    """What the run has spent so far (carried across resumes)."""

    samples: int = 0
    prompt_tokens: int = 0
    sampled_tokens: int = 0
    trained_tokens: int = 0
    requests: int = 0  # requests the backend sent (sampling, forced answers, KL reference, retries)
    seconds: float = 0.0  # wall time of the completed steps
    evaluations: int = 0
    valid: int = 0
    eval_cpu_seconds: float = 0.0  # evaluation wall time x CPUs reserved for it
    eval_gpu_seconds: float = 0.0  # evaluation wall time x GPUs assigned to it
    usd: float | None = 0.0  # None when no price is known for the backend and model
    last_step: dict[str, float] = field(default_factory=dict)  # the last step's spend (estimates)

    def add_evaluation(self, result: Any, limits: Any) -> None:
        """Account one sandboxed evaluation (a SandboxResult and the Program's Limits)."""
        wall = float(getattr(result, "wall_s", 0.0) or 0.0)
        self.eval_cpu_seconds += wall * max(1, int(getattr(limits, "threads", 1) or 1))
        self.eval_gpu_seconds += wall * int(getattr(limits, "gpus", 0) or 0)

    def record_step(self, *, samples: int, prompt_tokens: int, sampled_tokens: int,
                    trained_tokens: int, valid: int, seconds: float,
                    price: dict[str, float] | None, requests: int = 0) -> None:
        """Add one completed step's counts; remember them as the estimate of the next step."""
        usd = None if price is None else (
            (prompt_tokens * price.get("prompt", 0.0) + sampled_tokens * price.get("sampled", 0.0)
             + trained_tokens * price.get("trained", 0.0)) / 1e6 + seconds / 3600 * price.get("hour", 0.0))
        self.samples += samples
        self.evaluations += samples
        self.valid += valid
        self.prompt_tokens += prompt_tokens
        self.sampled_tokens += sampled_tokens
        self.trained_tokens += trained_tokens
        self.requests += requests
        self.seconds += seconds
        self.usd = None if usd is None or self.usd is None else self.usd + usd
        self.last_step = {"samples": samples, "seconds": seconds, "usd": usd}

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Ledger":
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})


USAGE_KEYS = ("prompt_tokens", "sampled_tokens", "trained_tokens", "requests")


def usage_delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    """What a backend's usage counters (``TokenUsage.to_dict()``) grew by over one step."""
    return {k: int(after.get(k, 0)) - int(before.get(k, 0)) for k in USAGE_KEYS}


class EvalMeter:
    """Evaluation CPU/GPU-seconds of every sandboxed program the executor ran (retries included),
    added from the executor's threads and taken into the ledger once per step."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._acc = Ledger()

    def add(self, result: Any, limits: Any) -> None:
        with self._lock:
            self._acc.add_evaluation(result, limits)

    def take(self) -> tuple[float, float]:
        """(CPU-seconds, GPU-seconds) since the last take."""
        with self._lock:
            got = (self._acc.eval_cpu_seconds, self._acc.eval_gpu_seconds)
            self._acc = Ledger()
        return got


def price_for(cfg: RunConfig) -> dict[str, float] | None:
    """The price entry of the run's backend and model (config ``prices`` first), or None."""
    table = {**DEFAULT_PRICES, **(getattr(cfg, "prices", None) or {})}
    for key in (f"{cfg.backend}:{cfg.model}", cfg.backend, f"{cfg.backend}:*"):
        if key in table:
            return table[key]
    return None


def check_budget(cfg: RunConfig) -> None:
    """ConfigError for a cap that cannot work (before anything is written)."""
    for key, entry in (getattr(cfg, "prices", None) or {}).items():
        if not isinstance(entry, dict) or set(entry) - set(PRICE_KEYS) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in entry.values()):
            raise ConfigError(f"prices[{key!r}] must map some of {', '.join(PRICE_KEYS)} to numbers >= 0 "
                              f"(USD per million tokens; hour: USD per wall hour), got {entry!r}")
    for cap in CAPS:
        v = getattr(cfg, cap, None)
        if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise ConfigError(f"{cap} must be > 0, got {v!r}")
    if getattr(cfg, "max_usd", None) is not None and price_for(cfg) is None:
        raise ConfigError(
            f"--max-usd needs a price for {cfg.backend}:{cfg.model}; add one to a config file "
            f'([prices."{cfg.backend}:{cfg.model}"] prompt = ..., sampled = ..., trained = ..., '
            f"USD per million tokens)")


def budget_stop(ledger: Ledger, cfg: RunConfig) -> str | None:
    """Why the next step must not start (it would cross a cap), or None to go on."""
    per_step = cfg.groups * cfg.group_size
    max_samples = getattr(cfg, "max_samples", None)
    if max_samples is not None and ledger.samples + per_step > max_samples:
        return (f"max_samples {max_samples} would be crossed: {ledger.samples} spent + "
                f"{per_step} for the next step")
    last = ledger.last_step or {}
    max_hours = getattr(cfg, "max_hours", None)
    if max_hours is not None:
        need = ledger.seconds + float(last.get("seconds") or 0.0)
        if need > max_hours * 3600:
            return (f"max_hours {max_hours:g} would be crossed: {ledger.seconds / 3600:.3g} h spent + "
                    f"~{float(last.get('seconds') or 0.0) / 3600:.3g} h for the next step (as the last)")
    max_usd = getattr(cfg, "max_usd", None)
    if max_usd is not None and ledger.usd is not None:
        step_usd = float(last.get("usd") or 0.0)
        if ledger.usd + step_usd > max_usd:
            return (f"max_usd {max_usd:g} would be crossed: ${ledger.usd:.4g} spent + "
                    f"~${step_usd:.4g} for the next step (as the last)")
    return None


def spend_lines(ledger: Ledger, cfg: RunConfig) -> list[str]:
    """Human lines: what was spent and what each cap leaves."""
    usd = "unknown (no price for this backend and model)" if ledger.usd is None else f"${ledger.usd:.4f}"
    if getattr(cfg, "backend", None) == "local" and not ledger.usd:  # as `tttd runs` (issue 36): no $0 price
        usd = "- (local backend)"
    lines = [
        f"spend: {ledger.samples} samples, {ledger.evaluations} evaluations ({ledger.valid} valid), "
        f"{ledger.seconds / 3600:.3f} h wall",
        f"tokens: {ledger.prompt_tokens} prompt, {ledger.sampled_tokens} sampled, "
        f"{ledger.trained_tokens} trained ({ledger.requests} requests); evaluation {ledger.eval_cpu_seconds:.1f} CPU-s, "
        f"{ledger.eval_gpu_seconds:.1f} GPU-s; cost {usd}",
    ]
    left = remaining(ledger, cfg)
    if left:
        lines.append("budget left: " + ", ".join(left))
    return lines


def remaining(ledger: Ledger, cfg: RunConfig) -> list[str]:
    out = []
    if getattr(cfg, "max_samples", None) is not None:
        out.append(f"{cfg.max_samples - ledger.samples} of {cfg.max_samples} samples")
    if getattr(cfg, "max_hours", None) is not None:
        out.append(f"{cfg.max_hours - ledger.seconds / 3600:.3f} of {cfg.max_hours:g} hours")
    if getattr(cfg, "max_usd", None) is not None and ledger.usd is not None:
        out.append(f"${cfg.max_usd - ledger.usd:.4f} of ${cfg.max_usd:g}")
    return out
