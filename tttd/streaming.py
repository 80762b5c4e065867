"""Streaming evaluation (issue 35): a step's evaluations are taken as they finish, in any order.

Before, the loop read a step's sandbox results group by group, in group order: a slow group 0
held back the trusted verdicts of every later group, which then ran one after another once it
was done (the executor's slots were never held: every program of a step is submitted at once and
a freed slot takes the next queued program, whatever its group). Now:

* each candidate's trusted verdict is made as soon as its sandbox result arrives
  (:func:`finished_first`), whatever its group;
* a group's advantages and training data are made when its last verdict is in
  (:class:`tttd.loop.Discovery` calls :func:`tttd.objective.one_group_advantages` then);
* what must not depend on timing stays in group order: the archive, the best and the child filter
  are updated group by group (g = 0, 1, ...), each group as soon as it and every group before it
  are done (:class:`InOrder`). Archive ids, ties between equal values and therefore a resumed run
  are exactly those of the in-order loop; only the moments at which the work happens change.

Deviation from the paper's code: none in what is computed (its loop awaits a whole batch, then
processes it in order).
"""

from __future__ import annotations

import concurrent.futures as cf
from typing import Any, Callable, Iterator, Sequence


def finished_first(pending: list[list[Any]], result: Callable[[Any], Any]) -> Iterator[tuple[int, int, Any, Any]]:
    """``(group, index, candidate, result)`` for every ``(candidate, future)`` of ``pending``, as
    the futures finish. A None future (nothing was run) is ready at once; an
    object that is not a :class:`concurrent.futures.Future` is waited for last, in order.
    ``result(future)`` turns a finished future into its result. Each entry of ``pending`` is
    set to None once yielded, so a sandbox result is freed as soon as its caller drops it."""
    waiting: dict[cf.Future, tuple[int, int]] = {}
    other: list[tuple[int, int]] = []
    ready: list[tuple[int, int]] = []
    for g, group in enumerate(pending):
        for i, (_, fut) in enumerate(group):
            if fut is None:
                ready.append((g, i))
            elif isinstance(fut, cf.Future):
                waiting[fut] = (g, i)
            else:
                other.append((g, i))

    def take(g: int, i: int) -> tuple[int, int, Any, Any]:
        cand, fut = pending[g][i]
        pending[g][i] = None
        return g, i, cand, result(fut)

    for g, i in ready:
        yield take(g, i)
    for fut in cf.as_completed(list(waiting)):  # one waiter per future, not one per wait
        yield take(*waiting.pop(fut))
    for g, i in other:
        yield take(g, i)


class InOrder:
    """Counts down each group's outstanding candidates and says which groups may now be
    processed in order: group g once it and groups 0..g-1 are complete."""

    def __init__(self, sizes: Sequence[int]):
        self.left = [int(n) for n in sizes]
        self.next = 0  # the first group not yet released

    def done(self, g: int) -> bool:
        """One candidate of group ``g`` is in; True when that completes the group."""
        self.left[g] -= 1
        return self.left[g] == 0

    def release(self) -> Iterator[int]:
        """The groups that have become processable, in order (each released once)."""
        while self.next < len(self.left) and self.left[self.next] == 0:
            self.next += 1
            yield self.next - 1
