"""The speed kit's gaming corpus (tests/gaming/speed_programs.py) against the two-process harness,
in the real sandbox: every cheat is refused or scored honestly, every honest twin is valid, and the
group-means twins' times agree with harness-free timing of the same function (within 10%).

All programs are evaluated once, two at a time, into a module-scoped table; the tests read it."""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import time
from pathlib import Path

import pytest

from tests.gaming.speed_programs import CHEATS, FAST, REF, TWINS
from tttd.registry import get_task
from tttd.tasks.speed import SpeedTask, build_config, program_for, run_program
from tttd.types import Candidate

pytest.importorskip("torch")
EXAMPLE = str(Path(__file__).resolve().parents[2] / "examples" / "speed_group_means.py")
BENCH = {"n": 200_000, "groups": 40}
#: the twins' timing comparison: calls of milliseconds (the harness adds ~0.1-0.2 ms of CPU per call on a
#: loaded 2-core machine, docs/benchmarks.md), so that 10% measures the harness, not its fixed overhead
BIG = {"n": 2_000_000, "groups": 40}


def _tasks() -> dict[str, SpeedTask]:
    gm = get_task(EXAMPLE).spec
    gm = dataclasses.replace(gm, tests=[{"n": 10, "groups": 4}, {"n": 3000, "groups": 400}], benchmarks=[BENCH],
                             timing={"warmup_runs": 1, "min_runs": 5, "max_runs": 5, "max_time_s": 5.0,
                                     "max_wall_s": 20.0, "statistic": "median"}, wall_s=60.0)
    from tttd.tasks.speed import mla_decode, trimul

    tri = dataclasses.replace(get_task("trimul").spec, cpu_tests=[trimul.CPU_TESTS[0]], wall_s=60.0)
    mla = dataclasses.replace(get_task("mla_decode").spec, cpu_tests=[mla_decode.CPU_TESTS[2]], wall_s=60.0)
    big = dataclasses.replace(gm, benchmarks=[BIG])
    return {"gm": SpeedTask(gm), "trimul": SpeedTask(tri), "mla": SpeedTask(mla), "big": SpeedTask(big)}


def _evaluate(task: SpeedTask, code: str):
    cfg = build_config(task.spec, device=task.device)
    program = program_for(task.spec, code, cfg)
    res = run_program(program)
    return task.evaluate(Candidate(text="", code=code, program=program), res, None)


@pytest.fixture(scope="module")
def results():
    tasks = _tasks()
    jobs = {("twin", k): (tasks[k], code) for k, code in TWINS.items()}
    jobs[("twin", "ref")] = (tasks["gm"], REF)
    jobs.update({("cheat", c.name, c.task): (tasks[c.task], c.code) for c in CHEATS})
    with cf.ThreadPoolExecutor(2) as pool:
        futs = {key: pool.submit(_evaluate, t, code) for key, (t, code) in jobs.items()}
        out = {key: f.result() for key, f in futs.items()}
    out["tasks"] = tasks
    return out


def test_the_corpus_is_large_and_named():
    assert len(CHEATS) >= 30
    assert len({(c.name, c.task) for c in CHEATS}) == len(CHEATS)
    assert {c.task for c in CHEATS} == {"gm", "trimul", "mla"}


@pytest.mark.parametrize("cheat", CHEATS, ids=[f"{c.task}: {c.name}" for c in CHEATS])
def test_every_cheat_is_refused_or_scored_honestly(results, cheat):
    ev = results[("cheat", cheat.name, cheat.task)]
    if cheat.expect == "invalid":
        assert not ev.valid and ev.status != "needs_gpu", f"{cheat.name}: {ev.status} {ev.message}"
        assert cheat.phrase in ev.message, f"{cheat.name}: {ev.message}"
        return
    assert "LEAK" not in ev.message, ev.message
    assert ev.valid or ev.status == "needs_gpu", f"{cheat.name}: {ev.message}"
    if cheat.max_speedup:
        assert ev.metrics["speedup"] <= cheat.max_speedup, f"{cheat.name}: an unearned speed-up {ev.metrics}"


@pytest.mark.parametrize("name", ["gm", "trimul", "mla", "ref"])
def test_every_honest_twin_is_accepted(results, name):
    ev = results[("twin", name)]
    assert ev.valid or (ev.status == "needs_gpu" and "correct on all" in ev.message), ev.message


def _harness_free_us(task: SpeedTask, code: str, runs: int = 7) -> float:
    """The smallest thread CPU time of the function itself, called in this process on the same shape
    (minima: the least disturbed call on both sides, on a machine that may be loaded)."""
    prob = task._problem_module()
    ns: dict = {"__name__": "twin"}
    if code == REF:
        fn = prob.group_means
    else:
        exec(compile(code, "<twin>", "exec"), ns)
        fn = ns["group_means"]
    times = []
    for s in range(runs):
        data = prob.generate_input(seed=s, **BIG)
        t0 = time.thread_time_ns()
        fn(data)
        times.append(time.thread_time_ns() - t0)
    return min(times) / 1e3


def test_honest_twins_get_their_harness_free_speed_up(results):
    """The bincount twin's speed-up over the reference, timed by the harness, is within 10% of the
    same speed-up timed harness-free (thread CPU time in this process), measured one after the other
    on a machine that may be loaded (a ratio of two times taken together is what stays comparable)."""
    big = results["tasks"]["big"]
    before = {name: _harness_free_us(big, code) for name, code in (("gm", FAST), ("ref", REF))}
    harness = {}
    for name, code in (("gm", FAST), ("ref", REF)):
        ev = _evaluate(big, code)
        assert ev.valid, ev.message
        harness[name] = ev.metrics["bench_min_us"][0]
    after = {name: _harness_free_us(big, code) for name, code in (("gm", FAST), ("ref", REF))}
    # the harness-free minima on both sides of the harness's run: a load change during the test
    # moves both measurements alike (one side alone read 12% apart once as an unprivileged user)
    free = {name: min(before[name], after[name]) for name in before}
    s_h, s_f = harness["ref"] / harness["gm"], free["ref"] / free["gm"]
    assert abs(s_h - s_f) <= 0.10 * s_f, f"speed-up {s_h:.2f} in the harness vs {s_f:.2f} harness-free " \
                                         f"(harness {harness}, harness-free {free})"


def test_static_flags_are_recorded_and_a_task_may_make_them_invalid(results):
    ev = results[("cheat", "timer patched through every reachable name", "gm")]
    assert {"monkeypatch", "sys_modules"} <= set(ev.metrics["flags"]) and "static flags" in ev.message
    assert "flags" not in results[("twin", "gm")].metrics
    from tttd.types import Evaluation

    strict = SpeedTask(dataclasses.replace(results["tasks"]["gm"].spec, invalid_flags=("monkeypatch",)))
    ev = Evaluation(valid=True, value=1.0, reward=1.0, message="ok")
    strict._flag(ev, "import time\ntime.perf_counter = lambda: 0\n")
    assert not ev.valid and "static rules (monkeypatch)" in ev.message


def test_a_worker_that_never_answers_gets_a_timeout_and_nothing_is_left_running(results):
    """A hang in the call: the controller's deadline (before the sandbox's wall limit) gives one
    verdict; the jail's processes all end with it."""
    spec = dataclasses.replace(results["tasks"]["gm"].spec, wall_s=6.0)
    ev = _evaluate(SpeedTask(spec), "import numpy as np\ndef group_means(data):\n    while True:\n        pass\n")
    assert not ev.valid and "timeout" in ev.message, ev.message
    assert "Traceback" not in ev.message
