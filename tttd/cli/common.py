"""Small pieces of the command line's first-hour behaviour, kept out of ``tttd.cli``.

- :func:`default_preset`: ``tttd run TASK`` with no preset on a tiny local model takes the
  ``demo`` preset (sized for a CPU), and says so, instead of the paper's 8 x 64 samples of 26,000
  tokens (which ran for 10+ minutes without output on the tiny model).
- :func:`finished_message`: ``tttd resume`` of a finished run says so before loading any model.
- :func:`quiet_broken_pipe`: ``tttd show RUN | head -1`` ends quietly (no BrokenPipeError).
- :class:`OneLineParser`: a bad flag value is one line, not the whole usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable


def is_tiny_model(model: str | None) -> bool:
    """``tiny``/``small`` (built locally) or a folder that tttd built (``tttd_build.json``)."""
    from tttd.config import RunConfig

    model = model or RunConfig.model
    if model in ("tiny", "small"):
        return True
    return (Path(model) / "tttd_build.json").is_file()


def default_preset(model: str | None, backend: str | None) -> str | None:
    """The preset a run takes when none is given: ``demo`` for a tiny local model, else none
    (the defaults, which are the paper's settings)."""
    if (backend or "local") == "local" and is_tiny_model(model):
        return "demo"
    return None


PRESET_NOTE = ("no --preset given: using 'demo' (sized for the tiny model on a CPU: {steps} steps of "
               "{groups} x {group_size} samples, {max_tokens} tokens); --preset paper for the paper's settings")


def finished_message(run_dir: str | Path, steps: int) -> str | None:
    """A one-line note when the run at ``run_dir`` already completed ``steps`` steps, else None."""
    from tttd.rundir import RunDir

    rd = RunDir(run_dir)
    ckpt = rd.latest_step_dir()
    if ckpt is None:
        return None
    _, loop = rd.read_checkpoint(ckpt)  # a damaged checkpoint is refused with one line
    done = int(loop["step"]) + 1
    if done < steps:
        return None
    best = loop.get("best", {}).get("value")
    return (f"{run_dir} already finished its {steps} steps (best value {best}); nothing to resume. "
            f"To continue it: tttd resume {run_dir} --steps N (N > {steps})")


def quiet_broken_pipe(fn: Callable[[], int]) -> int:
    """Run ``fn`` and flush stdout; a reader that went away (``| head``) ends the command quietly."""
    try:
        code = fn()
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # Python flushes stdout again at exit; point it at /dev/null so that flush is silent too.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 0


def describe_preset(cfg: Any) -> str:
    return PRESET_NOTE.format(steps=cfg.steps, groups=cfg.groups, group_size=cfg.group_size,
                              max_tokens=cfg.max_tokens)


class OneLineParser(argparse.ArgumentParser):
    """argparse's parser, but a bad flag value (``--lr abc``, ``--backend foo``) is one line and
    exit 2, not the whole usage text (issue 23). Sub-parsers inherit the class."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")
