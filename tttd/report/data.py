"""Everything the report shows about one run, read from its run directory alone."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tttd.rundir import RunDir, read_jsonl
from tttd.runinfo import RunInfo, load_run
from tttd.text import safe

MESSAGE_CHARS = 160


@dataclass
class RunData:
    info: RunInfo
    rewards: dict[int, list[float]] = field(default_factory=dict)  # step -> every sample's reward
    statuses: dict[int, Counter] = field(default_factory=dict)  # step -> failure status counts
    messages: Counter = field(default_factory=Counter)  # (status, message) -> count, failures only
    examples: dict[int, dict[str, Any]] = field(default_factory=dict)  # step -> best + one per failure kind
    states: list[dict[str, Any]] = field(default_factory=list)  # archive states
    best_file: dict[str, Any] | None = None
    task: Any = None
    task_error: str | None = None
    maximize: bool = True

    @property
    def name(self) -> str:
        return self.info.label

    @property
    def metrics(self) -> list[dict[str, Any]]:
        return self.info.metrics


def _short(message: str) -> str:
    first = safe(str(message)).strip().splitlines()[0] if str(message).strip() else ""
    return first[:MESSAGE_CHARS] + ("..." if len(first) > MESSAGE_CHARS else "")


def load_task(config: dict[str, Any]):
    """The run's task (for drawing), or (None, why not)."""
    from tttd.config import ConfigError, config_from_dict
    from tttd.build import build_task

    try:
        cfg = config_from_dict({k: v for k, v in config.items() if not k.startswith("_")})
        return build_task(cfg), None
    except (ConfigError, LookupError, ValueError, TypeError, OSError, ImportError) as exc:
        return None, f"{type(exc).__name__}: {exc}"


#: Characters of a completion the report shows (the rollouts file keeps it whole).
EXAMPLE_CHARS = 3000


def _keep_example(ex: dict[str, Any], row: dict[str, Any], maximize: bool) -> None:
    """Keep a step's best completion and the first completion of each failure kind (escaped:
    the text is the model's, and the template escapes it again)."""
    text = str(row.get("completion") or "")
    value = row.get("value")
    item = {"text": safe(text[:EXAMPLE_CHARS]), "cut": len(text) > EXAMPLE_CHARS, "value": value,
            "value_text": "-" if value is None else f"{float(value):.10g}",
            "status": safe(str(row.get("status") or "?")), "message": _short(row.get("message") or ""),
            "tokens": row.get("tokens"), "count": 1}
    if row.get("valid"):
        best = ex["best"]
        v = row.get("value")
        if v is not None and (best is None or (v > best["value"] if maximize else v < best["value"])):
            ex["best"] = item
    else:
        kind = item["status"]
        if kind in ex["failures"]:
            ex["failures"][kind]["count"] += 1
        else:
            ex["failures"][kind] = item


def load_run_data(path: str | Path, with_task: bool = True) -> RunData:
    info = load_run(path)
    rd = RunDir(path)
    data = RunData(info)
    data.maximize = (info.config.get("_task") or {}).get("direction", "maximize") == "maximize"
    last = info.steps_done - 1
    for row in read_jsonl(rd.rollouts):  # streamed: a real run's file is large
        step = int(row.get("step", -1))
        if step > last:  # an uncommitted step of a crashed run: not part of the run
            continue
        data.rewards.setdefault(step, []).append(float(row.get("reward") or 0.0))
        _keep_example(data.examples.setdefault(step, {"best": None, "failures": {}}), row, data.maximize)
        if not row.get("valid"):
            status = str(row.get("status") or "?")
            data.statuses.setdefault(step, Counter())[status] += 1
            data.messages[(safe(status), _short(row.get("message") or ""))] += 1
    if rd.archive.is_file():
        try:
            data.states = json.loads(rd.archive.read_text()).get("states", [])
        except (json.JSONDecodeError, AttributeError):
            data.states = []
    best = rd.best / "best.json"
    if best.is_file():
        try:
            data.best_file = json.loads(best.read_text())
        except json.JSONDecodeError:
            data.best_file = None
    if with_task:
        data.task, data.task_error = load_task(info.config)
    return data
