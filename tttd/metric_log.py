"""Optional metric logs of a run: TensorBoard and W&B, both written offline into the run directory.

``log="tensorboard"`` writes event files to ``RUN/tensorboard/`` (``tensorboardX``, or
``torch.utils.tensorboard`` with the ``tensorboard`` package); ``log="wandb"`` starts W&B in
offline mode in ``RUN/wandb/`` (``wandb sync`` uploads it later if you want). Both receive the
same numbers as ``metrics.jsonl`` (nested spend counters flattened as ``spend/...``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

KINDS = ("tensorboard", "wandb")


def _kinds(spec: str | None) -> list[str]:
    kinds = [k.strip().lower() for k in (spec or "").split(",") if k.strip()]
    for k in kinds:
        if k not in KINDS:
            from tttd.config import ConfigError

            raise ConfigError(f"unknown --log {k!r}; choose from {', '.join(KINDS)}")
    return kinds


def _summary_writer():
    try:
        from tensorboardX import SummaryWriter
    except ImportError:
        try:
            from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package
        except ImportError as exc:
            raise ImportError("--log tensorboard needs tensorboardX (pip install 'tttd[tensorboard]') "
                              f"or tensorboard: {exc}") from None
    return SummaryWriter


def check_loggers(spec: str | None) -> None:
    """ConfigError / ImportError (one line) for a log that cannot be written."""
    for k in _kinds(spec):
        if k == "tensorboard":
            _summary_writer()
        elif k == "wandb":
            try:
                import wandb  # noqa: F401
            except ImportError:
                raise ImportError("--log wandb needs wandb (pip install 'tttd[wandb]')") from None


def scalars(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """The numeric entries of a metrics row, nested dicts flattened with '/'."""
    out: dict[str, float] = {}
    for k, v in metrics.items():
        if isinstance(v, dict):
            out.update(scalars(v, f"{prefix}{k}/"))
        elif isinstance(v, (int, float)) and v is not None:
            out[f"{prefix}{k}"] = float(v)
    return out


class Loggers:
    def __init__(self, spec: str | None, run_dir: str | Path):
        self.sinks: list[Any] = []
        self.wandb = None
        run_dir = Path(run_dir)
        for k in _kinds(spec):
            if k == "tensorboard":
                self.sinks.append(_summary_writer()(logdir=str(run_dir / "tensorboard")))
            elif k == "wandb":
                import wandb

                os.environ.setdefault("WANDB_MODE", "offline")
                (run_dir / "wandb").mkdir(exist_ok=True)
                self.wandb = wandb.init(mode="offline", dir=str(run_dir), project="tttd", name=run_dir.name)

    def log(self, metrics: dict[str, Any]) -> None:
        step = int(metrics.get("step", 0))
        values = scalars({k: v for k, v in metrics.items() if k != "step"})
        for w in self.sinks:
            for k, v in values.items():
                w.add_scalar(k, v, step)
            w.flush()
        if self.wandb is not None:
            self.wandb.log(values, step=step)

    def close(self) -> None:
        for w in self.sinks:
            w.close()
        if self.wandb is not None:
            self.wandb.finish()


def open_loggers(spec: str | None, run_dir: str | Path) -> Loggers:
    return Loggers(spec, run_dir)
