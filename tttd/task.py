"""The Task protocol and the declared objective of a task.

A task is everything problem-specific: its initial states, how a state becomes a prompt, how a
completion becomes a candidate (usually a program for the sandbox), and the trusted verifier that
turns the candidate's returned data into a value and a reward. Tasks register themselves by name
with :func:`tttd.registry.register_task` (a decorator); nothing in tttd switches on task names.
The registry (:mod:`tttd.registry`) imports this protocol, never the reverse, so the protocol
loads without any task domain.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Literal

import numpy as np

from tttd.objectives import MEASURED, BoundRule, MetricSpec, bind_rule
from tttd.task_errors import INVALID_ANSWER, TaskOptionError  # noqa: F401 (TaskOptionError: part of the protocol)
from tttd.types import Candidate, Evaluation, Message, SandboxResult, State

# --------------------------------------------------------------------------------------------
# Objective: one declared raw value with a direction, and a monotone reward transform.
# --------------------------------------------------------------------------------------------

REWARD_TRANSFORMS: dict[str, Callable[[float], float]] = {
    "identity": lambda v: v,
    "negate": lambda v: -v,
    "reciprocal": lambda v: 1.0 / v,
}


@dataclass(frozen=True)
class Objective:
    """What a task optimises: the raw value and its direction, and the reward fed to learning.

    The paper's code mixes scales (SPEC.md 7.3 item 11); tttd keeps one declared raw value per
    task (shown in prompts and stored in the archive) and an explicit monotone ``transform`` from
    that value to the reward (e.g. C5 -> 1/C5). Failures get ``failure_reward``.

    Checked when the objective is defined (ValueError otherwise):

    - the transform must agree with the direction: ``identity`` (reward = value) for
      ``maximize``; ``negate`` (reward = -value) or ``reciprocal`` (reward = 1/value, values > 0)
      for ``minimize``;
    - ``failure_reward`` must rank at or below every valid reward. ``bounds = (lo, hi)`` is the
      range of valid raw values (``None`` = unbounded); the default ``(0.0, None)`` says values are
      non-negative. So ``minimize`` + ``negate`` needs a finite ``hi`` and ``failure_reward <= -hi``
      (with the default ``failure_reward=0.0`` it is an error: every valid reward -value < 0 would
      rank below a failure); ``maximize`` + ``identity`` needs ``failure_reward <= lo``.

    At run time a valid evaluation whose value lies outside ``bounds`` is turned invalid with a
    message saying so (:meth:`Task.evaluate`), so a wrong declaration shows instead of silently
    misranking answers.
    """

    direction: Literal["maximize", "minimize"] = "maximize"
    transform: str = "identity"
    failure_reward: float = 0.0
    bounds: tuple[float | None, float | None] = (0.0, None)

    def __post_init__(self) -> None:
        if self.direction not in ("maximize", "minimize"):
            raise ValueError(f"direction must be 'maximize' or 'minimize', got {self.direction!r}")
        if self.transform not in REWARD_TRANSFORMS:
            raise ValueError(
                f"unknown reward transform {self.transform!r}; known: {sorted(REWARD_TRANSFORMS)}"
            )
        wanted = ("identity",) if self.direction == "maximize" else ("negate", "reciprocal")
        if self.transform not in wanted:
            raise ValueError(
                f"transform {self.transform!r} does not fit direction {self.direction!r}: a better "
                f"value must give a higher reward; use {' or '.join(map(repr, wanted))}"
            )
        if not math.isfinite(self.failure_reward):
            raise ValueError(f"failure_reward must be finite, got {self.failure_reward!r}")
        lo, hi = self.bounds
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"bounds {self.bounds!r}: lower bound above upper bound")
        worst = self.worst_reward()
        if worst is None or self.failure_reward > worst:
            bound = "lo" if self.maximize else "hi"
            raise ValueError(
                f"failure_reward {self.failure_reward!r} ranks above valid answers: with "
                f"{self.direction} + {self.transform} and bounds {self.bounds!r} the worst valid "
                f"reward is {'unbounded below' if worst is None else repr(worst)}; declare a finite "
                f"{bound} in bounds=(lo, hi) and a failure_reward at or below it"
                + (" (or use transform='reciprocal' for positive values)" if self.transform == "negate" else "")
            )

    def worst_reward(self) -> float | None:
        """The lowest reward a valid value within ``bounds`` can get (None: unbounded below)."""
        lo, hi = self.bounds
        if self.transform == "identity":
            return None if lo is None else float(lo)
        if self.transform == "negate":
            return None if hi is None else -float(hi)
        # reciprocal: values must be > 0, rewards 1/value > 0, approaching 0 as value grows
        if lo is not None and lo < 0:
            raise ValueError(f"transform 'reciprocal' needs positive values; bounds {self.bounds!r}")
        return 0.0 if hi is None else 1.0 / float(hi)

    def in_bounds(self, value: float) -> bool:
        lo, hi = self.bounds
        return (lo is None or value >= lo) and (hi is None or value <= hi)

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"

    def reward(self, value: float) -> float:
        try:
            r = float(REWARD_TRANSFORMS[self.transform](float(value)))
        except (ZeroDivisionError, OverflowError):
            r = math.inf
        if not math.isfinite(r):
            raise ValueError(f"reward transform {self.transform!r} of {value!r} is not finite")
        return r

    def oriented(self, value: float | None) -> float:
        """The value with higher = better (what PUCT ranks); NaN for an empty state."""
        if value is None:
            return math.nan
        return float(value) if self.maximize else -float(value)

    def better(self, a: float | None, b: float | None) -> bool:
        """True when value ``a`` is strictly better than ``b`` (None is worst)."""
        if a is None:
            return False
        if b is None:
            return True
        return a > b if self.maximize else a < b


# --------------------------------------------------------------------------------------------
# Parsing helpers shared by tasks
# --------------------------------------------------------------------------------------------

_FENCE = re.compile(r"```([A-Za-z0-9_+\-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


def extract_code_block(text: str, languages: tuple[str, ...] = ("python", "py")) -> str | None:
    """The last fenced code block in ``text`` whose language is one of ``languages``.

    An unterminated final block is accepted (a completion cut at its token budget), as in the
    paper's code. Returns ``None`` when there is no such block or it is empty.
    """
    found = None
    for match in _FENCE.finditer(text):
        lang = match.group(1).lower()
        if lang in languages:
            code = match.group(2).strip("\n")
            if code.strip():
                found = code
    return found


def artifact_key(data: Any) -> str:
    """A stable dedup key for JSON-able data (constructions are rounded to 12 significant digits)."""

    def norm(x: Any) -> Any:
        if isinstance(x, float):
            return float(f"{x:.12g}")
        if isinstance(x, np.ndarray):
            return norm(x.tolist())
        if isinstance(x, (list, tuple)):
            return [norm(v) for v in x]
        if isinstance(x, dict):
            return {str(k): norm(v) for k, v in sorted(x.items())}
        return x

    blob = json.dumps(norm(data), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def tail(text: str, limit: int = 500) -> str:
    """The last ``limit`` characters, headed by a truncation marker when cut (as the paper shows)."""
    if len(text) <= limit:
        return text
    return "[... output truncated, last %d characters ...]\n" % limit + text[-limit:]


def code_and_output_sections(code: str | None, output_tail: str | None, chars: int,
                             language: str = "python") -> list[str]:
    """The paper's prompt parts for a state's program: its code (or a note that there is none)
    and the tail of what it printed."""
    parts = [f"The last code we ran:\n```{language}\n{code}\n```" if code
             else "There is no code yet: write a program from scratch."]
    out = tail(output_tail or "", chars).strip()
    if out:
        parts.append("## Output of the last run\n```\n" + out + "\n```")
    return parts


# --------------------------------------------------------------------------------------------
# The Task base class
# --------------------------------------------------------------------------------------------


class Task:
    """Base class for tasks. Subclasses set the class attributes and implement the four methods.

    - :meth:`initial_states`: the roots (random constructions, a baseline program, or empty).
    - :meth:`prompt`: a state (and its parent) -> chat messages. Show raw values, not rewards.
    - :meth:`parse`: a completion -> a :class:`Candidate` (a program to sandbox, or data).
    - :meth:`verify`: returned data -> :class:`Evaluation`, computed in the trusted process.
      Never use a number the candidate reports about itself.

    :meth:`evaluate` glues them (sandbox status -> invalid evaluation; ok -> :meth:`verify`).
    """

    name: str = ""
    summary: str = ""
    objective: Objective = Objective()
    #: config overrides by preset name, e.g. {"paper": {"steps": 50, ...}}
    presets: dict[str, dict[str, Any]] = {}
    #: stop sequences for sampling, besides the model's end-of-turn token
    stop: list[str] = []
    #: the longest output tail shown in prompts
    output_tail_chars: int = 500
    #: whether candidates are programs run in the sandbox (False: data only, e.g. the demo's
    #: digits; such a task runs without full isolation and without --allow-weak-isolation)
    runs_code: bool = True
    #: several objectives (:mod:`tttd.objectives`): the named metrics :meth:`verify` returns in
    #: ``Evaluation.metrics["objectives"]``, each with its direction; empty = one objective
    metric_specs: tuple[MetricSpec, ...] = ()
    #: the run's rule (``--rule``) once :meth:`use_rule` bound one other than ``primary``
    rule: BoundRule | None = None

    def metric_directions(self) -> dict[str, str] | None:
        """Name -> direction of the metrics the archive's Pareto front is over (None: one objective)."""
        if len(self.metric_specs) < 2:
            return None
        return {s.name: s.direction for s in self.metric_specs}

    @property
    def primary_objective(self) -> Objective:
        """The task's own objective (of its primary value), also when a rule replaced
        :attr:`objective`: a verifier checks and rewards the primary value with it."""
        return self.__dict__.get("_primary_objective", self.objective)

    def use_rule(self, text: str) -> None:
        """Make each sample's value (and reward) by the rule ``text`` (:mod:`tttd.objectives`);
        ``primary`` leaves the task as it is. TaskOptionError (one line) for a rule that does
        not fit the task's metrics."""
        try:
            bound = bind_rule(text, tuple(self.metric_specs))
        except ValueError as exc:
            raise TaskOptionError(f"task {self.name or '?'}: {exc}") from None
        if bound is not None:
            self.__dict__.setdefault("_primary_objective", self.objective)
            self.rule = bound
            self.objective = Objective(*bound.objective)

    def _by_rule(self, ev: Evaluation, out_tail: str) -> Evaluation:
        """A valid evaluation's value and reward made by the run's rule (invalid when a metric is
        missing or a constraint is broken; its metrics are kept for the next prompt)."""
        assert self.rule is not None
        value, why = self.rule.value(ev.metrics.get("objectives") or {})
        if why is not None:
            bad = self.invalid(why, output_tail=out_tail)
            bad.metrics = dict(ev.metrics)
            return bad
        ev.value, ev.reward = value, self.objective.reward(value)
        ev.message = f"{self.rule.label} {value:.6g} ({ev.message})" if ev.message else f"{self.rule.label} {value:.6g}"
        return ev

    def initial_states(self, n: int, rng: np.random.Generator) -> list[State]:
        raise NotImplementedError

    def prompt(self, state: State, parent: State | None = None) -> list[Message]:
        raise NotImplementedError

    def parse(self, completion: str, state: State) -> Candidate:
        raise NotImplementedError

    def note_attempts(self, state: State, evaluations: list[Evaluation]) -> None:
        """Called by the loop after a group sampled from ``state`` is evaluated; a task may keep
        what its next prompt for ``state`` should show in ``state.metrics`` (persisted with the
        archive). Default: nothing (the paper's prompts show only the state itself)."""

    def verify(self, data: Any, state: State | None = None) -> Evaluation:
        raise NotImplementedError

    def load_construction(self, obj: Any) -> Any:
        """Turn a construction file's JSON (``tttd verify TASK FILE``) into verify()'s input.

        The default unwraps ``{"construction": X}`` (the form of a run's ``best/artifact.json``
        when the artifact is a ``construction``) to ``X``; anything else is passed as is.
        """
        if isinstance(obj, dict) and set(obj) == {"construction"}:
            return obj["construction"]
        return obj

    #: the fence language of a candidate program, and the file suffixes ``tttd verify`` runs as one
    code_language: str = "python"
    program_suffixes: tuple[str, ...] = (".py",)

    #: whether :meth:`launch` takes ``rival`` (the loop passes it only then): a task that stops a
    #: losing candidate early declares it (AHC racing, issue 35); every other task's launch is
    #: called as ``launch(candidate, submit, state)``, so tasks written before it keep working
    races: bool = False

    def launch(self, candidate: Candidate, submit: Callable[[Any], Any], state: State | None = None,
               rival: State | None = None):
        """Start evaluating ``candidate.program``; returns a Future of what :meth:`evaluate` takes as
        ``result``. ``submit`` runs one Program on the executor (a Future of its SandboxResult).
        ``state``: the parent it was sampled from. ``rival``: the child it must beat to be kept
        under that parent (:meth:`tttd.archive.Archive.rival`, taken when the group is launched;
        None: it would be kept if valid), for tasks that stop a losing candidate early (AHC
        racing, issue 35), passed only when the task declares :attr:`races`; the default ignores
        it. The default is one sandboxed run; multi-stage
        tasks (compile, then cases) override it."""
        return submit(candidate.program)

    def prepare(self) -> None:
        """Load what the task needs (e.g. a dataset) before a run or a verify writes anything;
        raise ValueError with a one-line reason when it cannot. Default: nothing to load."""

    def example_answer(self, state: State) -> str | None:
        """Optional: a well-formed answer to ``state``'s prompt (``tttd prompt`` parses and
        verifies it; nothing is sampled). Default: the state's own code, if it has any."""
        code = (state.artifact or {}).get("code")
        return f"```python\n{code}\n```" if code else None

    def draw(self, artifact: dict[str, Any], ax: Any) -> bool:
        """Optional: draw a construction on a matplotlib Axes (``tttd report``); False if the
        task cannot draw it."""
        return False

    def invalid(self, message: str, status: str = "invalid", output_tail: str = "") -> Evaluation:
        return Evaluation(
            valid=False,
            value=None,
            reward=self.objective.failure_reward,
            message=message,
            status=status,
            output_tail=output_tail,
        )

    def evaluate(
        self, candidate: Candidate, result: SandboxResult | None, state: State | None = None
    ) -> Evaluation:
        """Trusted verdict on a parsed candidate and (if it ran) its sandbox result."""
        if candidate.error is not None:
            return self.invalid(candidate.error, status="parse_error")
        out_tail = ""
        if candidate.program is not None:
            if result is None:
                return self.invalid("the program was not run", status="error")
            out_tail = tail(result.stdout, self.output_tail_chars)
            if not result.ok:
                detail = result.message or tail(result.stderr, 300)
                return self.invalid(
                    f"program {result.status}: {detail}".strip(), result.status, out_tail
                )
            data = result.value
        else:
            data = candidate.data
        try:
            ev = self.verify(data, state)
        except INVALID_ANSWER as exc:  # a verdict on hostile data; anything else: scorer_error
            ev = self.invalid(f"verifier rejected the result: {exc}")
        ev.output_tail = out_tail
        if ev.valid and result is not None and any(m.name in MEASURED for m in self.metric_specs):
            ev.metrics.setdefault("objectives", {})["wall_s"] = round(float(getattr(result, "wall_s", 0.0)), 6)
        if ev.valid and self.rule is not None:
            ev = self._by_rule(ev, out_tail)
        if ev.valid and ev.value is not None and not self.objective.in_bounds(ev.value):
            return self.invalid(
                f"value {ev.value!r} lies outside the objective's declared bounds "
                f"{self.objective.bounds!r} (fix the task's Objective(bounds=...))",
                status="invalid", output_tail=out_tail)
        if candidate.code is not None:
            ev.artifact.setdefault("code", candidate.code)
        if candidate.files is not None:  # a multi-file program: every state keeps all its files
            ev.artifact.setdefault("files", dict(candidate.files))
        if ev.valid and ev.key is None:
            ev.key = artifact_key(ev.artifact.get("construction", ev.artifact.get("code", ev.artifact.get("files"))))
        return ev
