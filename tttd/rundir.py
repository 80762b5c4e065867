"""The run directory: layout, atomic writes, and the commit protocol that makes resume exact.

Layout (DESIGN.md)::

    runs/<task>-<time>/
      config.json        resolved configuration (+ versions, seeds, backend, model)
      metrics.jsonl      one line per completed step
      rollouts.jsonl     one line per rollout of completed steps
      archive.json       the archive after the last completed step (a copy for readers)
      prompts/           one JSON file of chat messages per distinct prompt (rollouts name it)
      checkpoint/
        LATEST           name of the last committed step directory (the commit point)
        step-000007/     archive.json, loop.json (step, RNG, ledger), policy/ (adapter, optimizer)
      best/              best artifact, its value, and the command that re-verifies it

Commit protocol: a step's checkpoint is written into ``checkpoint/step-N.tmp``, fsynced, renamed
to ``step-N``, and only then is ``LATEST`` replaced atomically. A crash (even ``kill -9``)
anywhere before that rename of ``LATEST`` leaves the previous step as the last completed one;
``metrics.jsonl`` and ``rollouts.jsonl`` are append-only and are truncated back to the last
committed step on resume, so no completed step is lost and none is duplicated.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Iterator

from tttd.atomic import atomic_write_json, atomic_write_text, fsync_dir

__all__ = ["RunDir", "NotARunError", "append_jsonl", "read_jsonl", "truncate_jsonl",
           "atomic_write_json", "atomic_write_text"]

CHECKPOINT = "checkpoint"
LATEST = "LATEST"
_STEP_DIR = re.compile(r"step-\d{6}")


class NotARunError(ValueError):
    """A directory that is not a tttd run directory."""


def append_jsonl(path: str | Path, rows: list[dict[str, Any]]) -> None:
    """Append rows (one JSON object per line) and fsync; a torn last line is repaired on resume."""
    if not rows:
        return
    with open(path, "a") as f:
        for row in rows:
            f.write(json.dumps(row, sort_keys=True, allow_nan=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_jsonl(path: str | Path) -> Iterator[dict[str, Any]]:
    """Complete JSON lines of a file; a torn (unterminated or unparsable) line ends the read."""
    p = Path(path)
    if not p.exists():
        return
    with open(p) as f:
        for line in f:
            if not line.endswith("\n"):
                return
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                return


def truncate_jsonl(path: str | Path, keep_through_step: int) -> None:
    """Keep the lines with ``step <= keep_through_step`` (and drop any torn tail), atomically."""
    p = Path(path)
    if not p.exists():
        return
    rows = [r for r in read_jsonl(p) if int(r.get("step", -1)) <= keep_through_step]
    text = "".join(json.dumps(r, sort_keys=True, allow_nan=False) + "\n" for r in rows)
    atomic_write_text(p, text)


class RunDir:
    """Paths and the commit protocol of one run directory."""

    def __init__(self, path: str | Path):
        self.path = Path(path)

    # paths --------------------------------------------------------------------------------
    @property
    def config(self) -> Path:
        return self.path / "config.json"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def rollouts(self) -> Path:
        return self.path / "rollouts.jsonl"

    @property
    def archive(self) -> Path:
        return self.path / "archive.json"

    @property
    def best(self) -> Path:
        return self.path / "best"

    @property
    def checkpoints(self) -> Path:
        return self.path / CHECKPOINT

    @property
    def prompts(self) -> Path:
        return self.path / "prompts"

    def save_prompt(self, prompt_hash: str, messages: Any) -> str:
        """Keep a prompt's text once (``prompts/<hash>.json``); rollouts name it by this path."""
        name = f"prompts/{prompt_hash}.json"
        target = self.path / name
        if not target.exists():
            self.prompts.mkdir(exist_ok=True)
            atomic_write_json(target, messages)
        return name

    # lifecycle ----------------------------------------------------------------------------
    def create(self, config: dict[str, Any]) -> None:
        if self.config.exists():
            raise FileExistsError(
                f"{self.path} already holds a run; use `tttd resume {self.path}` or another --out"
            )
        self.path.mkdir(parents=True, exist_ok=True)
        self.checkpoints.mkdir(exist_ok=True)
        atomic_write_json(self.config, config)

    def check(self) -> None:
        if not self.path.is_dir():
            raise NotARunError(f"not a run directory: {self.path} does not exist")
        if not self.config.is_file():
            raise NotARunError(f"not a run directory: {self.path} has no config.json")

    def read_config(self) -> dict[str, Any]:
        self.check()
        try:
            return json.loads(self.config.read_text())
        except json.JSONDecodeError as exc:
            raise NotARunError(f"{self.config} is not valid JSON: {exc}") from None

    # checkpoints --------------------------------------------------------------------------
    def latest_step_dir(self) -> Path | None:
        """The last committed step's checkpoint directory, or None before the first commit.

        A missing or garbled pointer in a run that has committed steps (a committed step
        directory, the readers' archive copy or ``best/``, all written only after a commit) is
        damage, not a fresh run: it raises :class:`NotARunError` instead of restarting from
        step 0 (which would truncate the logs and re-pay every sample)."""
        pointer = self.checkpoints / LATEST
        if not pointer.is_file():
            if self.has_committed():
                raise NotARunError(
                    f"{pointer} is missing but the run has committed steps: the run is damaged; "
                    "refusing to restart it from step 0")
            return None
        try:
            name = pointer.read_text().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise NotARunError(f"cannot read {pointer}: {exc}: the run is damaged") from None
        if not _STEP_DIR.fullmatch(name):
            raise NotARunError(f"{pointer} holds {name[:40]!r}, not a step name: the run is damaged")
        d = self.checkpoints / name
        if not d.is_dir():
            raise NotARunError(f"{pointer} names {name}, which is missing: the run is damaged")
        return d

    def has_committed(self) -> bool:
        """Whether any step was ever committed (traces that exist only after a commit)."""
        if self.archive.exists() or self.best.exists():
            return True
        if self.checkpoints.is_dir():
            return any(_STEP_DIR.fullmatch(p.name) for p in self.checkpoints.iterdir())
        return False

    def read_checkpoint(self, step_dir: Path) -> tuple[str, dict[str, Any]]:
        """The archive text and loop state of a committed step, checked before anything is
        changed: a truncated or unparsable file raises :class:`NotARunError` (one line)."""
        texts = {}
        for name in ("archive.json", "loop.json"):
            f = step_dir / name
            try:
                texts[name] = f.read_text()
                parsed = json.loads(texts[name])
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise NotARunError(
                    f"{f} is damaged ({type(exc).__name__}: {str(exc)[:120]}); refusing to resume"
                ) from None
            if not isinstance(parsed, dict):
                raise NotARunError(f"{f} is damaged (not a JSON object); refusing to resume")
            if name == "loop.json":
                loop = parsed
        for key in ("step", "ledger", "best"):
            if key not in loop:
                raise NotARunError(f"{step_dir / 'loop.json'} is damaged (no {key!r}); refusing to resume")
        return texts["archive.json"], loop

    def begin_step(self, step: int) -> Path:
        """A fresh temporary directory to write step ``step``'s checkpoint into."""
        tmp = self.checkpoints / f"step-{step:06d}.tmp"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        return tmp

    def commit_step(self, step: int, tmp: Path, keep: int = 2) -> Path:
        """Make the checkpoint in ``tmp`` the last completed step (atomic), prune old ones."""
        final = self.checkpoints / f"step-{step:06d}"
        for root, _dirs, files in os.walk(tmp):
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    os.fsync(f.fileno())
            fsync_dir(Path(root))
        if final.exists():  # a previous attempt renamed but died before LATEST: redo it
            shutil.rmtree(final)
        os.replace(tmp, final)
        fsync_dir(self.checkpoints)
        atomic_write_text(self.checkpoints / LATEST, final.name + "\n")
        self.prune(keep)
        return final

    def prune(self, keep: int = 2) -> None:
        """Remove uncommitted temporaries and all but the newest ``keep`` committed steps."""
        latest = self.latest_step_dir()
        steps = sorted(p for p in self.checkpoints.glob("step-*") if p.is_dir())
        committed = [p for p in steps if not p.name.endswith(".tmp")]
        if latest is not None:
            committed = [p for p in committed if p.name <= latest.name]
        keep_set = set(committed[-keep:]) | ({latest} if latest else set())
        for p in steps:
            if p not in keep_set:
                shutil.rmtree(p, ignore_errors=True)

    def repair_logs(self, last_step: int) -> None:
        """On resume: drop log lines of uncommitted steps (and a torn last line)."""
        truncate_jsonl(self.metrics, last_step)
        truncate_jsonl(self.rollouts, last_step)
