"""``--async-steps K`` (issue 35): sample up to K steps ahead, so evaluation never waits alone.

The synchronous loop (K = 0, the default and the paper's mode) samples step t, evaluates it,
trains on it and only then samples step t+1. With K >= 1, step t+K is sampled (and its programs
start in the executor) *before* step t's evaluations are awaited and its update is trained:

* **Policy.** Step s is sampled by the policy after step ``s-K-1``'s update (its
  ``policy_version``; -1 = the initial policy). Said as in the issue: the sampler for step t+1
  starts from the policy after step t-K's update while step t's candidates are evaluated and
  its update is trained. Steps 0..K all sample from the initial policy.
* **Selection.** Step s's start states are selected (PUCT, as always) from the archive as it
  stood when step ``s-K-1`` was committed: the last completed evaluation when s is sampled.
  Their prompts are built then too, and so are the rivals a racing task compares their
  children with (:meth:`tttd.archive.Archive.rival`), which ``inflight.json`` keeps (a file
  written before it had them: no rival, every case runs).
* **Loss.** Nothing changes in the trainer: each sample carries the log-probabilities of the
  policy that sampled it (as the synchronous loop's), so the importance ratio
  ``pi_theta / pi_sampler`` corrects for the staleness. It is unclipped by default, as the
  paper; ``--clip EPS`` bounds it (the PPO surrogate, :mod:`tttd.losses`); the further off-policy
  (larger K), the further the ratios move from 1 (``kl_sample_train`` in ``metrics.jsonl``).
* **Where the overlap is.** Everything runs in the loop's thread: sampling of step t+K, then
  waiting for step t's evaluations, then training. What overlaps is the executor's evaluation
  (of steps t..t+K) with sampling and training. On the local backend (hf or vLLM engine) the
  sampler and the trainer therefore share one GPU by turns, never at once: no second copy of
  the weights and no lock; the sampler never waits for a training step, since step t+K is
  sampled before step t trains. On the tinker backend the sampling requests of step t+K go to
  the current sampling client (the weights saved after step t-1) before step t's
  forward_backward/optim_step are sent: the service trains while the evaluations of step
  t+1..t+K run.
* **A parent that left the archive.** A state selected for step s can be pruned by the updates
  of the steps evaluated before s; its group still trains and counts for the best, but its
  children do not join the archive (``child`` is null in ``rollouts.jsonl``).

Exact resume. Steps are committed whole and in order through :class:`tttd.runstate.RunState`;
each step's checkpoint also holds ``inflight.json``: the K steps sampled ahead (their start
states, prompts, samples and policy version). A resumed run loads the policy committed with
step t (exactly the policy that samples step t+K+1), launches the in-flight steps' evaluations
again and continues: it repeats an uninterrupted run with the same seed (on the CPU local
backend, exactly). Ctrl-C / SIGTERM: the step being processed is committed, with the samples of
the steps in flight (their evaluations, cancelled, run again on resume). Budgets:
``--max-samples`` is exact (a step that the cap would not let run is never sampled), the
``--max-usd`` and ``--max-hours`` caps stop the run at a step boundary as the synchronous loop
does, having paid for the sampling of up to K steps in flight, which are kept and evaluated on a
resume with a raised cap. Steps that no checkpoint sampled ahead (a run extended with ``resume
--steps``, or after a ``--max-samples`` stop) are sampled from the current policy.

Spend: a step's ``metrics.jsonl`` usage is what was spent while it was processed (its training
and the sampling of step t+K); the ledger's totals are exact.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tttd.rundir import NotARunError
from tttd.step_parts import launch_group, parent_of, rivals_for
from tttd.types import Sample, State

INFLIGHT = "inflight.json"
INFLIGHT_VERSION = 1


@dataclass
class Ahead:
    """A step sampled ahead: what it was sampled from, and its launched evaluations."""

    step: int
    version: int  # the last step whose update the sampling policy had (-1: the initial policy)
    starts: list[State]
    prompts: list[Any]
    samples: list[list[Sample]]
    pending: list[list[tuple[Any, Any]]] | None = None  # per group, (candidate, future); None: not launched
    #: per group, the child to beat (Archive.rival) as the archive stood when the step was sampled;
    #: kept so that a resumed run launches (and races) the step exactly as the first run did
    rivals: list[State | None] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.step, "policy_version": self.version, "starts": [s.to_dict() for s in self.starts],
                "prompts": self.prompts, "samples": [[x.to_dict() for x in g] for g in self.samples],
                "rivals": [None if r is None else r.to_dict() for r in self.rivals or [None] * len(self.starts)]}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "Ahead":
        starts = [State.from_dict(s) for s in d["starts"]]
        rivals = [None if r is None else State.from_dict(r) for r in d.get("rivals", [None] * len(starts))]
        if len(rivals) != len(starts):
            raise ValueError(f"{len(rivals)} rivals for {len(starts)} start states")
        return cls(step=int(d["step"]), version=int(d["policy_version"]), starts=starts, prompts=list(d["prompts"]),
                   samples=[[Sample.from_dict(x) for x in g] for g in d["samples"]], rivals=rivals)


class Pipeline:
    """The steps of a :class:`tttd.loop.Discovery` run with ``async_steps`` K >= 1."""

    def __init__(self, run: Any):
        self.run = run
        self.k = int(run.cfg.async_steps)
        self.ahead: dict[int, Ahead] = {}

    # ------------------------------------------------------------------ checkpoint
    def dumps(self) -> str:
        return json.dumps({"version": INFLIGHT_VERSION, "async_steps": self.k,
                           "steps": [self.ahead[s].to_dict() for s in sorted(self.ahead)]})

    def load(self, step_dir: Path | None) -> None:
        """The steps in flight when ``step_dir`` was committed (None: none, a start from the
        roots). A missing or damaged file refuses the resume (:class:`NotARunError`)."""
        self.ahead = {}
        if step_dir is None:
            return
        path = Path(step_dir) / INFLIGHT
        if not path.is_file():
            raise NotARunError(f"{step_dir} has no {INFLIGHT} (the steps sampled ahead by --async-steps); "
                               "refusing to resume")
        try:
            data = json.loads(path.read_text())
            if data.get("version") != INFLIGHT_VERSION:
                raise ValueError(f"unknown version {data.get('version')!r}")
            items = [Ahead.from_dict(d) for d in data["steps"]]
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise NotARunError(f"{path} is damaged ({type(exc).__name__}: {str(exc)[:120]}); refusing to resume") from None
        self.ahead = {a.step: a for a in items}

    # ------------------------------------------------------------------ one step
    def run_step(self, step: int) -> dict[str, Any]:
        """Sample what is missing up to step+K (launching it), then finish step ``step`` (the
        loop's own evaluate -> advantages -> train -> record -> commit)."""
        run = self.run
        t = {"start": time.perf_counter()}
        if run._usage_mark is None:
            run._usage_mark = run.policy.usage().to_dict()
        select_s, sample_s = self._fill(step)
        t["select"] = t["start"] + select_s
        t["sample"] = t["select"] + sample_s
        cur = self.ahead.pop(step)
        return run._finish_step(step, cur.starts, cur.prompts, cur.samples, cur.pending, t,
                                version=cur.version, extra={INFLIGHT: self.dumps()})

    def _fill(self, step: int) -> tuple[float, float]:
        run, cfg = self.run, self.run.cfg
        for s in sorted(self.ahead):  # loaded from a checkpoint: their evaluations start again
            a = self.ahead[s]
            if a.pending is None:
                a.pending = [launch_group(run.task, run.submit, st, g, rival=r) for st, g, r in zip(a.starts, a.samples, a.rivals)]
        select_s = sample_s = 0.0
        for s in range(step, min(step + self.k, cfg.steps - 1) + 1):
            if s in self.ahead:
                continue
            if s > step and not self._may_run(step, s):
                break
            t0 = time.perf_counter()
            starts = run.archive.select(cfg.groups)
            rivals = rivals_for(run.task, run.archive, starts)
            prompts = [run.task.prompt(x, parent_of(run.archive, x)) for x in starts]
            t1 = time.perf_counter()
            samples, pending, _ = run._sample_and_launch(s, starts, prompts, rivals)
            select_s += t1 - t0
            sample_s += time.perf_counter() - t1
            self.ahead[s] = Ahead(s, step - 1, starts, prompts, samples, pending, rivals)
        return select_s, sample_s

    def _may_run(self, step: int, s: int) -> bool:
        """Whether ``--max-samples`` lets step ``s`` run (so it is not sampled when it would not)."""
        cap = self.run.cfg.max_samples
        per_step = self.run.cfg.groups * self.run.cfg.group_size
        return cap is None or self.run.ledger.samples + (s - step + 1) * per_step <= cap
