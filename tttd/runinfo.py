"""What a run directory says about its run, read without touching it (show, runs, report).

Works on finished, running, stopped and crashed runs: everything comes from the last committed
checkpoint (``loop.json``), ``config.json`` and the append-only logs (a torn last line is ignored).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tttd.config import ConfigError, RunConfig, config_from_dict
from tttd.ledger import Ledger, budget_stop
from tttd.rundir import RunDir, read_jsonl
from tttd.wording import FINISHED, RESUMABLE, STOPPED_BUDGET


@dataclass
class RunInfo:
    path: Path
    config: dict[str, Any]
    loop: dict[str, Any] | None
    metrics: list[dict[str, Any]] = field(default_factory=list)

    @property
    def steps_done(self) -> int:
        return self.loop["step"] + 1 if self.loop else 0

    @property
    def steps(self) -> int:
        return int(self.config.get("steps") or 0)

    @property
    def ledger(self) -> Ledger:
        return Ledger.from_dict(self.loop["ledger"]) if self.loop else Ledger()

    @property
    def best(self) -> dict[str, Any]:
        return (self.loop or {}).get("best") or {}

    def run_config(self) -> RunConfig | None:
        try:
            return config_from_dict({k: v for k, v in self.config.items() if not k.startswith("_")})
        except (ConfigError, TypeError):
            return None

    @property
    def stop_reason(self) -> str | None:
        """Why a budget cap keeps the run from its next step (None: no cap is in the way)."""
        cfg = self.run_config()
        if cfg is None or self.steps_done >= self.steps:
            return None
        return budget_stop(self.ledger, cfg)

    @property
    def status(self) -> str:
        if self.steps and self.steps_done >= self.steps:
            return FINISHED
        if self.stop_reason:
            return STOPPED_BUDGET
        return RESUMABLE

    @property
    def age_s(self) -> float:
        """Seconds since the run last wrote a log line or a checkpoint."""
        rd = RunDir(self.path)
        times = [p.stat().st_mtime for p in (rd.metrics, rd.config, rd.checkpoints / "LATEST") if p.exists()]
        return max(0.0, time.time() - max(times)) if times else 0.0

    @property
    def label(self) -> str:
        return str(self.path)


def load_run(path: str | Path, metrics: bool = True) -> RunInfo:
    """A run directory's state (NotARunError when it is not one)."""
    rd = RunDir(path)
    config = rd.read_config()
    loop = None
    ckpt = rd.latest_step_dir()
    if ckpt is not None and (ckpt / "loop.json").is_file():
        loop = json.loads((ckpt / "loop.json").read_text())
    info = RunInfo(Path(path), config, loop)
    if metrics:
        last = loop["step"] if loop else -1
        info.metrics = [m for m in read_jsonl(rd.metrics) if int(m.get("step", -1)) <= last]
    return info


def find_runs(root: str | Path, depth: int = 3) -> list[Path]:
    """Run directories (those with a config.json) under ``root``, sorted by path."""
    root = Path(root)
    found: list[Path] = []

    def walk(d: Path, left: int) -> None:
        if (d / "config.json").is_file() and (d / "checkpoint").is_dir():
            found.append(d)
        if left == 0:
            return
        try:
            children = sorted(p for p in d.iterdir() if p.is_dir() and not p.name.startswith("."))
        except OSError:
            return
        for c in children:
            if c.name not in ("checkpoint", "best", "prompts", "report", "tensorboard", "wandb"):
                walk(c, left - 1)

    walk(root, depth)
    return found


def human_age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"
