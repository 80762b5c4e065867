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
BIG = {"n": 1_000_000, "groups": 40}


def _tasks() -> dict[str, SpeedTask]:
    gm = get_task(EXAMPLE).spec
    gm = dataclasses.replace(gm, tests=[{"n": 10, "groups": 4}, {"n": 3000, "groups": 400}], benchmarks=[BENCH],
                             timing={"warmup_runs": 1, "min_runs": 9, "max_runs": 9, "max_time_s": 5.0,
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
    jobs[("timed", "gm")] = (tasks["big"], FAST)
    jobs[("timed", "ref")] = (tasks["big"], REF)
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


def _harness_free_us(task: SpeedTask, code: str, runs: int = 9) -> float:
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


@pytest.mark.parametrize("name,code", [("gm", FAST), ("ref", REF)])
def test_honest_twins_are_timed_like_harness_free_code(results, name, code):
    ev = results[("timed", name)]
    assert ev.valid, ev.message
    free = _harness_free_us(results["tasks"]["big"], code)
    harness = ev.metrics["bench_min_us"][0]
    assert abs(harness - free) <= 0.10 * free, f"harness {harness:.1f} us vs harness-free {free:.1f} us"
