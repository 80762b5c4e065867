"""The one-line progress summary of a step, and why a step did not train."""

from __future__ import annotations

from typing import Any

from tttd.text import safe


def why_no_train(train: bool, trainable: bool, kept: int, groups: int, batch: int) -> str:
    """Why no optimizer step happened in a step (the caller knows that none did)."""
    if not train:
        return "frozen policy (no-train run)"
    if not trainable:
        return "the backend cannot train (frozen)"
    if kept == 0:
        return f"all {groups} groups had constant rewards (no advantage to learn from)"
    if batch == 0:
        return "the kept groups had no completion tokens"
    return "the backend returned no training metrics"


def failure_text(counts: dict[str, int] | None, samples: int) -> str:
    """``fail 5/32: parse_error 3, timeout 2`` (empty when nothing failed)."""
    counts = {k: v for k, v in (counts or {}).items() if v}
    if not counts:
        return ""
    parts = ", ".join(f"{safe(k)} {v}" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    return f"fail {sum(counts.values())}/{samples}: {parts}"


def step_info(m: dict[str, Any]) -> str:
    """The progress line of one step's metrics."""
    best = m.get("best_value")
    info = (f"best {best:.6g}  " if best is not None else "best -  ") + (
        f"reward mean {m['reward_mean']:.4g} max {m['reward_max']:.4g}  "
        f"valid {m['valid_fraction']:.0%}  archive {m['archive_size']}")
    counts = dict(m.get("status_counts") or {})
    scorer = counts.pop("scorer_error", 0)  # a bug in the task, not a bad candidate: said apart
    fails = failure_text(counts, int(m.get("samples") or 0))
    if fails:
        info += "  " + fails
    if scorer:
        info += f"  TASK SCORER ERROR {scorer} (a bug in the task's score(), not the candidates)"
    skipped = m.get("train_skipped")
    if skipped and not skipped.startswith("frozen"):
        info += f"  no training step: {safe(skipped)}"
    return info


PHASES = ("select", "sample", "evaluate", "train", "checkpoint")


def duration_text(seconds: float) -> str:
    """``45 s``, ``3 min 05 s``, ``2 h 10 min``."""
    seconds = int(round(max(0.0, seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class Eta:
    """The time left, measured on this machine: the mean of the last few steps' durations (the
    sum of their phases) times the steps left. ``then``: a later phase the same command runs
    (the demo's frozen baseline), as (label, steps, cost of its step relative to this run's)."""

    def __init__(self, total: int, then: tuple[str, int, float] | None = None, window: int = 5):
        self.total, self.then, self.window = total, then, window
        self.durations: list[float] = []

    def add(self, m: dict[str, Any]) -> str:
        self.durations.append(sum(float(m.get(f"seconds_{p}") or 0.0) for p in PHASES))
        recent = self.durations[-self.window:]
        per_step = sum(recent) / len(recent)
        left = self.total - (int(m["step"]) + 1)
        later = ""
        if self.then is not None:
            label, steps, ratio = self.then
            later = f"~{duration_text(per_step * ratio * steps)} for the {label}"
        if left <= 0:
            return f"ETA {later}" if later else ""
        later = f" + {later}" if later else ""
        return f"ETA {duration_text(per_step * left)}{later}"


class Activity:
    """Work done inside a step, for the heartbeat line (issue 36): a long sampling call says it is
    alive at least every 10 s. Engines bump :data:`ACTIVITY` as they decode (one count per row
    and decoding position: an upper bound on the tokens sampled, rows that finished early count
    until their batch ends)."""

    def __init__(self) -> None:
        self.tokens = 0

    def add_tokens(self, n: int) -> None:
        self.tokens += int(n)


ACTIVITY = Activity()


def heartbeat_text(step: int, total: int, seconds: float, tokens: int) -> str:
    """``step 2/48: 20 s in this step, sampling (<= 1,234 tokens so far)``."""
    what = f"sampling (<= {tokens:,} tokens so far)" if tokens else "working (no tokens sampled yet)"
    return f"step {step}/{total}: {duration_text(seconds)} in this step, {what}"
