"""The discovery loop (DESIGN.md "What a run is"): one problem, one policy, many steps.

Each step, top to bottom: select start states (PUCT) -> prompt -> sample -> evaluate (sandbox,
then the task's trusted verifier) -> archive -> advantages (entropic, per group) -> train (one
importance-sampling step) -> checkpoint (atomic commit, see ``tttd.rundir``).

Overlap: sampling is done in chunks of groups; each chunk's programs are submitted to the
executor as soon as it is sampled, so evaluation runs while the next chunk samples. Training
waits for all evaluations (it needs every reward of a group), and the next step samples from the
updated weights: the loop stays fully on-policy, as the paper's synchronous mode.

Determinism: the sampling seed of every group is derived from (run seed, step, group), and the
archive's RNG is checkpointed, so a resumed run repeats an uninterrupted one (up to the backend's
own sampling nondeterminism; exact on the CPU local backend).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tttd.archive import Archive
from tttd.config import RunConfig
from tttd.ledger import Ledger, budget_stop, check_budget, price_for
from tttd.objective import group_advantages
from tttd.build import _sandbox_report, build_executor, build_policy, build_task, package_versions, write_best
from tttd.faults import FaultInjected, fault_point  # noqa: F401 - FaultInjected: re-exported
from tttd.policy import Policy, SamplingParams, TrainConfig
from tttd.rundir import NotARunError, RunDir, append_jsonl, atomic_write_json, atomic_write_text
from tttd.task import Task
from tttd.types import Evaluation, SandboxResult, State, TrainDatum


def derive_seed(*parts: int) -> int:
    """A 31-bit seed from integers (stable across processes and Python versions)."""
    h = hashlib.sha256(",".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF


@dataclass
class Best:
    value: float | None = None
    reward: float | None = None
    step: int | None = None
    artifact: dict[str, Any] = field(default_factory=dict)
    message: str = ""


class Discovery:
    """A run: the task, policy, archive and executor, and the step that ties them together."""

    def __init__(
        self,
        cfg: RunConfig,
        run_dir: str | Path,
        *,
        task: Task | None = None,
        policy: Policy | None = None,
        on_step: Callable[[dict[str, Any]], None] | None = None,
        on_event: Callable[[str], None] | None = None,
    ):
        self.cfg = cfg
        self.dir = RunDir(run_dir)
        self.task = task or build_task(cfg)
        preflight = getattr(self.task, "preflight", None)  # e.g. a GPU task where no GPU is visible
        if callable(preflight):
            preflight()
        self.on_step = on_step or (lambda m: None)
        self.on_event = on_event or (lambda s: None)
        self._policy = policy
        self.archive = Archive(
            maximize=self.task.objective.maximize, reuse=cfg.reuse, c=cfg.puct_c,
            topk_children=cfg.topk_children, max_size=cfg.archive_size,
            visit_counting=cfg.visit_counting, seed=cfg.seed,
        )
        self.step = 0  # next step to run
        self.ledger = Ledger()
        self.best = Best()
        self._best_dirty = False
        self._executor = None
        self.stopped: str | None = None  # why a budget cap stopped the run
        self._committed: int | None = None  # the last step this process committed
        self._loggers = None
        from tttd.task_errors import ScorerGuard

        self._scorer_guard = ScorerGuard()

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
        from tttd import runlock

        runlock.acquire(self.dir.path)  # issue 24: one process per run directory
        self.dir.create(self.describe())
        self._add_roots(roots)

    def _roots(self) -> list[State]:
        from tttd.task_errors import checked_roots

        return checked_roots(self.task, self.cfg.groups, np.random.default_rng(self.cfg.seed))

    def _add_roots(self, roots: list[State] | None = None) -> None:
        roots = roots if roots is not None else self._roots()
        self.archive.add_roots(roots)
        for s in roots:
            note = s.metrics.get("message") if isinstance(s.metrics, dict) else None  # a root's verdict
            self._track_best(s.value, s.reward, -1, s.artifact, "initial state" + (f": {note}" if note else ""))

    def restore(self, accept_task_change: bool = False) -> None:
        """Continue after the last committed step; logs of uncommitted steps are dropped.

        Everything is checked before anything is changed: a damaged checkpoint (missing
        pointer, truncated archive or loop state) or a changed task (its fingerprint, see
        :func:`tttd.task.task_fingerprint`, unless ``accept_task_change``) raises
        :class:`~tttd.rundir.NotARunError` and leaves every file as it was."""
        self._check_options()
        from tttd import runlock

        self.dir.check()
        runlock.acquire(self.dir.path)  # issue 24: before anything is read for writing
        ckpt = self.dir.latest_resumable_step_dir()  # newest step with a complete policy state
        loaded = self.dir.read_checkpoint(ckpt) if ckpt is not None else None
        self._check_task_unchanged(accept_task_change)
        if loaded is None:  # died before the first (complete) commit: start the steps over
            self.dir.repair_logs(-1)
            self._add_roots()
            return
        archive_text, state = loaded
        try:
            archive = Archive.from_dict(json.loads(archive_text))
            ledger, best = Ledger.from_dict(state["ledger"]), Best(**state["best"])
            step = int(state["step"]) + 1
        except (KeyError, TypeError, ValueError) as exc:
            raise NotARunError(f"{ckpt} is damaged ({type(exc).__name__}: {str(exc)[:120]}); "
                               "refusing to resume") from None
        self.archive, self.ledger, self.best, self.step = archive, ledger, best, step
        self._keep_dropped_best(ckpt)
        if self.step >= self.cfg.steps:
            return  # finished: nothing to load or repair
        if (ckpt / "policy").exists():
            self.policy.load(str(ckpt / "policy"))
        self.dir.repair_logs(state["step"])
        self.archive.save(self.dir.archive)  # readers' copies may predate a crash after commit
        self.write_best()
        if accept_task_change:
            self._record_task_fingerprint()

    def _keep_dropped_best(self, ckpt: Path) -> None:
        """A resume that steps back to the last complete policy state (``ckpt``, older than the
        last committed step) repeats the steps after it: keep the best of the dropped steps when
        it is better (issue 20). The newest step's checkpoint is read as any other; if it cannot
        be read, the resumable step's best stands."""
        latest = self.dir.latest_step_dir()
        if latest is None or latest == ckpt:
            return
        try:
            other = Best(**self.dir.read_checkpoint(latest)[1]["best"])
        except (NotARunError, TypeError):
            return
        if other.value is not None and (self.best.value is None
                                        or self.task.objective.better(other.value, self.best.value)):
            self.best = other

    def task_fingerprint(self) -> str:
        from tttd.registry import task_fingerprint

        return task_fingerprint(self.cfg.task, self.task, self.cfg.task_options)

    def _check_task_unchanged(self, accept: bool) -> None:
        stored = self.dir.read_config().get("_task", {}).get("fingerprint")
        if stored is None or accept:
            return
        if stored != self.task_fingerprint():
            raise NotARunError(
                f"the task {self.cfg.task!r} changed since this run started (its source or options "
                "differ); resuming would mix two scoring functions. Pass --accept-task-change to "
                "continue anyway")

    def _record_task_fingerprint(self) -> None:
        full = self.dir.read_config()
        full.setdefault("_task", {})["fingerprint"] = self.task_fingerprint()
        atomic_write_json(self.dir.config, full)

    def _check_options(self) -> None:
        """Budget caps and metric logs that cannot work fail here, before anything is written."""
        from tttd.metric_log import check_loggers

        check_budget(self.cfg)
        check_loggers(self.cfg.log)

    def describe(self) -> dict[str, Any]:
        import platform

        import tttd

        return {
            **self.cfg.to_dict(),
            "_versions": {"tttd": tttd.__version__, "python": platform.python_version(), "numpy": np.__version__,
                          **package_versions()},
            "_task": {"name": self.task.name, "direction": self.task.objective.direction,
                      "transform": self.task.objective.transform,
                      "fingerprint": self.task_fingerprint()},
            **({"_engine": self.policy.engine_info()} if hasattr(self.policy, "engine_info") else {}),
            "_sandbox": _sandbox_report(),
        }

    # ------------------------------------------------------------------ the loop
    def run(self) -> dict[str, Any]:
        from tttd.metric_log import open_loggers

        from tttd import faults, runlock, signals

        interrupted = False
        try:
            with signals.handling(), signals.steps():
                while self.step < self.cfg.steps:
                    sig = signals.requested()  # issue 24: Ctrl-C / SIGTERM stop at a step boundary
                    if sig is not None:
                        raise signals.Stopped(signals.stop_message(sig, self.step, str(self.dir.path)), sig)
                    self.stopped = budget_stop(self.ledger, self.cfg)  # at a step boundary, before it
                    if self.stopped:
                        from tttd.wording import raise_cap_command, step_text

                        self.on_event(f"stopped before {step_text(self.step)} of {self.cfg.steps}: {self.stopped}; "
                                      f"to go on: {raise_cap_command(self.dir.path, self.stopped, self.ledger, self.cfg, self.step)}")
                        break
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
                    self.step += 1
        except BaseException:
            interrupted = True
            raise
        finally:
            if self._loggers is not None:
                try:
                    self._loggers.close()
                except Exception:  # noqa: BLE001 - e.g. a full disk: the run's own error wins
                    if not interrupted:
                        raise
                self._loggers = None
            if self._executor is not None:
                close = self._executor.close
                try:  # a stopped step's queued evaluations are dropped, not waited for
                    close(cancel_pending=True) if interrupted else close()
                except TypeError:
                    close()
                self._executor = None
            runlock.release(self.dir.path)
        return self.summary()

    def submit(self, program) -> Future:
        """Run a program in the sandbox on the executor (started on first use); evaluations lost
        to the infrastructure are started again (bounded, see :class:`tttd.faults.RetryingSubmit`)."""
        if self._executor is None:
            from tttd.faults import InfrastructureError, RetryingSubmit

            try:
                self._executor = build_executor(self.cfg)
            except (ValueError, ImportError):
                raise
            except Exception as exc:  # e.g. a Ray cluster that cannot be reached
                raise InfrastructureError(
                    f"the {self.cfg.executor} executor could not start ({type(exc).__name__}: "
                    f"{str(exc)[:200]}); nothing of step {self.step} was kept. Fix it, then "
                    f"`tttd resume {self.dir.path}` continues exactly") from None
            self._retrying = RetryingSubmit(self._executor.submit)
        return self._retrying(program)

    def run_step(self, step: int) -> dict[str, Any]:
        cfg, task, archive = self.cfg, self.task, self.archive
        t = {"start": time.perf_counter()}

        # 1. select start states; 2. prompt
        starts = archive.select(cfg.groups)
        prompts = [task.prompt(s, self._parent_of(s)) for s in starts]
        t["select"] = time.perf_counter()

        # 3. sample (chunks of groups) and 4. evaluate, overlapped: a chunk's programs run
        # while the next chunk samples.
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
                parsed = []
                for smp in group:
                    cand = task.parse(smp.text, starts[g])
                    fut = task.launch(cand, self.submit, starts[g]) if cand.program is not None else None
                    parsed.append((cand, fut))
                pending.append(parsed)
        fault_point("sample", step)
        t["sample"] = t["select"] + sample_s
        # 5. archive, group by group as soon as it is evaluated: valid children join under their
        # parent; visit statistics update. Sandbox results are dropped once evaluated, and an
        # artifact is dropped as soon as it can no longer join the archive (Archive.child_filter),
        # so beyond the archive and the best the parent holds at most topk_children artifacts
        # (bounded memory, whatever the group size).
        evaluations: list[list[Evaluation]] = []
        child_ids: list[list[str | None]] = []
        for g in range(len(pending)):
            parsed, pending[g] = pending[g], []
            evs: list[Evaluation] = []
            keep = archive.child_filter()
            for i in range(len(parsed)):
                cand, fut = parsed[i]
                parsed[i] = None  # the sandbox result is freed once evaluated
                ev = self._evaluate(task, cand, fut, starts[g])
                del cand, fut
                evs.append(ev)
                if ev.valid:
                    self._track_best(ev.value, ev.reward, step, ev.artifact, ev.message)
                joins = ev.valid and ev.metrics.get("archivable", True) is not False
                for j in (keep.offer(i, ev.value, ev.key) if joins else [i]):
                    evs[j].artifact = {}  # cannot join the archive: not kept (self.best has its own)
            del parsed
            self._check_infrastructure(step)  # before the archive changes (issue 24)
            getattr(task, "note_attempts", lambda s, e: None)(starts[g], evs)  # AHC: a compile error for the next prompt
            archive.update(starts[g].id, [self._child(ev) for ev in evs], step)
            child_ids.append(list(archive.last_added))
            for ev in evs:
                ev.artifact = {}  # the archive (and self.best) hold the artifacts that are kept
            archive.prune_children(starts[g].id)
            evaluations.append(evs)
        t["evaluate"] = time.perf_counter()
        self._check_infrastructure(step)
        fault_point("evaluate", step)
        self._scorer_guard.check(evaluations, self.dir.path, self.on_event)  # a task bug: stop, never train on it
        archive.flush()

        # 6. advantages per group (constant groups dropped); a scorer error carries no gradient
        rewards = [[ev.reward for ev in evs] for evs in evaluations]
        adv = group_advantages(rewards, estimator=cfg.objective, beta=cfg.beta)
        from tttd.task_errors import mask_scorer_errors

        mask_scorer_errors(adv.advantages, evaluations)

        # 7. train: one importance-sampling policy-gradient step
        batch = [
            TrainDatum.from_sample(s, a)  # appended (forced-answer) tokens: advantage 0, mask 0
            for group, a_group in zip(samples, adv.advantages) if a_group is not None
            for s, a in zip(group, a_group) if s.tokens
        ]
        train_metrics: dict[str, float] = {}
        if cfg.train and self.policy.trainable and batch:
            train_metrics = self.policy.train_step(
                batch, TrainConfig(learning_rate=cfg.learning_rate, kl_coef=cfg.kl_coef, clip=cfg.clip))
        from tttd.progress import why_no_train

        skipped = None if train_metrics else why_no_train(cfg.train, self.policy.trainable, adv.kept,
                                                           len(starts), len(batch))
        t["train"] = time.perf_counter()
        fault_point("train", step)

        # 8. checkpoint: logs first, then the atomic commit
        rollouts = self._rollout_rows(step, starts, prompts, samples, evaluations, adv, child_ids)
        metrics = self._metrics(step, samples, evaluations, adv, train_metrics, t)
        metrics["train_skipped"] = skipped
        append_jsonl(self.dir.rollouts, rollouts)
        append_jsonl(self.dir.metrics, [metrics])
        self._commit(step)
        metrics["seconds_checkpoint"] = round(time.perf_counter() - t["train"], 4)
        return metrics

    # ------------------------------------------------------------------ helpers
    def _parent_of(self, s: State) -> State | None:
        if s.parent_id is None:
            return None
        try:
            return self.archive.get(s.parent_id)
        except KeyError:  # evicted by the cap: a stand-in with its recorded value
            value = s.parent_values[0] if s.parent_values else None
            return State(id=s.parent_id, value=value)

    def _check_infrastructure(self, step: int) -> None:
        """Issue 24: evaluations still lost after their retries stop the step (never scored)."""
        retrying = getattr(self, "_retrying", None)
        lost = retrying.take_exhausted() if retrying is not None else []
        retried = retrying.take_retried() if retrying is not None else 0
        if retried and not lost:
            self.on_event(f"step {step}: {retried} evaluation(s) lost to the infrastructure were started again")
        if lost:
            from tttd.faults import infrastructure_error

            raise infrastructure_error(lost, step, self.dir.path, retrying.retries)

    def _evaluate(self, task: Task, cand, fut: Future | None, start: State) -> Evaluation:
        result: SandboxResult | None = None
        if fut is not None:
            result = fut.result()
            from tttd.faults import is_infrastructure

            if is_infrastructure(result):  # lost after its retries: the step stops (see above)
                return task.invalid(f"infrastructure failure: {result.message}", status="lost")
            self.ledger.add_evaluation(result, cand.program.limits)
            prot = getattr(result, "protections", None)  # protections active in this step (a task's
            if prot is not None:  # own future may return something else than a SandboxResult)
                seen = getattr(self, "_protections_seen", None)
                self._protections_seen = set(prot) if seen is None else seen & set(prot)
        try:
            return task.evaluate(cand, result, start)
        except Exception as exc:  # a verifier bug must not kill the run; it shows in the logs
            from tttd.task_errors import SCORER_ERROR, where

            loc = where(exc)
            return task.invalid(f"the task's verifier raised {type(exc).__name__}: {exc}"
                                + (f" at {loc}" if loc else ""), status=SCORER_ERROR)

    def _child(self, ev: Evaluation) -> State | None:
        if not ev.valid:  # valid but unarchivable children still update statistics (archive)
            return None
        return State(id="", value=ev.value, artifact=ev.artifact, key=ev.key, reward=ev.reward,
                     output_tail=ev.output_tail, metrics=ev.metrics)

    def _track_best(self, value, reward, step, artifact, message) -> None:
        if value is None:
            return
        if self.best.value is None or self.task.objective.better(value, self.best.value):
            self.best = Best(value=float(value), reward=None if reward is None else float(reward),
                             step=step, artifact=artifact, message=message)
            self._best_dirty = True

    def _rollout_rows(self, step, starts, prompts, samples, evaluations, adv, child_ids):
        rows = []
        for g, (start, prompt, group, evs) in enumerate(zip(starts, prompts, samples, evaluations)):
            phash = hashlib.sha256(repr(prompt).encode()).hexdigest()[:16]
            prompt_file = self.dir.save_prompt(phash, prompt)
            a_group = adv.advantages[g]
            for i, (smp, ev) in enumerate(zip(group, evs)):
                rows.append({
                    "step": step, "group": g, "index": i, "parent": start.id, "prompt_hash": phash,
                    "completion": smp.text, "stop_reason": smp.stop_reason, "tokens": len(smp.tokens),
                    "valid": ev.valid, "status": ev.status, "value": ev.value, "reward": ev.reward,
                    "advantage": None if a_group is None else float(a_group[i]),
                    "message": ev.message[:500], "child": child_ids[g][i], "prompt_file": prompt_file,
                })
        return rows

    def _metrics(self, step, samples, evaluations, adv, train_metrics, t) -> dict[str, Any]:
        flat = [ev for evs in evaluations for ev in evs]
        rewards = np.array([ev.reward for ev in flat], dtype=float)
        values = np.array([ev.value for ev in flat if ev.valid], dtype=float)
        n_tokens = sum(len(s.tokens) for g in samples for s in g)
        n_prompt = sum(len(s.prompt_tokens) for g in samples for s in g)
        self.ledger.record_step(samples=len(flat), prompt_tokens=n_prompt, sampled_tokens=n_tokens,
                                trained_tokens=int(train_metrics.get("tokens", 0)), valid=len(values),
                                seconds=time.perf_counter() - t["start"], price=price_for(self.cfg))
        orient = self.task.objective.oriented
        betas = [b for b in adv.betas if b is not None]
        return {
            "step": step,
            "reward_mean": float(rewards.mean()),
            "reward_max": float(rewards.max()),
            "value_mean": float(values.mean()) if len(values) else None,
            "value_best_step": (float(max(values, key=orient)) if len(values) else None),
            "best_value": self.best.value,
            "best_reward": self.best.reward,
            "valid_fraction": float(len(values) / max(1, len(flat))),
            "beta_mean": float(np.mean(betas)) if betas else None,
            "groups_kept": int(adv.kept),
            "trained": bool(train_metrics),
            "loss": train_metrics.get("loss"),
            "kl_policy_base": train_metrics.get("kl_policy_base"),
            "kl_sample_train": train_metrics.get("kl_sample_train"),
            "archive_size": len(self.archive),
            "status_counts": dict(sorted(Counter(ev.status for ev in flat if not ev.valid).items())),
            "samples": len(flat),
            "sampled_tokens": n_tokens,
            "prompt_tokens": n_prompt,
            "seconds_select": round(t["select"] - t["start"], 4),
            "seconds_sample": round(t["sample"] - t["select"], 4),
            "seconds_evaluate": round(t["evaluate"] - t["sample"], 4),
            "seconds_train": round(t["train"] - t["evaluate"], 4),
            "spend": dict(self.ledger.__dict__),
            "sandbox_protections": sorted(self.__dict__.pop("_protections_seen", None) or []) or None,
        }

    def _commit(self, step: int) -> None:
        tmp = self.dir.begin_step(step)
        archive_json = self.archive.dumps()  # serialised once: checkpoint and readers' copy
        atomic_write_text(tmp / "archive.json", archive_json)
        fault_point("checkpoint", step)
        if self.cfg.train and self.policy.trainable:
            self.policy.save(str(tmp / "policy"))
        atomic_write_json(tmp / "loop.json", {"step": step, "ledger": self.ledger.__dict__,
                                              "best": self.best.__dict__})
        self.dir.commit_step(step, tmp)
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
