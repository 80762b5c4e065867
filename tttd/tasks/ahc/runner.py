"""Evaluate one C++ candidate over many cases on the executor's workers.

:func:`evaluate_candidate` compiles once (a jailed run submitted to the executor), then submits
each case as its own jailed run, at most ``window`` at a time, scores every finished case in the
trusted process, and stops at the first case that is not accepted (as the paper does: the cases
not collected yet count as "not executed", score 0). It returns a ``Future[Outcome]`` at once;
the work happens in the executor's completion callbacks, so several candidates' cases interleave
on the same workers (local pool or Ray) and nothing blocks a thread while waiting.

Racing (``stages``), beyond the paper: the cases run in a random order of the candidate's own
(:func:`tttd.racing.case_order`, fixed by its code) and in stages (e.g. 10, 20, 40, 80 cases,
then all); after each stage but the last the candidate goes on unless the sequential test of
:class:`tttd.racing.RaceTest` (paired with the rival's scores on the same cases, error rate
``race_alpha``) shows it cannot beat the rival: the k-th best child kept under its parent, so
it cannot enter the archive's top-k there (the caller picks the rival; no rival scores: every
case runs). A candidate that is raced out keeps the mean of the cases it ran as an estimate,
flagged ``raced_out``.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import threading
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Sequence

from tttd.racing import RaceTest, case_order
from tttd.tasks.ahc import cpp
from tttd.tasks.ahc.scorers import score_case
from tttd.types import Program, SandboxResult

Submit = Callable[[Program], "cf.Future[SandboxResult]"]


@dataclass
class CaseResult:
    """One case's verdict. ``status``: AC, WA, RE, TLE, MLE, OLE, IE (internal error)."""

    index: int
    seed: int
    status: str
    score: int = 0
    message: str = ""
    cpu_s: float = 0.0
    wall_s: float = 0.0
    maxrss_kb: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Outcome:
    """The trusted result of evaluating one candidate."""

    compiled: bool
    compile_message: str = ""
    compile_wall_s: float = 0.0
    n_cases: int = 0
    cases: list[CaseResult] = field(default_factory=list)  # collected cases, in index order
    failed: CaseResult | None = None  # the first non-accepted case, if any
    raced_out: bool = False
    output_tail: str = ""  # a tail of the last collected case's stdout (prompt context)
    stderr_tail: str = ""

    @property
    def complete(self) -> bool:
        """All cases ran and were accepted (the paper's correctness = 1)."""
        return self.compiled and self.failed is None and not self.raced_out and len(self.cases) == self.n_cases

    @property
    def scores(self) -> list[int]:
        return [c.score for c in self.cases]

    @property
    def mean(self) -> float:
        """Mean over all ``n_cases`` (cases not run count 0), the paper's ``performance``."""
        return sum(self.scores) / self.n_cases if self.n_cases else 0.0

    @property
    def cpu_s(self) -> float:
        return sum(c.cpu_s for c in self.cases) + (self.failed.cpu_s if self.failed else 0.0)


def parse_stages(spec: Any, n_cases: int) -> list[int]:
    """``"10,40"`` -> [10, 40, n_cases] (stage ends, increasing, the last is all cases)."""
    if spec in (None, "", False, "off", "none", 0):
        return [n_cases]
    items = spec if isinstance(spec, (list, tuple)) else str(spec).replace(" ", "").split(",")
    ends = []
    for it in items:
        try:
            v = int(it)
        except (TypeError, ValueError):
            raise ValueError(f"race stages must be case counts like '10,40', got {spec!r}") from None
        if v < 1:
            raise ValueError(f"race stages must be >= 1, got {v}")
        if v < n_cases and (not ends or v > ends[-1]):
            ends.append(v)
    return ends + [n_cases]


def evaluate_candidate(
    problem: str | Callable[[str, str], Any],
    source: str,
    cases: Sequence[tuple[int, str]],
    submit: Submit,
    *,
    window: int = 2,
    stages: Sequence[int] | None = None,
    rival_scores: Sequence[float] | None = None,
    maximize: bool = True,
    race_alpha: float = 0.01,
    cxx: str | None = None,
    compile_program: Program | None = None,
) -> "cf.Future[Outcome]":
    """Compile ``source`` and run it on ``cases`` ((seed, input text) pairs); see the module doc.
    ``problem`` is a built-in problem name or a scorer ``(input_text, output_text) -> CaseScore``.
    ``rival_scores``: the per-case scores (same cases) a racing candidate must beat; ``maximize``:
    the scores' direction (False: lower is better, the test compares negated scores)."""
    scorer = problem if callable(problem) else functools.partial(score_case, problem)
    run = _CandidateRun(scorer, source, list(cases), submit, max(1, int(window)),
                        list(stages or [len(cases)]), rival_scores, maximize, race_alpha, cxx)
    run.start(compile_program)
    return run.future


class _CandidateRun:
    def __init__(self, scorer, source, cases, submit, window, stages, rival_scores, maximize, race_alpha, cxx):
        self.scorer, self.source, self.cases, self.submit = scorer, source, cases, submit
        self.window, self.stages, self.cxx = window, stages, cxx
        self.sign = 1.0 if maximize else -1.0  # the test assumes higher is better
        usable = rival_scores is not None and len(rival_scores) == len(cases)  # the same cases
        self.rival = [self.sign * float(x) for x in rival_scores] if usable else None
        if self.rival is None:  # no rival to race against (it would be kept if valid): one stage
            self.stages = [len(cases)]
        racing = len(self.stages) > 1
        # racing runs the cases in the candidate's own random order; otherwise in index order
        self.order = case_order(len(cases), source) if racing else list(range(len(cases)))
        self.test = RaceTest(race_alpha, len(self.stages) - 1, len(cases)) if racing else None
        self.future: cf.Future = cf.Future()
        self.lock = threading.RLock()
        self.outcome = Outcome(compiled=False, n_cases=len(cases))
        self.binary = b""
        self.queue: list[int] = []
        self.next_index = 0
        self.stage = 0
        self.in_flight = 0
        self.results: dict[int, CaseResult] = {}
        self.finished = False
        self.last_stdout = ""

    # ---------------------------------------------------------------- plumbing
    def _finish(self) -> None:
        if self.finished:
            return
        self.finished = True
        self.outcome.cases = [self.results[i] for i in sorted(self.results)]
        self.outcome.output_tail = self.last_stdout[-2000:]
        self.future.set_result(self.outcome)

    def _guard(self, fn, *args) -> None:
        try:
            fn(*args)
        except Exception as exc:  # an internal error must still resolve the future
            with self.lock:
                if not self.finished:
                    self.outcome.failed = CaseResult(-1, -1, "IE", message=f"internal error: {type(exc).__name__}: {exc}")
                    self._finish()

    def start(self, program: Program | None) -> None:
        try:
            prog = program or cpp.compile_program(self.source, self.cxx)
            fut = self.submit(prog)
        except Exception as exc:
            self.outcome.compile_message = f"cannot compile: {type(exc).__name__}: {exc}"
            self._finish()
            return
        fut.add_done_callback(lambda f: self._guard(self._compiled, f))

    def _compiled(self, fut: cf.Future) -> None:
        res: SandboxResult = fut.result()
        comp = cpp.read_compile(res)
        with self.lock:
            self.outcome.compile_wall_s = res.wall_s
            self.outcome.compile_message = comp.message
            if not comp.ok:
                self._finish()
                return
            self.outcome.compiled = True
            self.binary = comp.binary
            if not self.cases:
                self._finish()
                return
            self._open_stage()
        self._fill()

    def _open_stage(self) -> None:
        end = self.stages[self.stage]
        self.queue.extend(self.order[self.next_index:end])
        self.next_index = end

    def _fill(self) -> None:
        todo = []
        with self.lock:
            while not self.finished and self.queue and self.in_flight < self.window:
                i = self.queue.pop(0)
                self.in_flight += 1
                todo.append(i)
        for i in todo:
            seed, text = self.cases[i]
            fut = self.submit(cpp.case_program(self.binary, text, self.cxx))
            fut.add_done_callback(lambda f, i=i: self._guard(self._case_done, i, f))

    def _case_done(self, i: int, fut: cf.Future) -> None:
        seed, text = self.cases[i]
        res: SandboxResult = fut.result()
        run = cpp.read_case(res)
        score, status, message = 0, run.status, run.message
        if status == "AC":
            verdict = self.scorer(text, run.output)
            if verdict.ok:
                score = verdict.score
            else:
                status, message = "WA", f"wrong answer: {verdict.error}"
        cr = CaseResult(i, seed, status, score, message, run.cpu_s, run.wall_s, run.maxrss_kb)
        with self.lock:
            if self.finished:
                return
            self.in_flight -= 1
            if status != "AC":
                self.outcome.failed = cr
                self.outcome.stderr_tail = run.stderr[-2000:]
                self.last_stdout = res.stdout or ""
                self._finish()
                return
            self.results[i] = cr
            self.last_stdout = run.output
            if self.queue or self.in_flight:
                pass
            elif self.stage + 1 < len(self.stages):
                ran = self.order[:self.next_index]
                if self.test.drop([self.sign * self.results[j].score for j in ran], [self.rival[j] for j in ran]):
                    self.outcome.raced_out = True
                    self._finish()
                    return
                self.stage += 1
                self._open_stage()
            else:
                self._finish()
                return
        self._fill()
