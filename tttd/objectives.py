"""Several objectives: named metrics with directions, and the rule that makes one reward of them.

A task may return several named metrics (``Evaluation.metrics["objectives"]``, e.g.
``{"quality": 0.93, "time_s": 0.41}``) and declare each one's direction with :class:`MetricSpec`.
The run still learns from one scalar per sample (the entropic objective needs one): the
**rule** (``--rule``, config key ``rule``) says how that scalar is made:

- ``primary`` (default): the task's declared primary metric, with the task's own
  :class:`~tttd.task.Objective` (nothing changes for a task with one metric);
- ``metric:NAME``: another metric, in its declared direction;
- ``weighted:NAME=W,NAME=W@LO..HI,...``: a weighted sum of normalised metrics. Each metric is
  mapped to [0, 1] over its range ``LO..HI`` (given in the rule, else the metric's declared
  bounds), 1 = best end (flipped for a minimised metric), clipped outside the range; the value
  is ``sum(W * normalised)``, maximised, in ``[0, sum W]``. A range is required: normalising by
  running statistics would change old rewards as the run goes on and break exact resume;
- ``constrained:NAME,OTHER<=X,OTHER>=Y,...``: ``NAME`` in its own direction, and a sample that
  breaks a bound is invalid (its message names the bound). Its metrics are still recorded.

The archive keeps the non-dominated states (the Pareto front over every declared metric, see
:func:`front_mask`) besides the best-by-rule states; ``--reuse pareto`` draws start states from
the front first.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

DIRECTIONS = ("maximize", "minimize")
#: metrics tttd measures itself, outside the jail, when a task declares them: ``wall_s``, the
#: seconds the candidate's sandboxed run took (never a time the candidate reports about itself)
MEASURED = ("wall_s",)
RULE_KINDS = ("primary", "metric", "weighted", "constrained")
_NAME = r"[A-Za-z_][A-Za-z0-9_.\-]*"
_NUM = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"


@dataclass(frozen=True)
class MetricSpec:
    """One named metric: its direction and (optionally) its range of valid values."""

    name: str
    direction: str = "maximize"
    bounds: tuple[float | None, float | None] = (None, None)

    def __post_init__(self) -> None:
        if not re.fullmatch(_NAME, self.name or ""):
            raise ValueError(f"metric name {self.name!r} must be a word (letters, digits, _ . -)")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"metric {self.name!r}: direction must be maximize or minimize, got {self.direction!r}")
        lo, hi = self.bounds
        if lo is not None and hi is not None and lo >= hi:
            raise ValueError(f"metric {self.name!r}: bounds {self.bounds!r} are empty")

    @property
    def maximize(self) -> bool:
        return self.direction == "maximize"


def metric_specs(declared: Any) -> tuple[MetricSpec, ...]:
    """Normalise a declaration: ``{"quality": "maximize", "time_s": ("minimize", (0, None))}``, a
    list of :class:`MetricSpec`, or ``None`` (no metrics)."""
    if not declared:
        return ()
    if isinstance(declared, Mapping):
        out = []
        for name, d in declared.items():
            if isinstance(d, MetricSpec):
                out.append(d)
            elif isinstance(d, str):
                out.append(MetricSpec(str(name), d))
            elif isinstance(d, (tuple, list)) and len(d) == 2:
                out.append(MetricSpec(str(name), d[0], tuple(d[1])))
            else:
                raise ValueError(f"metric {name!r}: declare 'maximize', 'minimize' or (direction, (lo, hi))")
        return tuple(out)
    specs = tuple(declared)
    if not all(isinstance(s, MetricSpec) for s in specs):
        raise ValueError("metrics must be a dict of name -> direction or a list of MetricSpec")
    if len({s.name for s in specs}) != len(specs):
        raise ValueError("metric names must be unique")
    return specs


@dataclass(frozen=True)
class Term:
    name: str
    weight: float = 1.0
    lo: float | None = None
    hi: float | None = None


@dataclass(frozen=True)
class Bound:
    name: str
    op: str  # "<=" | ">="
    limit: float

    def holds(self, v: float) -> bool:
        return v <= self.limit if self.op == "<=" else v >= self.limit

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.limit:g}"


@dataclass(frozen=True)
class Rule:
    """A parsed rule (see the module docstring). ``text`` is what the user wrote."""

    kind: str
    text: str
    target: str | None = None  # metric / constrained: the optimised metric
    terms: tuple[Term, ...] = ()
    bounds: tuple[Bound, ...] = field(default_factory=tuple)

    def names(self) -> list[str]:
        return ([self.target] if self.target else []) + [t.name for t in self.terms] + [b.name for b in self.bounds]


def parse_rule(text: Any) -> Rule:
    """Parse a rule's text (syntax only; metric names are checked against a task by
    :func:`bind_rule`). ValueError with a one-line reason."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"rule must be a string such as 'primary', 'metric:NAME', 'weighted:A=1,B=0.5@0..10' or "
                         f"'constrained:A,B<=2'; got {text!r}")
    t = text.strip()
    kind, _, body = t.partition(":")
    kind = kind.strip()
    if kind not in RULE_KINDS:
        raise ValueError(f"rule {t!r}: unknown kind {kind!r}; use one of {', '.join(RULE_KINDS)}")
    items = [x.strip() for x in body.split(",")] if body.strip() else []
    if kind == "primary":
        if body.strip():
            raise ValueError(f"rule {t!r}: 'primary' takes nothing after it")
        return Rule("primary", t)
    if kind == "metric":
        if len(items) != 1 or not re.fullmatch(_NAME, items[0]):
            raise ValueError(f"rule {t!r}: write metric:NAME with one metric name")
        return Rule("metric", t, target=items[0])
    if kind == "weighted":
        terms = []
        for it in items:
            m = re.fullmatch(rf"({_NAME})\s*=\s*({_NUM})(?:\s*@\s*({_NUM})\s*\.\.\s*({_NUM}))?", it)
            if m is None:
                raise ValueError(f"rule {t!r}: term {it!r} is not NAME=WEIGHT or NAME=WEIGHT@LO..HI")
            w = float(m.group(2))
            if not (w > 0 and math.isfinite(w)):
                raise ValueError(f"rule {t!r}: weight of {m.group(1)!r} must be > 0")
            lo = None if m.group(3) is None else float(m.group(3))
            hi = None if m.group(4) is None else float(m.group(4))
            if lo is not None and hi is not None and not lo < hi:
                raise ValueError(f"rule {t!r}: range of {m.group(1)!r} must have LO < HI")
            terms.append(Term(m.group(1), w, lo, hi))
        if not terms:
            raise ValueError(f"rule {t!r}: name at least one metric, weighted:NAME=WEIGHT,...")
        if len({x.name for x in terms}) != len(terms):
            raise ValueError(f"rule {t!r}: a metric appears twice")
        return Rule("weighted", t, terms=tuple(terms))
    # constrained
    if not items or not re.fullmatch(_NAME, items[0]):
        raise ValueError(f"rule {t!r}: write constrained:NAME,OTHER<=X,OTHER>=Y")
    bounds = []
    for it in items[1:]:
        m = re.fullmatch(rf"({_NAME})\s*(<=|>=)\s*({_NUM})", it)
        if m is None:
            raise ValueError(f"rule {t!r}: bound {it!r} is not NAME<=NUMBER or NAME>=NUMBER")
        bounds.append(Bound(m.group(1), m.group(2), float(m.group(3))))
    if not bounds:
        raise ValueError(f"rule {t!r}: give at least one bound, e.g. constrained:{items[0]},time_s<=2")
    return Rule("constrained", t, target=items[0], bounds=tuple(bounds))


def _spec_objective(spec: MetricSpec) -> tuple:
    """The arguments of one metric's :class:`~tttd.task.Objective` (direction, transform,
    failure_reward, bounds): paper style, 1/value for a minimised non-negative metric. (Arguments,
    not the object: this module imports nothing of tttd, so tttd.task may import it.)"""
    lo, hi = spec.bounds
    if spec.maximize:
        lo = 0.0 if lo is None else lo
        return ("maximize", "identity", float(lo), (lo, hi))
    if lo is not None and lo >= 0 or lo is None and hi is None:
        return ("minimize", "reciprocal", 0.0, (0.0 if lo is None else lo, hi))
    if hi is None:
        raise ValueError(f"metric {spec.name!r} (minimize) needs finite bounds to be a reward: declare (lo, hi)")
    return ("minimize", "negate", -float(hi), (lo, hi))


@dataclass(frozen=True)
class BoundRule:
    """A rule checked against a task's metrics: it gives each sample's value and the objective."""

    rule: Rule
    specs: tuple[MetricSpec, ...]
    objective: tuple  # the arguments of tttd.task.Objective
    label: str

    def value(self, metrics: Mapping[str, Any]) -> tuple[float | None, str | None]:
        """(value, None) or (None, why the sample is invalid)."""
        def get(name: str) -> float | None:
            v = metrics.get(name)
            if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
                return None
            v = float(v)
            return v if math.isfinite(v) else None

        rule = self.rule
        missing = [n for n in rule.names() if get(n) is None]
        if missing:
            return None, f"metric {missing[0]!r} is missing or not a finite number (rule {rule.text})"
        if rule.kind in ("metric", "constrained"):
            for b in rule.bounds:
                if not b.holds(get(b.name)):
                    return None, f"constraint {b} broken: {b.name} = {get(b.name):.6g} (rule {rule.text})"
            return get(rule.target), None
        total = 0.0
        by_name = {s.name: s for s in self.specs}
        for term in rule.terms:
            spec = by_name.get(term.name, MetricSpec(term.name))
            lo = term.lo if term.lo is not None else spec.bounds[0]
            hi = term.hi if term.hi is not None else spec.bounds[1]
            x = min(max((get(term.name) - lo) / (hi - lo), 0.0), 1.0)
            total += term.weight * (x if spec.maximize else 1.0 - x)
        return total, None


def bind_rule(rule: Rule | str, specs: tuple[MetricSpec, ...]) -> BoundRule | None:
    """Check ``rule`` against a task's metrics; None for ``primary`` (the task as it is).
    ValueError (one line) when a name is unknown or a weighted term has no range."""
    rule = parse_rule(rule) if isinstance(rule, str) else rule
    if rule.kind == "primary":
        return None
    if not specs:
        raise ValueError(f"rule {rule.text!r}: this task declares no named metrics (only 'primary' applies)")
    by_name = {s.name: s for s in specs}
    unknown = [n for n in rule.names() if n not in by_name]
    if unknown:
        raise ValueError(f"rule {rule.text!r}: unknown metric {unknown[0]!r}; the task's metrics: "
                         f"{', '.join(sorted(by_name))}")
    if rule.kind in ("metric", "constrained"):
        return BoundRule(rule, specs, _spec_objective(by_name[rule.target]), rule.target)
    for term in rule.terms:
        lo = term.lo if term.lo is not None else by_name[term.name].bounds[0]
        hi = term.hi if term.hi is not None else by_name[term.name].bounds[1]
        if lo is None or hi is None:
            raise ValueError(f"rule {rule.text!r}: metric {term.name!r} has no declared range: give one, "
                             f"{term.name}={term.weight:g}@LO..HI")
    top = sum(t.weight for t in rule.terms)
    return BoundRule(rule, specs, ("maximize", "identity", 0.0, (0.0, top)), "weighted score")


# ------------------------------------------------------------------------------ the front


def oriented_matrix(objectives: list[Mapping[str, Any] | None], directions: Mapping[str, str]) -> np.ndarray:
    """One row per state, one column per metric of ``directions`` (sorted by name), higher =
    better; NaN where a state lacks the metric."""
    names = sorted(directions)
    out = np.full((len(objectives), len(names)), np.nan)
    for i, obj in enumerate(objectives):
        if not isinstance(obj, Mapping):
            continue
        for j, n in enumerate(names):
            v = obj.get(n)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v)):
                out[i, j] = float(v) if directions[n] == "maximize" else -float(v)
    return out


def front_mask(points: np.ndarray) -> np.ndarray:
    """True for the rows no other row dominates (>= in every column, > in one; higher = better).
    Rows with a NaN are never on the front; equal rows are all kept.

    The rows are walked in descending lexicographic order: the first remaining row is never
    dominated (a row dominating it would come before it, and was either kept without removing
    it or removed as dominated by a kept row, which would then dominate it too), so it joins the
    front and every row it dominates is dropped. Cost O(n m |front|), a few milliseconds at
    1,000 states."""
    n = len(points)
    mask = np.zeros(n, bool)
    if n == 0 or points.ndim != 2 or points.shape[1] == 0:
        return mask
    ok = np.flatnonzero(~np.isnan(points).any(axis=1))
    order = ok[np.lexsort(points[ok].T[::-1])[::-1]]  # first column primary, descending
    rest = order
    while rest.size:
        top = points[rest[0]]
        block = points[rest]
        le = (block <= top).all(axis=1)
        equal = (block == top).all(axis=1)
        mask[rest[equal]] = True
        rest = rest[~le]  # dominated by top (or equal to it, kept above)
    return mask
