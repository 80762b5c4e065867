"""The run's state, committed and restored as a whole (issue 32).

Everything a run needs to continue lives in one :class:`RunState`: the step to run next, the
archive (with its RNG), the best solution, the spend ledger, the scorer-guard counter and the
notes said once (a dropped api parameter). The policy's own state (weights, optimizer, its RNG)
is saved by the backend into the step's ``policy/`` folder; ``loop.json`` names where it is.

:func:`commit` writes all of it for one step (``archive.json``, ``loop.json``, ``policy/``) and
:func:`restore` reads it back field by field, through :meth:`RunState.to_loop` and
:meth:`RunState.from_loop`, which mirror each other (a test asserts commit -> restore -> commit
is byte-identical).

Two checkpoints may be involved in a restore. The **newest committed** step is the record of what
was spent and found: its ledger, best and scorer-guard counter are always the ones kept, so a paid
step is never forgotten and the best never goes back. The **newest resumable** step (the tinker
backend saves weights on its service every few steps only; the other steps' ``policy/`` is
marked incomplete) gives the archive and the step to continue from, with the policy state to load:
the steps after it are run again (and paid again). With no resumable step at all (a run stopped
before its first complete service save) the steps start over from the roots, the record kept.

Nothing here keeps state between calls, so a later asynchronous loop can commit a state it built
from several steps in flight the same way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tttd.archive import Archive
from tttd.ledger import Ledger
from tttd.rundir import NotARunError, RunDir, atomic_write_json, atomic_write_text

#: Version of ``loop.json``'s layout (1: step, ledger, best; 2: + scorer_errors, notes, policy).
LOOP_VERSION = 2


@dataclass
class Best:
    value: float | None = None
    reward: float | None = None
    step: int | None = None
    artifact: dict[str, Any] = field(default_factory=dict)
    message: str = ""


@dataclass
class RunState:
    """What a run is between two steps (see the module docstring)."""

    archive: Archive
    step: int = 0  # the next step to run
    ledger: Ledger = field(default_factory=Ledger)
    best: Best = field(default_factory=Best)
    scorer_errors: int = 0  # the scorer-guard counter (tttd.task_errors.ScorerGuard)
    notes: list[str] = field(default_factory=list)  # said once each, kept (tttd show prints them)

    def to_loop(self, step: int, policy: str | None) -> dict[str, Any]:
        """``loop.json`` of committed step ``step``; ``policy``: the step folder's policy state
        (``"policy"``) or None when the policy is not saved (frozen or not training)."""
        return {"version": LOOP_VERSION, "step": step, "ledger": self.ledger.to_dict(),
                "best": dict(self.best.__dict__), "scorer_errors": self.scorer_errors,
                "notes": list(self.notes), "policy": policy}

    @classmethod
    def from_loop(cls, archive: Archive, loop: dict[str, Any]) -> "RunState":
        """The state after the step ``loop.json`` records (its ``step`` + 1 runs next)."""
        return cls(archive=archive, step=int(loop["step"]) + 1, ledger=Ledger.from_dict(loop["ledger"]),
                   best=Best(**loop["best"]), scorer_errors=int(loop.get("scorer_errors", 0)),
                   notes=[str(n) for n in loop.get("notes", [])])


def commit(run_dir: RunDir, state: RunState, step: int, policy: Any | None, fault=lambda point: None,
           extra: dict[str, str] | None = None) -> str:
    """Write step ``step``'s checkpoint (archive, loop state, ``policy.save`` when a policy is
    given, and the ``extra`` files: name -> text, e.g. the in-flight steps of ``--async-steps``)
    and make it the last committed step (atomic, see :mod:`tttd.rundir`). Returns the archive's
    JSON text (the readers' copy is written from it)."""
    tmp = run_dir.begin_step(step)
    for name, text in (extra or {}).items():
        atomic_write_text(tmp / name, text)
    archive_json = state.archive.dumps()
    atomic_write_text(tmp / "archive.json", archive_json)
    fault("checkpoint")
    if policy is not None:
        policy.save(str(tmp / "policy"))
    atomic_write_json(tmp / "loop.json", state.to_loop(step, "policy" if policy is not None else None))
    run_dir.commit_step(step, tmp)
    return archive_json


@dataclass
class Restored:
    """What :func:`restore` found: the state, and the policy folder to load (None: none)."""

    state: RunState
    policy_dir: Path | None
    repair_through: int  # the logs keep the lines of steps <= this
    step_dir: Path | None = None  # the checkpoint continued from (None: from the roots)


def _parse(step_dir: Path, run_dir: RunDir) -> tuple[Archive, dict[str, Any]]:
    archive_text, loop = run_dir.read_checkpoint(step_dir)
    try:
        archive = Archive.from_dict(json.loads(archive_text))
        RunState.from_loop(archive, loop)  # every field readable, or refused here
    except (KeyError, TypeError, ValueError) as exc:
        raise NotARunError(f"{step_dir} is damaged ({type(exc).__name__}: {str(exc)[:120]}); "
                           "refusing to resume") from None
    return archive, loop


def restore(run_dir: RunDir, fresh_archive) -> Restored | None:
    """The state to continue from, read before anything is changed; None before the first
    commit. ``fresh_archive()``: an empty archive with the run's settings (for a restart from the
    roots when no step has a complete policy state)."""
    latest = run_dir.latest_step_dir()
    if latest is None:
        return None
    archive, record = _parse(latest, run_dir)
    resumable = run_dir.latest_resumable_step_dir()
    if resumable == latest:
        return Restored(RunState.from_loop(archive, record), _policy_dir(latest, record), int(record["step"]), latest)
    kept = RunState.from_loop(fresh_archive(), record)  # the record: ledger, best, guard, notes
    if resumable is None:  # before the first complete policy state: the steps start over
        kept.step = 0
        return Restored(kept, None, -1)
    archive, loop = _parse(resumable, run_dir)
    kept.archive, kept.step = archive, int(loop["step"]) + 1
    return Restored(kept, _policy_dir(resumable, loop), int(loop["step"]), resumable)


def _policy_dir(step_dir: Path, loop: dict[str, Any]) -> Path | None:
    name = loop.get("policy", "policy")  # version 1 did not say: the folder when it exists
    d = step_dir / name if name else None
    return d if d is not None and d.exists() else None
