"""The case scheduler without a compiler: a fake executor answers the compile and each case, so
early stopping, the window and racing are checked exactly and fast."""

import base64
import concurrent.futures as cf
import threading

import pytest

from tttd.racing import case_order
from tttd.tasks.ahc.runner import evaluate_candidate, parse_stages
from tttd.types import SandboxResult

INPUT = "10 4 500 1\n1 1 1 1 1 1 1 1 1 1\n" + "1 1 1 1 1 1 1 1 1 1\n" * 4
NOTHING = "-1\n" * 500
ONE = "0 0\n" + "-1\n" * 499  # score round(1e5 log2 500) = 896578
SHORT = "-1\n"


class FakeExecutor:
    """Runs 'programs' in threads: the compile returns a binary; a case's output is chosen by
    ``answer(seed)``; records the order in which cases were submitted and the peak concurrency."""

    def __init__(self, answer, compile_ok=True):
        self.answer, self.compile_ok = answer, compile_ok
        self.pool = cf.ThreadPoolExecutor(2)
        self.submitted, self.active, self.peak = [], 0, 0
        self.lock = threading.Lock()

    def submit(self, program):
        if "Main.cpp" in program.files:
            if self.compile_ok:
                value = {"binary": base64.b64encode(b"\x7fELF-fake").decode()}
                return self.pool.submit(lambda: SandboxResult("ok", value=value))
            return self.pool.submit(lambda: SandboxResult("error", stderr="Main.cpp:1:1: error: boom", returncode=1))
        text = program.files["input.txt"]
        assert program.files["a.out"] == b"\x7fELF-fake"
        seed = int(text.split()[-1])
        with self.lock:
            self.submitted.append(seed)

        def run():
            with self.lock:
                self.active += 1
                self.peak = max(self.peak, self.active)
            out = self.answer(seed)
            with self.lock:
                self.active -= 1
            rep = {"exit": 0, "signal": None, "cpu_s": 0.5, "wall_s": 0.5, "maxrss_kb": 1000,
                   "bytes": len(out), "utf8": True}
            return SandboxResult("ok", value=rep, stdout=out)

        return self.pool.submit(run)


def run(answer, n=8, **kw):
    """Evaluate over n cases; each input carries its seed as a trailing token (the scorer reads
    only the numbers it needs, the fake reads the seed back)."""
    ex = FakeExecutor(answer, compile_ok=kw.pop("compile_ok", True))
    cases = [(s, INPUT + f"{s}\n") for s in range(n)]
    return evaluate_candidate("ahc058", "int main(){}", cases, ex.submit, **kw).result(timeout=30), ex


def test_all_cases_accepted():
    out, ex = run(lambda s: NOTHING, n=6, window=3)
    assert out.complete and out.mean == 0 and len(out.cases) == 6
    assert ex.peak <= 3 and sorted(ex.submitted) == list(range(6))


def test_compile_error_runs_no_case():
    out, ex = run(lambda s: NOTHING, compile_ok=False)
    assert not out.compiled and "boom" in out.compile_message and ex.submitted == []


def test_stops_at_first_failure_and_submits_no_more():
    out, ex = run(lambda s: SHORT if s == 2 else NOTHING, n=20, window=1)
    assert not out.complete and out.failed.seed == 2 and out.failed.status == "WA"
    assert "Not enough actions" in out.failed.message
    assert ex.submitted == [0, 1, 2]  # window 1: nothing after the failing case was started
    assert [c.seed for c in out.cases] == [0, 1]


def test_racing_discards_a_clearly_worse_candidate_after_the_first_stage():
    rival = [896578] * 12  # the rival scored ONE's value on every case
    out, ex = run(lambda s: NOTHING, n=12, window=2, stages=parse_stages("4", 12), rival_scores=rival)
    first = case_order(12, "int main(){}")[:4]  # racing runs the candidate's own random order
    assert out.raced_out and len(out.cases) == 4 and sorted(ex.submitted) == sorted(first)
    assert sorted(c.seed for c in out.cases) == sorted(first) and not out.complete


def test_racing_keeps_a_candidate_that_can_still_win():
    rival = [0] * 12
    out, ex = run(lambda s: ONE, n=12, window=2, stages=parse_stages("4,8", 12), rival_scores=rival)
    assert out.complete and not out.raced_out and len(ex.submitted) == 12


def test_racing_without_rival_scores_is_a_full_evaluation():
    out, ex = run(lambda s: NOTHING, n=6, window=2, stages=parse_stages("2", 6), rival_scores=None)
    assert out.complete and len(ex.submitted) == 6


def test_racing_a_minimised_score_compares_lower_as_better():
    """maximize=False: the test sees negated scores, so a child that scores HIGHER than its rival
    on every case is the worse one (dropped) and a lower-scoring child goes on to the end."""
    worse, ex = run(lambda s: ONE, n=12, window=2, stages=parse_stages("4", 12), rival_scores=[0] * 12,
                    maximize=False)
    assert worse.raced_out and len(ex.submitted) == 4
    better, ex = run(lambda s: NOTHING, n=12, window=2, stages=parse_stages("4", 12), rival_scores=[896578] * 12,
                     maximize=False)
    assert better.complete and not better.raced_out and len(ex.submitted) == 12


def test_parse_stages():
    assert parse_stages(None, 150) == [150]
    assert parse_stages("10,40", 150) == [10, 40, 150]
    assert parse_stages("10,200", 150) == [10, 150]
    with pytest.raises(ValueError):
        parse_stages("ten", 150)


def racing_task(**options):
    from tttd.registry import get_task

    task = get_task("ahc058", cases="0-11", parallel=2, **options)
    task._cases = [(s, INPUT + f"{s}\n") for s in range(12)]
    return task


def scored(name, value, scores):
    from tttd.types import State

    return State(id=name, value=value, artifact={"code": "int main(){}"}, metrics={"case_scores": scores})


def test_task_reports_a_raced_out_child_with_its_partial_mean():
    task = racing_task(race="4")
    parent = scored("p", 2e6, [2_000_000] * 12)
    rival = scored("r", 2e6, [2_000_000] * 12)  # the 2nd best child kept under the parent
    cand = task.parse("```cpp\nint main(){}\n```", parent)
    ex = FakeExecutor(lambda s: ONE)
    ev = task.evaluate(cand, task.launch(cand, ex.submit, parent, rival=rival).result(timeout=30), parent)
    assert ev.status == "raced_out" and not ev.valid and "4/12" in ev.message
    assert "cannot enter the top-k under its parent" in ev.message
    assert ev.reward == pytest.approx(896578 / 3e6) and ev.metrics["cases_run"] == 4
    assert "```cpp\nint main(){}" in task.prompt(parent)[0]["content"]
    # without racing the same child is fully evaluated and valid
    task = racing_task()
    ev = task.evaluate(cand, task.launch(cand, FakeExecutor(lambda s: ONE).submit, parent, rival=rival)
                       .result(timeout=30), parent)
    assert ev.valid and ev.value == 896578 and ev.metrics["case_scores"] == [896578] * 12


def test_the_bar_is_the_rival_not_the_parent():
    """Issue 35: a child is raced out only when it cannot enter the parent's top-k, i.e. cannot beat
    the rival (the k-th best kept child). The child here scores 896,578 on every case."""
    task = racing_task(race="4")
    cand = task.parse("```cpp\nint main(){}\n```", None)

    def evaluate(parent, rival):
        fut = task.launch(cand, FakeExecutor(lambda s: ONE).submit, parent, rival=rival)
        return task.evaluate(cand, fut.result(timeout=30), parent)

    strong_parent = scored("p", 2e6, [2_000_000] * 12)
    # fewer than k children kept under the parent: no rival, it would enter: never raced
    ev = evaluate(strong_parent, None)
    assert ev.valid and ev.metrics["cases_run"] == 12
    # far below its parent but above the rival: it would enter the top-k, never dropped
    ev = evaluate(strong_parent, scored("r", 1.0, [1] * 12))
    assert ev.valid and ev.metrics["cases_run"] == 12
    # above its parent but below the rival: it cannot enter the top-k, dropped at the first look
    ev = evaluate(scored("p", 1.0, [1] * 12), scored("r", 2e6, [2_000_000] * 12))
    assert ev.status == "raced_out" and ev.metrics["cases_run"] == 4
    # a rival without per-case scores on these cases (another case set): every case runs
    ev = evaluate(strong_parent, scored("r", 2e6, [2_000_000] * 5))
    assert ev.valid and ev.metrics["cases_run"] == 12


@pytest.mark.parametrize("alpha, raced", [(0.3, True), (0.01, False)])
def test_race_alpha_reaches_the_sequential_test(alpha, raced):
    """A child a little worse than its rival on noisy cases: a loose error rate drops it after
    the first stage, the default keeps it (the same cases, the same scores)."""
    task = racing_task(race="4", race_alpha=alpha)
    order = case_order(12, "int main(){}")
    rival_scores = [896578] * 12
    for pos, delta in enumerate([100_000, -50_000, 120_000, 80_000]):  # the child's first 4 cases
        rival_scores[order[pos]] += delta
    parent = scored("p", 1.0, [1] * 12)
    cand = task.parse("```cpp\nint main(){}\n```", parent)
    fut = task.launch(cand, FakeExecutor(lambda s: ONE).submit, parent, rival=scored("r", 9e5, rival_scores))
    ev = task.evaluate(cand, fut.result(timeout=30), parent)
    assert (ev.status == "raced_out") == raced
    assert ev.metrics["cases_run"] == (4 if raced else 12)
