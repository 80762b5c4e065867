"""Re-scoring for noisy evaluators (``--task-option rescore=K``).

A candidate whose first score reaches the best ``top`` means seen so far is evaluated ``K - 1``
more times; its value is then the mean of the ``K`` scores and its feedback reports the spread.
Everything else keeps its single score: a candidate can only become the best (``best.json``) or
a top archive state by passing this gate, so neither keeps the luckiest single evaluation. The
record of the top means lives in the task object: a resumed run starts it empty (it then
re-scores more until it fills), which changes the cost, never a verdict.
"""

from __future__ import annotations

import concurrent.futures as cf
import math
import threading
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass
class Repeated:
    """The sandbox results of one candidate's evaluations (the first, then the re-scores)."""

    results: list[Any] = field(default_factory=list)

    @property
    def wall_s(self) -> float:  # for the ledger's accounting
        return float(sum(getattr(r, "wall_s", 0.0) or 0.0 for r in self.results))


def spread(values: list[float]) -> dict[str, Any]:
    mean = sum(values) / len(values)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return {"runs": len(values), "mean": mean, "std": std, "min": min(values), "max": max(values),
            "values": list(values)}


class Rescorer:
    """Decides which candidates are re-scored and chains their extra evaluations."""

    def __init__(self, k: int, top: int, maximize: bool = True):
        if int(k) < 1 or int(top) < 1:
            raise ValueError(f"rescore and rescore_top must be >= 1, got {k} and {top}")
        self.k, self.top, self.maximize = int(k), int(top), maximize
        self._means: list[float] = []  # best first
        self._lock = threading.Lock()

    def promising(self, value: float) -> bool:
        with self._lock:
            if len(self._means) < self.top:
                return True
            edge = self._means[self.top - 1]
            return value >= edge if self.maximize else value <= edge

    def record(self, mean: float) -> None:
        with self._lock:
            self._means.append(mean)
            self._means.sort(reverse=self.maximize)
            del self._means[self.top:]

    def launch(self, program: Any, submit: Callable[[Any], cf.Future],
               first_value: Callable[[Any], float | None]) -> cf.Future:
        """A Future of :class:`Repeated`: one evaluation, then ``k - 1`` more when the first
        one's value (``first_value(result)``; None = invalid) is promising."""
        out: cf.Future = cf.Future()
        results: list[Any] = []

        def finish_one(f: cf.Future, pending: list[int]) -> None:
            try:
                r = f.result()
            except Exception as exc:  # executors return failures as results; be safe anyway
                r = exc
            with self._lock:
                results.append(r)
                pending[0] -= 1
                done = pending[0] == 0
            if done:
                out.set_result(Repeated(list(results)))

        def first_done(f: cf.Future) -> None:
            try:
                r = f.result()
                v = first_value(r)
            except Exception:
                out.set_result(Repeated([f.result() if not f.exception() else None]))
                return
            results.append(r)
            if v is None or self.k == 1 or not self.promising(v):
                out.set_result(Repeated(list(results)))
                return
            pending = [self.k - 1]
            for _ in range(self.k - 1):
                submit(program).add_done_callback(lambda g: finish_one(g, pending))

        submit(program).add_done_callback(first_done)
        return out
