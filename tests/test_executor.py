"""LocalExecutor and RayExecutor: order kept, timeouts returned as results, clean shutdown."""

from __future__ import annotations

import os
import threading
import time

import pytest

from tests.proc_helpers import child_pids, sandbox_dirs
from tttd.executor import LocalExecutor, make_executor
from tttd.types import Limits, Program

LIM = Limits(wall_s=3, memory_mb=256)


def square(i: int) -> Program:
    return Program(source="def main(i):\n    return i * i\n", args={"i": i}, limits=LIM)


def sleeper(wall: float) -> Program:
    return Program(source="import time\ndef main():\n    time.sleep(60)\n", limits=Limits(wall_s=wall, memory_mb=256))


def test_map_keeps_order_and_cleans_up():
    threads, dirs = threading.active_count(), sandbox_dirs()
    with LocalExecutor(workers=2) as ex:
        assert ex.workers == 2
        results = ex.map([square(i) for i in range(8)])
    assert [r.value for r in results] == [i * i for i in range(8)]
    assert all(r.status == "ok" for r in results)
    assert threading.active_count() == threads
    assert child_pids() == [] and sandbox_dirs() - dirs == set()


def test_timeouts_are_results_and_close_leaves_nothing():
    threads, dirs = threading.active_count(), sandbox_dirs()
    ex = LocalExecutor(workers=2)
    t0 = time.perf_counter()
    futs = [ex.submit(sleeper(1.0)), ex.submit(square(3)), ex.submit(Program(source=None))]
    res = [f.result(timeout=30) for f in futs]
    ex.close()
    assert time.perf_counter() - t0 < 10
    assert res[0].status == "timeout" and res[1].value == 9
    assert res[2].status == "error" and "source or command" in res[2].message  # bad Program: a result
    assert threading.active_count() == threads
    assert child_pids() == [] and sandbox_dirs() - dirs == set()
    with pytest.raises(RuntimeError):
        ex.submit(square(1))


def test_defaults_and_pinning():
    ex = LocalExecutor(cpus_per_eval=1)
    assert ex.workers == max(1, os.cpu_count() // 1)
    ex.close()
    ncpu = len(os.sched_getaffinity(0))
    with LocalExecutor(workers=8, pin_cpus=True) as ex:
        assert ex.workers == ncpu
        prog = Program(source="import os\ndef main():\n    return sorted(os.sched_getaffinity(0))\n", limits=LIM)
        got = ex.map([prog] * 4)
    allowed = sorted(os.sched_getaffinity(0))
    assert all(r.status == "ok" and len(r.value) == 1 and r.value[0] in allowed for r in got)
    with pytest.raises(ValueError):
        LocalExecutor(cpus_per_eval=0)
    with pytest.raises(ValueError):
        make_executor("nope")


@pytest.fixture(scope="module")
def ray_executor():
    pytest.importorskip("ray")
    from tttd.executor import RayExecutor

    ex = RayExecutor(cpus_per_eval=1, num_cpus=2)
    yield ex
    ex.close()


@pytest.mark.slow
def test_ray_matches_local(ray_executor):
    programs = [square(i) for i in range(4)] + [sleeper(1.0)]
    ray_res = ray_executor.map(programs)
    with LocalExecutor(workers=2) as ex:
        local_res = ex.map(programs)
    assert [r.status for r in ray_res] == [r.status for r in local_res] == ["ok"] * 4 + ["timeout"]
    assert [r.value for r in ray_res] == [r.value for r in local_res]
    assert ray_res[0].protections == local_res[0].protections


@pytest.mark.slow
def test_ray_bad_program_is_a_result(ray_executor):
    r = ray_executor.submit(Program(source=None)).result(timeout=60)
    assert r.status == "error"
