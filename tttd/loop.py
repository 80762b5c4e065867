"""The discovery loop (DESIGN.md "What a run is"): one problem, one policy, many steps.

Each step, top to bottom: select start states (PUCT) -> prompt -> sample -> evaluate (sandbox,
then the task's trusted verifier) -> archive -> advantages (entropic, per group) -> train (one
importance-sampling step) -> checkpoint (atomic commit, see ``tttd.rundir``).

Overlap: sampling is done in chunks of groups; each chunk's programs are submitted to the
executor as soon as it is sampled, so evaluation runs while the next chunk samples. Results are
taken as they finish (:mod:`tttd.streaming`): a candidate's trusted verdict as soon as its program
ends, a group's advantages and training data when its last candidate is judged, the archive in
group order. The optimizer step waits for every group, and the next step samples from the
updated weights: the loop stays fully on-policy, as the paper's synchronous mode
(``--async-steps K`` samples ahead, :mod:`tttd.async_steps`).

Determinism: the sampling seed of every group is derived from (run seed, step, group), and the
archive's RNG is checkpointed, so a resumed run repeats an uninterrupted one (up to the backend's
own sampling nondeterminism; exact on the CPU local backend).

The run's state (archive, best, ledger, scorer-guard counter, step) is one
:class:`~tttd.runstate.RunState`, committed and restored as a whole (issue 32); how the run is
built from its configuration is :mod:`tttd.build`, the stateless parts of a step
:mod:`tttd.step_parts`.
"""

from __future__ import annotations

import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tttd import faults, runlock, signals
from tttd.archive import Archive
from tttd.async_steps import Pipeline
from tttd.build import (build_policy, build_task, check_task_unchanged, describe_run,
                        record_task_fingerprint, write_best)
from tttd.config import RunConfig
from tttd.faults import FaultInjected, fault_point  # noqa: F401 - FaultInjected: re-exported
from tttd.evaluator import Evaluator
from tttd.ledger import budget_stop, check_budget, price_for, usage_delta
from tttd.metric_log import check_loggers, open_loggers
from tttd.objective import GroupAdvantages, OneGroup, combine_groups, one_group_advantages
from tttd.policy import Policy, SamplingParams, TrainConfig
from tttd.progress import why_no_train
from tttd.registry import task_fingerprint
from tttd.rundir import RunDir, append_jsonl, atomic_write_text
from tttd.runstate import Best, RunState, commit, restore
from tttd.step_parts import (child_state, derive_seed, launch_group, metrics_row, parent_of,  # noqa: F401
                             prompt_hash, rivals_for, rollout_rows, verdict)
from tttd.streaming import InOrder, finished_first
from tttd.task import Task
from tttd.task_errors import ScorerGuard, checked_roots, scorer_errors
from tttd.types import Evaluation, State, TrainDatum
from tttd.wording import raise_cap_command, step_text


class Discovery:
    """A run: the task, policy, executor and :class:`RunState`, and the step that ties them."""

    def __init__(self, cfg: RunConfig, run_dir: str | Path, *, task: Task | None = None,
                 policy: Policy | None = None, on_step: Callable[[dict[str, Any]], None] | None = None,
                 on_event: Callable[[str], None] | None = None):
        self.cfg = cfg
        self.dir = RunDir(run_dir)
        self.task = task or build_task(cfg)
        self.task.use_rule(cfg.rule)  # issue 37: several objectives (sets the objective the archive ranks by)
        preflight = getattr(self.task, "preflight", None)  # e.g. a GPU task where no GPU is visible
        if callable(preflight):
            preflight()
        self.on_step = on_step or (lambda m: None)
        self.on_event = on_event or (lambda s: None)
        self._policy = policy
        self.state = RunState(archive=self._new_archive())
        self._best_dirty = False
        self.evaluator = Evaluator(cfg, self.dir.path, self.on_event)
        self._usage_mark: dict[str, int] | None = None  # the policy's usage at the last step's end
        self.stopped: str | None = None  # why a budget cap stopped the run
        self._committed: int | None = None  # the last step this process committed
        self._loggers = None
        self.pipeline = Pipeline(self) if cfg.async_steps else None  # issue 35: --async-steps K

    def _new_archive(self) -> Archive:
        cfg = self.cfg
        return Archive(maximize=self.task.objective.maximize, reuse=cfg.reuse, c=cfg.puct_c,
                       topk_children=cfg.topk_children, max_size=cfg.archive_size,
                       visit_counting=cfg.visit_counting, seed=cfg.seed,
                       directions=self.task.metric_directions())

    # the run state's fields, as the callers have always read them
    archive = property(lambda self: self.state.archive, lambda self, v: setattr(self.state, "archive", v))
    step = property(lambda self: self.state.step, lambda self, v: setattr(self.state, "step", v))
    ledger = property(lambda self: self.state.ledger, lambda self, v: setattr(self.state, "ledger", v))
    best = property(lambda self: self.state.best, lambda self, v: setattr(self.state, "best", v))

    # ------------------------------------------------------------------ setup and resume
    @property
    def policy(self) -> Policy:
        if self._policy is None:
            self.on_event(f"loading {self.cfg.backend} policy {self.cfg.model}")
            self._policy = build_policy(self.cfg)
        return self._policy

    def start(self) -> None:
        """A new run: load the policy (fail before anything is written), write config and roots."""
        self._check_options()
        getattr(self.task, "prepare", lambda: None)()  # the task's data, also before anything is written
        roots = self._roots()  # a task mistake is one line before a model loads or a file is written
        _ = self.policy
        runlock.acquire(self.dir.path)  # issue 24: one process per run directory
        self.dir.create(self.describe())
        self._add_roots(roots)

    def _roots(self) -> list[State]:
        return checked_roots(self.task, self.cfg.groups, np.random.default_rng(self.cfg.seed))

    def _add_roots(self, roots: list[State] | None = None) -> None:
        roots = roots if roots is not None else self._roots()
        self.archive.add_roots(roots)
        for s in roots:
            note = s.metrics.get("message") if isinstance(s.metrics, dict) else None  # a root's verdict
            self._track_best(s.value, s.reward, -1, s.artifact, "initial state" + (f": {note}" if note else ""))

    def restore(self, accept_task_change: bool = False) -> None:
        """Continue after the last committed step (:func:`tttd.runstate.restore`); logs of
        uncommitted steps are dropped. Everything is checked before anything is changed: a
        damaged checkpoint or a changed task (unless ``accept_task_change``) raises
        :class:`~tttd.rundir.NotARunError` and leaves every file as it was."""
        self._check_options()
        self.dir.check()
        runlock.acquire(self.dir.path)  # issue 24: before anything is read for writing
        found = restore(self.dir, self._new_archive)
        check_task_unchanged(self.dir, self.cfg, self.task_fingerprint(), accept_task_change)
        if self.pipeline is not None:  # the steps sampled ahead (read and checked, nothing changed)
            self.pipeline.load(found.step_dir if found is not None else None)
        if found is None:  # died before the first commit: start the steps over
            self.dir.repair_logs(-1)
            self._add_roots()
            return
        self.state = found.state
        if accept_task_change:
            self.state.scorer_errors = 0  # the errors counted were the old scorer's
        if self.step >= self.cfg.steps:
            return  # finished: nothing to load or repair
        if found.policy_dir is not None:
            self.policy.load(str(found.policy_dir))
        self.dir.repair_logs(found.repair_through)
        if len(self.archive) == 0:  # no complete policy state yet: from the roots, the record kept
            self._add_roots()
        self.archive.save(self.dir.archive)  # readers' copies may predate a crash after commit
        self.write_best()
        if accept_task_change:
            record_task_fingerprint(self.dir, self.task_fingerprint())

    def task_fingerprint(self) -> str:
        return task_fingerprint(self.cfg.task, self.task, self.cfg.task_options)

    def _check_options(self) -> None:
        """Budget caps and metric logs that cannot work fail here, before anything is written."""
        check_budget(self.cfg)
        check_loggers(self.cfg.log)

    def describe(self) -> dict[str, Any]:
        return describe_run(self.cfg, self.task, self.policy, self.task_fingerprint())

    # ------------------------------------------------------------------ the loop
    def run(self) -> dict[str, Any]:
        interrupted = False
        try:
            with signals.handling(), signals.steps():
                while self.step < self.cfg.steps:
                    sig = signals.requested()  # issue 24: Ctrl-C / SIGTERM stop at a step boundary
                    if sig is not None:
                        raise signals.Stopped(signals.stop_message(sig, self.step, str(self.dir.path)), sig)
                    self.stopped = budget_stop(self.ledger, self.cfg)  # at a step boundary, before it
                    if self.stopped:
                        self.on_event(f"stopped before {step_text(self.step)} of {self.cfg.steps}: {self.stopped}; "
                                      f"to go on: {raise_cap_command(self.dir.path, self.stopped, self.ledger, self.cfg, self.step)}")
                        break
                    self._one_step()
                    self.step += 1
        except BaseException:
            interrupted = True
            raise
        finally:
            self._close(interrupted)
        return self.summary()

    def _one_step(self) -> None:
        try:
            metrics = self.run_step(self.step)
            self.on_step(metrics)
            self._loggers = self._loggers or open_loggers(self.cfg.log, self.dir.path)
            self._loggers.log(metrics)
        except faults.RunFault:
            raise
        except Exception as exc:  # issue 24: a full / read-only / vanished run directory
            fault = faults.disk_fault(exc, self.dir.path, self.step, self._committed == self.step)
            if fault is None:
                raise
            faults.discard_uncommitted(self.dir.path, self.step)
            raise fault from None

    def _close(self, interrupted: bool) -> None:
        if self._loggers is not None:
            try:
                self._loggers.close()
            except Exception:  # noqa: BLE001 - e.g. a full disk: the run's own error wins
                if not interrupted:
                    raise
            self._loggers = None
        in_flight = self.pipeline is not None and bool(self.pipeline.ahead)  # kept in the checkpoint
        self.evaluator.close(interrupted or in_flight)  # their evaluations run again on resume
        runlock.release(self.dir.path)

    def submit(self, program) -> Future:
        """Run a program in the sandbox (:class:`tttd.evaluator.Evaluator`): tasks launch with it."""
        return self.evaluator.submit(program, self.step)

    def run_step(self, step: int) -> dict[str, Any]:
        """select -> sample/launch -> evaluate/archive -> advantages -> train -> commit."""
        if self.pipeline is not None:  # --async-steps K: the same parts, sampled K steps ahead
            return self.pipeline.run_step(step)
        cfg = self.cfg
        t = {"start": time.perf_counter()}
        if self._usage_mark is None:
            self._usage_mark = self.policy.usage().to_dict()
        starts = self.archive.select(cfg.groups)
        prompts = [self.task.prompt(s, parent_of(self.archive, s)) for s in starts]
        t["select"] = time.perf_counter()
        samples, pending, sample_s = self._sample_and_launch(step, starts, prompts,
                                                             rivals_for(self.task, self.archive, starts))
        t["sample"] = t["select"] + sample_s
        return self._finish_step(step, starts, prompts, samples, pending, t)

    def _finish_step(self, step, starts, prompts, samples, pending, t, version: int | None = None,
                     extra: dict[str, str] | None = None) -> dict[str, Any]:
        """evaluate/archive -> advantages -> train -> record -> commit, for samples already
        launched (``version``: the policy that sampled them, None = on-policy; ``extra``: more
        files for the step's checkpoint)."""
        evaluations, child_ids, adv, batch = self._evaluate_and_archive(step, starts, samples, pending)
        t["evaluate"] = time.perf_counter()
        train_metrics, skipped = self._train(batch, adv, len(starts))
        t["train"] = time.perf_counter()
        fault_point("train", step)
        metrics = self._record(step, starts, prompts, samples, evaluations, adv, child_ids, train_metrics, t, skipped,
                               version)
        self._commit(step, extra)
        metrics["seconds_checkpoint"] = round(time.perf_counter() - t["train"], 4)
        return metrics

    def _sample_and_launch(self, step, starts, prompts, rivals):
        """Sample in chunks of groups; each chunk's programs go to the executor as soon as it is
        sampled, so they run while the next chunk samples (``rivals``: :func:`rivals_for`)."""
        cfg, task = self.cfg, self.task
        chunk = cfg.sample_chunk_groups or len(starts)
        samples: list[list] = []
        pending: list[list[tuple[Any, Future | None]]] = []
        sample_s = 0.0
        for c0 in range(0, len(starts), chunk):
            ts = time.perf_counter()
            part = prompts[c0:c0 + chunk]
            params = SamplingParams(max_tokens=cfg.max_tokens, temperature=cfg.temperature,
                                    stop=list(task.stop), seed=derive_seed(cfg.seed, step, c0),
                                    forced_answer=cfg.forced_answer,
                                    # one seed per group: identical prompts must not repeat a group
                                    seeds=[derive_seed(cfg.seed, step, g, 1) for g in range(c0, c0 + len(part))])
            got = self.policy.sample(part, cfg.group_size, params)
            sample_s += time.perf_counter() - ts
            for g, group in enumerate(got, start=c0):
                samples.append(group)
                pending.append(launch_group(task, self.submit, starts[g], group, rival=rivals[g]))
        fault_point("sample", step)
        return samples, pending, sample_s

    def _evaluate_and_archive(self, step, starts, samples, pending):
        """Streaming (:mod:`tttd.streaming`): each candidate's trusted verdict as soon as its
        evaluation finishes, whatever its group; a group's advantages and training data when its
        last verdict is in; the archive, the best and the child filter group by group in group
        order, each group as soon as it and the groups before it are complete (ids and ties never
        depend on timing). Returns the evaluations, the archive ids of the children, the
        advantages and the training batch (in group order)."""
        cfg = self.cfg
        evaluations: list[list[Any]] = [[None] * len(p) for p in pending]
        parts: list[OneGroup | None] = [None] * len(pending)
        batch: list[list[TrainDatum]] = [[] for _ in pending]
        child_ids: list[list[str | None]] = []
        order = InOrder([len(p) for p in pending])

        def complete(g: int) -> None:  # the group's last verdict is in: its advantages and data
            evs = evaluations[g]
            parts[g] = part = one_group_advantages(g, [ev.reward for ev in evs], estimator=cfg.objective,
                                                   beta=cfg.beta, exclude=scorer_errors([evs])[0])  # scorer errors: no signal
            if part.advantages is not None:  # appended (forced-answer) tokens: advantage 0, mask 0
                batch[g] = [TrainDatum.from_sample(s, a) for i, (s, a) in enumerate(zip(samples[g], part.advantages))
                            if s.tokens and i not in part.excluded]

        for g in range(len(pending)):
            if not pending[g]:
                complete(g)
        for g, i, cand, result in finished_first(pending, self.evaluator.result):
            evaluations[g][i] = verdict(self.task, cand, result, starts[g])
            del cand, result  # the sandbox result is freed once judged
            if order.done(g):
                complete(g)
            child_ids.extend(self._archive_group(step, starts[h], evaluations[h]) for h in order.release())
        child_ids.extend(self._archive_group(step, starts[h], evaluations[h]) for h in order.release())
        self.evaluator.check_infrastructure(step)
        fault_point("evaluate", step)
        guard = ScorerGuard()
        guard.count = self.state.scorer_errors  # the counter survives resume (issue 32)
        guard.check(evaluations, self.dir.path, self.on_event)  # a task bug: stop, never train on it
        self.state.scorer_errors = guard.count
        self.archive.flush()
        return evaluations, child_ids, combine_groups(parts), [d for part in batch for d in part]

    def _archive_group(self, step: int, start: State, evs: list[Evaluation]) -> list[str | None]:
        """One complete group, in group order: the best, then its valid children join under their
        parent and visit statistics update. An artifact is dropped as soon as it can no longer join
        the archive (Archive.child_filter): beyond the archive and the best, the groups not yet
        released hold the artifacts of at most one step."""
        task, archive = self.task, self.archive
        keep = archive.child_filter()
        for i, ev in enumerate(evs):
            if ev.valid:
                self._track_best(ev.value, ev.reward, step, ev.artifact, ev.message)
            joins = ev.valid and ev.metrics.get("archivable", True) is not False
            for j in (keep.offer(i, ev.value, ev.key) if joins else [i]):
                evs[j].artifact = {}  # cannot join the archive: not kept (the best has its own)
        self.evaluator.check_infrastructure(step)  # before the archive changes (issue 24)
        getattr(task, "note_attempts", lambda s, e: None)(start, evs)  # AHC: a compile error for the next prompt
        if start.id in archive:
            archive.update(start.id, [child_state(ev) for ev in evs], step)
            ids: list[str | None] = list(archive.last_added)
        else:  # --async-steps only: the parent left the archive after it was selected
            ids = [None] * len(evs)
        for ev in evs:
            ev.artifact = {}  # the archive (and the best) hold the artifacts that are kept
        archive.prune_children(start.id)
        return ids

    def _train(self, batch: list[TrainDatum], adv: GroupAdvantages, n_groups: int) -> tuple[dict[str, float], str | None]:
        """One importance-sampling policy-gradient step on the samples that carry a signal."""
        cfg = self.cfg
        train_metrics: dict[str, float] = {}
        if cfg.train and self.policy.trainable and batch:
            train_metrics = self.policy.train_step(
                batch, TrainConfig(learning_rate=cfg.learning_rate, kl_coef=cfg.kl_coef, clip=cfg.clip))
        skipped = None if train_metrics else why_no_train(cfg.train, self.policy.trainable, adv.kept,
                                                           n_groups, len(batch))
        return train_metrics, skipped

    def _record(self, step, starts, prompts, samples, evaluations, adv, child_ids, train_metrics, t, skipped,
                version: int | None = None):
        """The step's spend into the ledger (the backend's own usage, the executor's measured
        time), then its logs: rollouts and metrics are appended before the commit."""
        now = self.policy.usage().to_dict()
        used, self._usage_mark = usage_delta(self._usage_mark or {}, now), now
        cpu, gpu = self.evaluator.meter.take()
        self.ledger.eval_cpu_seconds += cpu
        self.ledger.eval_gpu_seconds += gpu
        flat = [ev for evs in evaluations for ev in evs]
        self.ledger.record_step(samples=len(flat), valid=sum(ev.valid for ev in flat),
                                seconds=time.perf_counter() - t["start"], price=price_for(self.cfg), **used)
        for note in getattr(self.policy, "take_notes", lambda: [])():  # e.g. a dropped api parameter
            self.on_event(note)
            self.state.notes.append(note)
        files = []
        for prompt in prompts:
            phash = prompt_hash(prompt)
            files.append((phash, self.dir.save_prompt(phash, prompt)))
        rows = rollout_rows(step, starts, files, samples, evaluations, adv, child_ids, self.archive, version)
        metrics = metrics_row(step, evaluations, adv, train_metrics, t, used, self.task.objective.oriented,
                              self.best, len(self.archive))
        metrics["spend"] = self.ledger.to_dict()
        metrics["sandbox_protections"] = self.evaluator.take_protections()
        metrics["train_skipped"] = skipped
        if version is not None:  # --async-steps: the policy that sampled the step (tttd.async_steps)
            metrics["policy_version"] = version
        append_jsonl(self.dir.rollouts, rows)
        append_jsonl(self.dir.metrics, [metrics])
        return metrics

    def _track_best(self, value, reward, step, artifact, message) -> None:
        if value is None:
            return
        if self.best.value is None or self.task.objective.better(value, self.best.value):
            self.best = Best(value=float(value), reward=None if reward is None else float(reward),
                             step=step, artifact=artifact, message=message)
            self._best_dirty = True

    def _commit(self, step: int, extra: dict[str, str] | None = None) -> None:
        """The whole run state, one atomic commit (:func:`tttd.runstate.commit`)."""
        saved = self.policy if (self.cfg.train and self.policy.trainable) else None
        archive_json = commit(self.dir, self.state, step, saved, lambda point: fault_point(point, step), extra)
        self._committed = step
        fault_point("commit", step)
        # Readers' copies, after the commit (they are rebuilt from the checkpoint on resume).
        atomic_write_text(self.dir.archive, archive_json)
        if self._best_dirty:
            self.write_best()
            self._best_dirty = False

    def write_best(self) -> None:
        write_best(self.dir, self.best, self.task, self.cfg)

    def summary(self) -> dict[str, Any]:
        return {
            "task": self.task.name,
            "best_value": self.best.value,
            "best_reward": self.best.reward,
            "best_step": self.best.step,
            "steps": self.step,
            "samples": self.ledger.samples,
            "valid": self.ledger.valid,
            "seconds": round(self.ledger.seconds, 3),
            "run_dir": str(self.dir.path),
            "stopped": self.stopped,
        }
