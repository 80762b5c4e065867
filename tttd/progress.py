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
