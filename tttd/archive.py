"""The archive of states: lineage, visit statistics, PUCT / greedy / none selection, persistence.

Each step the loop calls :meth:`Archive.select` for the start states, :meth:`Archive.update` once
per group with that group's children, then :meth:`Archive.flush` once. ``State.value`` is the
task's RAW value; the archive orients it with ``maximize`` (higher = better) for every ranking.

PUCT (SPEC.md 3.1, DESIGN.md): ``score(s) = Q(s) + c * scale * P(s) * sqrt(1 + T) / (1 + n(s))``
with Q the best direct child's value (its own value until it has a valid child), P a linear rank
prior, scale the value range of the non-root states, n visits, T the total. Selection walks the
states by (score, value) descending with lineage blocking, so the picks form an antichain.

Where and why tttd differs from the paper's code:

- **Visits count groups** (default ``visit_counting="group"``): one :meth:`update` adds 1 to n of
  the parent and of every ancestor, and 1 to T, which is what the reference's G-normalisation
  intended (its G was forced to 1, so it counted rollouts). ``visit_counting="rollout"`` adds the
  number of rollouts instead, for comparison. Failed rollouts count toward their group either way.
- **No silent batch shrinking.** When lineage blocking leaves fewer than k states, the batch is
  filled by cycling through the picks in order (best first); the reference returned fewer.
- **Empty roots never outrank a real state.** A root without a value (``value=None``) sorts after
  every real state, and takes the last prior ranks; among themselves empty roots still order by
  their exploration term. (The reference gave TriMul's empty roots value 0.0, the best rank.)
- **Stable tie-breaking.** Ties in value, score or prior are broken by insertion order (earlier
  first), never arbitrarily, so selection is deterministic and reproducible on resume. The seeded
  rng is persisted with the archive but the default selection rules do not consume it.
- Q is the best *direct* child's value (as the reference; not back-propagated to ancestors).
- The size cap keeps every root even if the roots alone exceed ``max_size``.

Several objectives (:mod:`tttd.objectives`): with ``directions`` (metric name -> direction), the
archive also keeps the **Pareto front**, the states no other state dominates on the metrics in
``State.metrics["objectives"]``: :meth:`flush` and :meth:`prune_children` never drop a front
state for the top-k rule, and the size cap keeps front states before the rest. ``reuse="pareto"``
walks the front first (by PUCT score, lineage blocking as usual), then the others. The front is
derived from the states, so persistence and resume need nothing more than ``directions``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from tttd.atomic import atomic_write_text
from tttd.objectives import front_mask, oriented_matrix
from tttd.puct import puct_scores, rank_prior, value_scale
from tttd.types import State

__all__ = ["Archive", "puct_scores", "rank_prior", "value_scale", "REUSE_MODES"]

REUSE_MODES = ("puct", "greedy", "none", "pareto")
VISIT_COUNTING = ("group", "rollout")
FORMAT_VERSION = 1


# --------------------------------------------------------------------------------------------
# Archive
# --------------------------------------------------------------------------------------------


class Archive:
    """States, lineage and visit statistics, with PUCT / greedy / none (best-of-N) selection.

    ``maximize``: direction of ``State.value``. ``reuse``: ``"puct"`` (the paper), ``"greedy"``
    (top-k by value) or ``"none"`` (always the roots: best-of-N sampling). ``c``: PUCT exploration
    constant. ``topk_children``: children kept per parent at :meth:`flush` (None = all).
    ``max_size``: cap at :meth:`flush` (roots always kept). ``visit_counting``: ``"group"``
    (default) or ``"rollout"`` (the reference's). ``seed``: the archive's rng (persisted).

    Storage is columnar (one Python list per statistic, aligned with insertion order) so that
    selection turns it into numpy arrays in a few milliseconds even at 100k states.
    """

    def __init__(
        self,
        maximize: bool = True,
        reuse: str = "puct",
        c: float = 1.0,
        topk_children: int | None = 2,
        max_size: int = 1000,
        visit_counting: str = "group",
        seed: int = 0,
        directions: dict[str, str] | None = None,
    ) -> None:
        if reuse not in REUSE_MODES:
            raise ValueError(f"reuse must be one of {list(REUSE_MODES)}, got {reuse!r}")
        if visit_counting not in VISIT_COUNTING:
            raise ValueError(
                f"visit_counting must be one of {list(VISIT_COUNTING)}, got {visit_counting!r}"
            )
        if not math.isfinite(float(c)) or c < 0:
            raise ValueError(f"c must be a finite number >= 0, got {c!r}")
        if topk_children is not None and int(topk_children) < 1:
            raise ValueError(f"topk_children must be >= 1 or None, got {topk_children!r}")
        if int(max_size) < 1:
            raise ValueError(f"max_size must be >= 1, got {max_size!r}")
        if directions is not None and (not isinstance(directions, dict) or len(directions) < 2 or any(
                d not in ("maximize", "minimize") for d in directions.values())):
            raise ValueError(f"directions must map two or more metrics to maximize/minimize, got {directions!r}")
        if reuse == "pareto" and directions is None:
            raise ValueError("reuse 'pareto' needs a task with several declared metrics (a Pareto front)")
        self.maximize = bool(maximize)
        self.directions = None if directions is None else dict(sorted(directions.items()))
        self.reuse = reuse
        self.c = float(c)
        self.topk_children = None if topk_children is None else int(topk_children)
        self.max_size = int(max_size)
        self.visit_counting = visit_counting
        self.seed = int(seed)
        self.rng = np.random.Generator(np.random.PCG64(self.seed))
        self.total = 0  # T
        self._counter = 0  # next child id number
        self._keys: dict[str, int] = {}  # dedup key -> number of states holding it
        self._totals = {"added": 0, "duplicates": 0, "failures": 0, "evicted": 0, "updates": 0,
                        "unarchivable": 0}
        self.last_added: list[str | None] = []  # ids given to the last update's children
        self._reset_columns()

    def _reset_columns(self) -> None:
        self._pos: dict[str, int] = {}  # id -> position in the columns
        self._list: list[State] = []  # insertion order = archive order
        self._val: list[float] = []  # oriented own value, NaN for an empty root
        self._root: list[bool] = []
        self._n: list[int] = []  # visits
        self._m: list[float] = []  # oriented best direct child value, NaN if none
        self._fail: list[int] = []  # failed rollouts started from this state

    # ---------------------------------------------------------------- basics

    def _orient(self, value: float | None) -> float:
        if value is None:
            return math.nan
        return float(value) if self.maximize else -float(value)

    def _raw(self, oriented: float) -> float:
        return oriented if self.maximize else -oriented

    def __len__(self) -> int:
        return len(self._list)

    def __iter__(self) -> Iterator[State]:
        return iter(list(self._list))

    def __contains__(self, state_id: object) -> bool:
        return state_id in self._pos

    @property
    def states(self) -> list[State]:
        return list(self._list)

    @property
    def roots(self) -> list[State]:
        return [s for s in self._list if s.parent_id is None]

    def _index(self, state_id: str) -> int:
        try:
            return self._pos[state_id]
        except KeyError:
            raise KeyError(f"no state with id {state_id!r} in the archive") from None

    def get(self, state_id: str) -> State:
        return self._list[self._index(state_id)]

    def visits(self, state_id: str) -> int:
        return self._n[self._index(state_id)]

    def failures(self, state_id: str) -> int:
        return self._fail[self._index(state_id)]

    def best_child_value(self, state_id: str) -> float | None:
        """Raw value of the best direct child ever recorded for ``state_id`` (None if none)."""
        m = self._m[self._index(state_id)]
        return None if math.isnan(m) else self._raw(m)

    def best(self) -> State | None:
        """The state with the best real value (earliest on ties); None if there is none."""
        if not self._list:
            return None
        v = np.asarray(self._val, dtype=np.float64)
        if np.isnan(v).all():
            return None
        return self._list[int(np.nanargmax(v))]

    def _front(self) -> np.ndarray:
        """Boolean mask (insertion order) of the Pareto front; all False without ``directions``."""
        if self.directions is None:
            return np.zeros(len(self._list), bool)
        return front_mask(oriented_matrix([s.metrics.get("objectives") for s in self._list], self.directions))

    def front(self) -> list[State]:
        """The non-dominated states (insertion order); empty for a single objective."""
        return [self._list[i] for i in np.flatnonzero(self._front()).tolist()]

    def stats(self) -> dict[str, Any]:
        b = self.best()
        return {
            "size": len(self._list),
            "roots": sum(self._root),
            "T": self.total,
            "best_value": None if b is None else b.value,
            "best_id": None if b is None else b.id,
            "max_visits": max(self._n, default=0),
            "max_depth": max((len(s.ancestors) for s in self._list), default=0),
            **({"front": int(self._front().sum())} if self.directions is not None else {}),
            **self._totals,
        }

    def _insert(self, state: State, visits: int = 0, failures: int = 0, m: float = math.nan) -> None:
        self._pos[state.id] = len(self._list)
        self._list.append(state)
        self._val.append(self._orient(state.value))
        self._root.append(state.parent_id is None)
        self._n.append(int(visits))
        self._m.append(float(m))
        self._fail.append(int(failures))
        if state.key is not None:
            self._keys[state.key] = self._keys.get(state.key, 0) + 1

    # ---------------------------------------------------------------- adding

    def add_roots(self, states: Sequence[State]) -> None:
        """Add initial states as roots (``parent_id`` None; ``value`` None = empty root).

        Roots are never deduplicated against each other (several identical empty roots are
        normal) but their keys count for the dedup of later children.
        """
        for s in states:
            if s.parent_id is not None or s.ancestors:
                raise ValueError(f"root {s.id!r} has a parent ({s.parent_id!r}); roots have none")
            if s.value is not None and not math.isfinite(float(s.value)):
                raise ValueError(f"root {s.id!r} has a non-finite value {s.value!r}")
            if not s.id or s.id in self._pos:
                raise ValueError(f"root id {s.id!r} is empty or already in the archive")
            self._insert(dataclasses.replace(s, ancestors=[], parent_values=[]))

    def _new_id(self) -> str:
        while True:
            sid = f"s{self._counter:06d}"
            self._counter += 1
            if sid not in self._pos:
                return sid

    def update(self, parent_id: str, children: Sequence[State | None], step: int) -> list[State]:
        """Record one group's outcome: a State per valid rollout, None per failed rollout.

        Updates the parent's best-child value with every valid child (duplicates included), the
        visit counts of the parent and all its ancestors still in the archive and T (by 1 per
        call under group counting, by ``len(children)`` under rollout counting), and the parent's
        failure count. Children whose dedup key already exists are dropped, and so are valid
        children marked ``metrics["archivable"] = False`` (after updating the statistics, as
        SPEC 3.3; they are not failures). Returns the new states
        (copies carrying their assigned id, parent_id, ancestors, parent_values and step; the
        caller's objects are not modified). :attr:`last_added` then lists, aligned with
        ``children``, the id each child got (None for a failed rollout or a duplicate).
        """
        if parent_id not in self._pos:
            raise KeyError(
                f"update: parent {parent_id!r} is not in the archive (was it evicted by flush "
                f"before its group was recorded?)"
            )
        if len(children) == 0:
            raise ValueError("update: children is empty; pass None for each failed rollout")
        for ch in children:
            if ch is not None and (ch.value is None or not math.isfinite(float(ch.value))):
                raise ValueError(
                    f"update: a child state needs a finite value, got {ch.value!r}; "
                    f"pass None for a failed rollout"
                )
        p = self._pos[parent_id]
        parent = self._list[p]
        increment = 1 if self.visit_counting == "group" else len(children)
        self._n[p] += increment
        for a in parent.ancestors:
            ap = self._pos.get(a)
            if ap is not None:
                self._n[ap] += increment
        self.total += increment
        n_failed = sum(1 for ch in children if ch is None)
        self._fail[p] += n_failed
        self._totals["failures"] += n_failed
        self._totals["updates"] += 1

        ancestors = [parent_id] + list(parent.ancestors)
        if parent.value is not None:
            parent_values = [float(parent.value)] + list(parent.parent_values)
        else:
            parent_values = list(parent.parent_values)
        added: list[State] = []
        self.last_added = []
        for ch in children:
            if ch is None:
                self.last_added.append(None)
                continue
            ov = self._orient(ch.value)
            if math.isnan(self._m[p]) or ov > self._m[p]:
                self._m[p] = ov
            if ch.metrics.get("archivable", True) is False:
                # valid but over the task's archive limits (SPEC 3.3: statistics first, then
                # the filters): it updated the parent's statistics and is not a failure
                self._totals["unarchivable"] += 1
                self.last_added.append(None)
                continue
            if ch.key is not None and ch.key in self._keys:
                self._totals["duplicates"] += 1
                self.last_added.append(None)
                continue
            new = dataclasses.replace(
                ch,
                id=self._new_id(),
                parent_id=parent_id,
                ancestors=list(ancestors),
                parent_values=list(parent_values),
                step=int(step),
            )
            self._insert(new)
            added.append(new)
            self.last_added.append(new.id)
        self._totals["added"] += len(added)
        return added

    def rival(self, parent_id: str) -> State | None:
        """The child a new child of ``parent_id`` must beat to be kept: the ``topk_children``-th
        best child kept under it now, ranked as :meth:`flush` ranks (value, then earlier first;
        a new child equal to it ranks after it). None when a new valid child would be kept
        whatever its value: the parent has fewer than ``topk_children`` children, every child is
        kept (``topk_children`` None), the archive keeps a Pareto front (a child off the top k
        may be on the front), or the parent is not in the archive. Racing (issue 35) drops a
        child only when shown worse than this state on the same cases."""
        k = self.topk_children
        if k is None or self.directions is not None or parent_id not in self._pos:
            return None
        kids = [i for i, st in enumerate(self._list) if st.parent_id == parent_id]
        if len(kids) < k:
            return None
        return self._list[sorted(kids, key=lambda i: (-self._val[i], i))[k - 1]]

    def child_filter(self) -> "ChildFilter":
        """A :class:`ChildFilter` for the next group's children (see there)."""
        return ChildFilter(self)

    def prune_children(self, parent_id: str) -> None:
        """Apply :meth:`flush`'s ``topk_children`` rule to one parent's children now (no size
        cap), so that the children it will drop (and their artifacts) are not held until the end
        of the step. Dedup keys of dropped children stay known until :meth:`flush`, so a step's
        outcome is the same as with a single flush (parents of one step are distinct and share no
        lineage, so no later group's start state can be dropped here)."""
        if self.topk_children is None:
            return
        kids = [i for i, st in enumerate(self._list) if st.parent_id == parent_id]
        if len(kids) <= self.topk_children:
            return
        worst = math.inf
        ranked = sorted(kids, key=lambda i: (-self._val[i] if not math.isnan(self._val[i]) else worst, i))
        on_front = self._front()
        drop = {i for i in ranked[self.topk_children:] if not on_front[i]}
        if not drop:
            return
        old = self._list, self._n, self._m, self._fail
        keys = self._keys
        self._totals["evicted"] += len(drop)
        self._reset_columns()
        self._keys = {}
        for i in range(len(old[0])):
            if i not in drop:
                self._insert(old[0][i], visits=old[1][i], m=old[2][i], failures=old[3][i])
        self._keys = keys

    def flush(self) -> None:
        """Keep the best ``topk_children`` children per parent, then apply the size cap.

        Roots are always kept; the cap fills the remaining room with the best values (earlier
        first on ties). Insertion order is preserved. Call once per step after all updates.
        """
        n = len(self._list)
        if n == 0:
            return
        vals = np.asarray(self._val, dtype=np.float64)
        roots = np.asarray(self._root, dtype=bool)
        idx = np.arange(n)
        # NaN only on roots, which are always kept; treat as worst for the sorts below
        neg = np.where(np.isnan(vals), np.inf, -vals)
        keep = roots.copy()
        if self.topk_children is None:
            keep[:] = True
        else:
            codes: dict[str, int] = {}
            parent_code = np.fromiter(
                (-1 if s.parent_id is None else codes.setdefault(s.parent_id, len(codes))
                 for s in self._list), np.int64, n,
            )
            order = np.lexsort((idx, neg, parent_code))  # by parent, best first, then age
            sorted_codes = parent_code[order]
            starts = np.r_[0, np.flatnonzero(np.diff(sorted_codes)) + 1]
            group_start = np.repeat(starts, np.diff(np.r_[starts, n]))
            rank_in_group = np.arange(n) - group_start
            keep[order[rank_in_group < self.topk_children]] = True
            keep |= roots
        on_front = self._front()
        keep |= on_front
        if int(keep.sum()) > self.max_size:
            room = max(self.max_size - int(roots.sum()), 0)
            cand = np.flatnonzero(keep & ~roots)
            best = cand[np.lexsort((cand, neg[cand], ~on_front[cand]))][:room]  # the front first
            keep = roots.copy()
            keep[best] = True
        if keep.all():  # nothing to drop now; the keys of children prune_children dropped go, as
            self._keys = {}  # below and as in an archive loaded from disk (exact resume)
            for st in self._list:
                if st.key is not None:
                    self._keys[st.key] = self._keys.get(st.key, 0) + 1
            return
        old = self._list, self._n, self._m, self._fail
        self._totals["evicted"] += int((~keep).sum())
        self._reset_columns()
        self._keys = {}
        for i in np.flatnonzero(keep).tolist():
            self._insert(old[0][i], visits=old[1][i], m=old[2][i], failures=old[3][i])

    # ---------------------------------------------------------------- selection

    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return (
            np.asarray(self._val, dtype=np.float64),
            np.asarray(self._m, dtype=np.float64),
            np.asarray(self._n, dtype=np.float64),
            np.asarray(self._root, dtype=bool),
        )

    def scores(self) -> dict[str, float]:
        """Current PUCT score of every state (for logging and tests)."""
        sc = puct_scores(*self._arrays(), self.total, self.c)
        return {s.id: float(x) for s, x in zip(self._list, sc)}

    def select(self, k: int) -> list[State]:
        """Pick ``k`` start states (see the class docstring for the modes); always returns k.

        PUCT walks states by (score, value) descending, empty roots last, ties by insertion order,
        blocking the lineage (the state, its ancestors, its descendants) of each pick; if fewer
        than k states remain unblocked, the batch is filled by cycling through the picks in order.
        Greedy takes the top k by value; none cycles through the roots.
        """
        k = int(k)
        if k < 1:
            raise ValueError(f"select: k must be >= 1, got {k}")
        if not self._list:
            raise ValueError("select: the archive is empty; add roots first")
        if self.reuse == "none":
            roots = self.roots
            return [roots[i % len(roots)] for i in range(k)]
        v, m, n, r = self._arrays()
        empty = np.isnan(v)
        vkey = np.where(empty, -np.inf, v)
        if self.reuse == "greedy":
            order = np.lexsort((-vkey, empty))
            picks = [self._list[int(i)] for i in order[:k]]
        else:
            sc = puct_scores(v, m, n, r, self.total, self.c)
            keys = (-vkey, -sc, empty) + ((~self._front(),) if self.reuse == "pareto" else ())
            order = np.lexsort(keys)  # last key is primary; lexsort is stable
            picks = self._walk_blocked(order, k)
        return [picks[i % len(picks)] for i in range(k)]

    def _walk_blocked(self, order: np.ndarray, k: int) -> list[State]:
        """Walk states in ``order``; skip any on the lineage of an earlier pick.

        A state is blocked if it is a pick or an ancestor of one (the ``blocked`` set), or a
        descendant of one (one of its own ``ancestors`` is a pick). Using each state's full
        ancestor list (not a children map) keeps descendants blocked even when an intermediate
        state was evicted. Cost: O(depth) per visited state; the walk stops at k picks.
        """
        picked: set[str] = set()
        blocked: set[str] = set()
        picks: list[State] = []
        states = self._list
        for i in order.tolist():
            s = states[i]
            if s.id in blocked or any(a in picked for a in s.ancestors):
                continue
            picks.append(s)
            picked.add(s.id)
            blocked.add(s.id)
            blocked.update(s.ancestors)
            if len(picks) == k:
                break
        return picks

    # ---------------------------------------------------------------- persistence

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "config": {
                "maximize": self.maximize,
                "reuse": self.reuse,
                "c": self.c,
                "topk_children": self.topk_children,
                "max_size": self.max_size,
                "visit_counting": self.visit_counting,
                "seed": self.seed,
                **({"directions": dict(self.directions)} if self.directions is not None else {}),
            },
            "T": self.total,
            "counter": self._counter,
            "totals": dict(self._totals),
            "rng": self.rng.bit_generator.state,
            "states": [
                {
                    "state": s.to_dict(),
                    "visits": self._n[i],
                    "failures": self._fail[i],
                    "best_child_value": None if math.isnan(self._m[i]) else self._raw(self._m[i]),
                }
                for i, s in enumerate(self._list)
            ],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Archive":
        if data.get("format") != FORMAT_VERSION:
            raise ValueError(
                f"unsupported archive format {data.get('format')!r} (expected {FORMAT_VERSION})"
            )
        arch = cls(**data["config"])
        arch.total = int(data["T"])
        arch._counter = int(data["counter"])
        arch._totals.update({k: int(v) for k, v in data.get("totals", {}).items()})
        arch.rng.bit_generator.state = data["rng"]
        for entry in data["states"]:
            s = State.from_dict(entry["state"])
            if s.id in arch._pos:
                raise ValueError(f"archive data has duplicate state id {s.id!r}")
            bc = entry.get("best_child_value")
            arch._insert(
                s,
                visits=int(entry["visits"]),
                failures=int(entry["failures"]),
                m=math.nan if bc is None else arch._orient(bc),
            )
        return arch

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=True) + "\n"

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the archive as JSON atomically (temp file in the same dir, fsync, os.replace)."""
        atomic_write_text(Path(path), self.dumps())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "Archive":
        with open(path, encoding="utf-8") as fh:
            return cls.from_dict(json.load(fh))


class ChildFilter:
    """Which children of one group can still be kept by :meth:`Archive.update` + the top-k rule,
    told as the rollouts are evaluated one by one, so that the caller can drop the artifacts of the
    others at once (bounded memory: at most ``topk_children`` artifacts per group are held).

    A child is droppable when its dedup key is already in the archive or was offered earlier in
    the group (``update`` would skip it as a duplicate), or when ``topk_children`` children of the
    group rank above it (value, then earlier first: the order :meth:`Archive.flush` keeps)."""

    def __init__(self, archive: Archive):
        self.archive = archive
        self.seen: set[str] = set()
        self.top: list[tuple[float, int]] = []  # min-heap of (oriented value, -index): worst first

    def offer(self, index: int, value: float, key: str | None) -> list[int]:
        """Offer the valid child ``index``; returns the indices whose artifacts may be dropped now."""
        import heapq

        if key is not None:
            if key in self.seen or key in self.archive._keys:
                return [index]
            self.seen.add(key)
        k = self.archive.topk_children
        if k is None or self.archive.directions is not None:  # a child off the top k may be on the front
            return []
        heapq.heappush(self.top, (self.archive._orient(value), -index))
        if len(self.top) > k:
            return [-heapq.heappop(self.top)[1]]
        return []
