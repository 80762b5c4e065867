"""The parts of one loop step that hold no run state (issue 32 split them out of :mod:`tttd.loop`):
seeds, the trusted verdict on one candidate, the child state it makes, and the step's log rows.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from typing import Any

import numpy as np

from tttd.archive import Archive
from tttd.faults import is_infrastructure
from tttd.objective import GroupAdvantages
from tttd.task import Task
from tttd.task_errors import SCORER_ERROR, where
from tttd.types import Evaluation, State


def derive_seed(*parts: int) -> int:
    """A 31-bit seed from integers (stable across processes and Python versions)."""
    h = hashlib.sha256(",".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF


def parent_of(archive: Archive, s: State) -> State | None:
    """The parent state of ``s`` for its prompt; evicted by the cap: a stand-in with its value."""
    if s.parent_id is None:
        return None
    try:
        return archive.get(s.parent_id)
    except KeyError:
        value = s.parent_values[0] if s.parent_values else None
        return State(id=s.parent_id, value=value)


def verdict(task: Task, cand: Any, result: Any, start: State) -> Evaluation:
    """The task's trusted verdict on one candidate; a verifier that raises something that is
    not a verdict is a bug in the task (status ``scorer_error``), never the end of the run."""
    if result is not None and is_infrastructure(result):  # lost after its retries: the step stops
        return task.invalid(f"infrastructure failure: {result.message}", status="lost")
    try:
        return task.evaluate(cand, result, start)
    except Exception as exc:  # a verifier bug must not kill the run; it shows in the logs
        loc = where(exc)
        return task.invalid(f"the task's verifier raised {type(exc).__name__}: {exc}"
                            + (f" at {loc}" if loc else ""), status=SCORER_ERROR)


def rivals_for(task: Task, archive: Archive, starts: list[State]) -> list[State | None]:
    """Per start state, the child its children must beat to be kept (:meth:`Archive.rival`, a
    scan of the archive), for a task that declares :attr:`Task.races`; None for every other
    task, which is never handed one (and whose steps in flight then store none)."""
    if not getattr(task, "races", False):
        return [None] * len(starts)
    return [archive.rival(s.id) for s in starts]


def launch_group(task: Task, submit, start: State, group, rival: State | None = None) -> list[tuple[Any, Any]]:
    """Parse each sample of a group and start its program (None when nothing runs): the
    candidates paired with their futures, in sample order. ``rival``: the child each must beat
    to be kept under ``start`` (:meth:`Archive.rival` when the group is launched; racing tasks
    use it). Siblings of the same step are never rivals: which finishes first depends on
    timing, and a resumed run must race exactly as the first did."""
    extra = {"rival": rival} if getattr(task, "races", False) else {}  # declared by the task (Task.races)
    parsed = []
    for smp in group:
        cand = task.parse(smp.text, start)
        fut = task.launch(cand, submit, start, **extra) if cand.program is not None else None
        parsed.append((cand, fut))
    return parsed


def child_state(ev: Evaluation) -> State | None:
    """The archive's new state for a valid evaluation (valid but unarchivable children still
    update statistics, see :meth:`tttd.archive.Archive.update`)."""
    if not ev.valid:
        return None
    return State(id="", value=ev.value, artifact=ev.artifact, key=ev.key, reward=ev.reward,
                 output_tail=ev.output_tail, metrics=ev.metrics)


def rollout_rows(step: int, starts, prompt_files, samples, evaluations, adv: GroupAdvantages,
                 child_ids, archive: Archive, version: int | None = None) -> list[dict[str, Any]]:
    """One row per sample. ``policy_version``: the last step whose update the sampling policy
    had (-1: the initial policy); ``version`` None means on-policy, ``step - 1`` (issue 35). ``child``: the archive state it made; ``child_kept``: whether that
    state is still in the archive after the step (``prune_children`` and the size cap evict some
    right away); ``advantage``: None when the sample did not train (its group dropped, or a
    scorer error)."""
    rows = []
    for g, (start, (phash, prompt_file), group, evs) in enumerate(zip(starts, prompt_files, samples, evaluations)):
        a_group = adv.advantages[g]
        for i, (smp, ev) in enumerate(zip(group, evs)):
            child = child_ids[g][i]
            rows.append({
                "step": step, "group": g, "index": i, "parent": start.id, "prompt_hash": phash,
                "completion": smp.text, "stop_reason": smp.stop_reason, "tokens": len(smp.tokens),
                "valid": ev.valid, "status": ev.status, "value": ev.value, "reward": ev.reward,
                "advantage": float(a_group[i]) if adv.in_batch(g, i) else None,
                "message": ev.message[:500], "child": child, "prompt_file": prompt_file,
                "child_kept": None if child is None else child in archive,
                "policy_version": step - 1 if version is None else version,
            })
    return rows


def prompt_hash(prompt: Any) -> str:
    return hashlib.sha256(repr(prompt).encode()).hexdigest()[:16]


def metrics_row(step: int, evaluations, adv: GroupAdvantages, train_metrics: dict[str, float], t: dict[str, float],
                used: dict[str, int], orient, best, archive_size: int) -> dict[str, Any]:
    """The step's line of ``metrics.jsonl``. Token counts are the backend's own (``used``, the
    change in ``policy.usage()``). The sampler/trainer mismatch is what the backend returns:
    ``kl_sample_train`` (local) or ``kl_sample_train_v1`` / ``_v2`` (tinker, as the reference)."""
    flat = [ev for evs in evaluations for ev in evs]
    rewards = np.array([ev.reward for ev in flat], dtype=float)
    values = np.array([ev.value for ev in flat if ev.valid], dtype=float)
    betas = [b for b in adv.betas if b is not None]
    # a service may not report a value (SkyRL's forward_backward has no loss: NaN): None, never a
    # NaN that the strict JSON logs refuse
    tm = {k: (v if not isinstance(v, float) or math.isfinite(v) else None) for k, v in train_metrics.items()}
    return {
        "step": step,
        "reward_mean": float(rewards.mean()),
        "reward_max": float(rewards.max()),
        "value_mean": float(values.mean()) if len(values) else None,
        "value_best_step": (float(max(values, key=orient)) if len(values) else None),
        "best_value": best.value,
        "best_reward": best.reward,
        "valid_fraction": float(len(values) / max(1, len(flat))),
        "beta_mean": float(np.mean(betas)) if betas else None,
        "groups_kept": int(adv.kept),
        "trained": bool(tm),
        "loss": tm.get("loss"),
        "kl_policy_base": tm.get("kl_policy_base"),
        "kl_sample_train": tm.get("kl_sample_train", tm.get("kl_sample_train_v1")),
        "kl_sample_train_v2": tm.get("kl_sample_train_v2"),
        "archive_size": archive_size,
        "status_counts": dict(sorted(Counter(ev.status for ev in flat if not ev.valid).items())),
        "samples": len(flat),
        "sampled_tokens": used["sampled_tokens"],
        "prompt_tokens": used["prompt_tokens"],
        "trained_tokens": used["trained_tokens"],
        "requests": used["requests"],
        "seconds_select": round(t["select"] - t["start"], 4),
        "seconds_sample": round(t["sample"] - t["select"], 4),
        "seconds_evaluate": round(t["evaluate"] - t["sample"], 4),
        "seconds_train": round(t["train"] - t["evaluate"], 4),
    }
