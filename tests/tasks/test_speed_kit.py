"""The speed kit on the CPU example: a faster candidate wins, a wrong one is invalid, and every
anti-gaming attempt (caching, reference outputs, telling timed runs apart, threads, patching)
is caught. Each evaluation runs in the real sandbox with small benchmarks and few timed runs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from tttd.registry import get_task
from tttd.tasks.speed import SpeedTask, run_record
from tttd.cli.verify import verify_program

EXAMPLE = str(Path(__file__).resolve().parents[2] / "examples" / "speed_group_means.py")
FAST = (Path(EXAMPLE).parent / "speed_group_means_fast.py").read_text()  # the honest bincount program


@pytest.fixture(scope="module")
def task() -> SpeedTask:
    base = get_task(EXAMPLE)
    spec = dataclasses.replace(
        base.spec, benchmarks=[{"n": 20_000, "groups": 40}],
        timing={"warmup_runs": 2, "min_runs": 5, "max_runs": 5, "max_time_s": 1.0, "max_wall_s": 5.0,
                "statistic": "median"},
    )
    return SpeedTask(spec)


def check(task, code):
    return verify_program(task, code, state=task.initial_states(1, np.random.default_rng(0))[0])


def test_reference_root_and_a_faster_candidate_wins(task):
    root = task.initial_states(2, np.random.default_rng(0))
    assert root[0].value is not None and root[0].value > 0 and root[1].value == root[0].value
    prompt = task.prompt(root[0])[0]["content"]
    assert "us" in prompt and "def group_means" in prompt and "geometric mean" in prompt
    ev = check(task, FAST)
    assert ev.valid, ev.message
    assert ev.value < root[0].value and ev.reward > 1.0  # a speedup over the reference
    assert ev.metrics["speedup"] == ev.reward


@pytest.mark.parametrize("name,code,expect", [
    ("wrong", FAST.replace("s / c", "s / (c + 1)"), "wrong output"),
    ("cache across calls", """\
import numpy as np
_cache = {}

def group_means(data):
    keys, values, groups = data
    if groups not in _cache:  # the 'same shape, same answer' shortcut
        s = np.bincount(keys, weights=values, minlength=groups)
        c = np.bincount(keys, minlength=groups)
        with np.errstate(invalid="ignore", divide="ignore"):
            _cache[groups] = s / c
    return _cache[groups]
""", "wrong output"),
])
def test_invalid_and_hostile_candidates_are_caught(task, name, code, expect):
    ev = check(task, code)
    assert not ev.valid, f"{name}: {ev.message}"
    assert expect in ev.message, f"{name}: {ev.message}"


@pytest.mark.parametrize("name,code", [
    ("tells timed runs apart by the caller's frame", """\
import sys, numpy as np

def group_means(data):
    keys, values, groups = data
    f = sys._getframe(1)
    while f is not None:  # look for the harness's benchmark loop
        if "benchmark" in str(f.f_locals.get("what", "")):
            return np.zeros(groups)  # cheap garbage when timed
        f = f.f_back
    s = np.bincount(keys, weights=values, minlength=groups)
    c = np.bincount(keys, minlength=groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return s / c
"""),
    ("patches the timer", "import time\ntime.perf_counter_ns = lambda: 0\n" + FAST),
    ("installs a profile hook", "import sys\nsys.setprofile(lambda *a: None)\n" + FAST),
    ("patches numpy", "import numpy\nnumpy.isclose = lambda *a, **k: numpy.ones(1, bool)\n" + FAST),
    ("returns an ndarray subclass", FAST + "\nclass Lazy(np.ndarray):\n    pass\n\n_f = group_means\n"
                                         "def group_means(data):\n    return _f(data).view(Lazy)\n"),
])
def test_tricks_that_only_reach_the_worker_are_scored_honestly(task, name, code):
    """The candidate's process holds no timer, check or frame of the harness: these tricks change
    nothing the controller measures, so the program is scored as what it is (a correct one)."""
    ev = check(task, code)
    assert ev.valid, f"{name}: {ev.message}"


@pytest.mark.parametrize("name,code,expect", [
    ("tells timed runs apart by counting calls", """\
import numpy as np
_calls = [0]

def group_means(data):
    keys, values, groups = data
    _calls[0] += 1
    if _calls[0] > 3:  # the tests are over: from now on it is timed
        return np.zeros(groups)
    s = np.bincount(keys, weights=values, minlength=groups)
    c = np.bincount(keys, minlength=groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return s / c
""", "wrong output"),
    ("work on a thread after return", """\
import threading, time, numpy as np

def group_means(data):
    keys, values, groups = data
    out = np.zeros(groups)
    def work():
        time.sleep(0.05)
        s = np.bincount(keys, weights=values, minlength=groups)
        c = np.bincount(keys, minlength=groups)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[:] = s / c
    threading.Thread(target=work).start()  # returns before the work is done
    return out
""", "test "),
    ("patches the public reference", FAST.replace("s / c", "s / (c + 1)")
     + "import reference\nreference.group_means = group_means\n", "wrong output"),
])
def test_invalid_candidates_are_caught(task, name, code, expect):
    ev = check(task, code)
    assert not ev.valid, f"{name}: {ev.message}"
    assert expect in ev.message, f"{name}: {ev.message}"


def test_the_reference_output_is_never_reachable_during_a_call(task):
    code = FAST.replace("def group_means(data):", "def _fast(data):") + """
import gc

def group_means(data):
    mine = _fast(data)
    for o in gc.get_objects():  # hunt for the reference's result of this very input
        if type(o) is np.ndarray and o.shape == mine.shape and o is not mine \\
                and np.array_equal(o, mine, equal_nan=True):
            raise RuntimeError("LEAK: found the expected output")
    return mine
"""
    ev = check(task, code)
    assert ev.valid and "LEAK" not in ev.message, ev.message


SLOW_FIRST_CALL = """\
import time
import numpy as np
_seen = set()

def group_means(data):
    keys, values, groups = data
    if (len(keys), groups) not in _seen:  # one-off work per shape (a compile or an autotune)
        _seen.add((len(keys), groups))
        time.sleep(1.0)  # (timed on the wall clock below: sleeping takes no CPU time)
    s = np.bincount(keys, weights=values, minlength=groups)
    c = np.bincount(keys, minlength=groups)
    with np.errstate(invalid="ignore", divide="ignore"):
        return s / c
"""


def test_every_benchmark_shape_gets_an_untimed_call_first(task):
    """Issue 20 item 4: one-off per-shape work (compiling, autotuning) stays out of every benchmark's
    times, not only benchmark 0's (which the warm-up covers)."""
    spec = dataclasses.replace(task.spec, benchmarks=[{"n": 2000, "groups": 40}, {"n": 3000, "groups": 70}],
                               timing=dict(task.spec.timing, warmup_runs=1, min_runs=3, max_runs=3))
    cfg, res = run_record(spec, SLOW_FIRST_CALL, sandbox=False, timing={"clock": "wall"})
    rec = res.value
    assert rec["ok"], rec["message"]
    assert [b["runs"] for b in rec["benchmarks"]] == [3, 3]
    assert max(b["max_ns"] for b in rec["benchmarks"]) < 0.5e9, rec["benchmarks"]  # the 1 s call is untimed
    cfg, res = run_record(spec, SLOW_FIRST_CALL, sandbox=False, timing={"warm_each": False, "clock": "wall"})
    assert res.value["benchmarks"][1]["max_ns"] >= 0.9e9  # without it the first timed call pays


def test_no_sandbox_path_gives_the_same_verdict(task):
    cfg, res = run_record(task.spec, FAST, sandbox=False)
    assert res.value["ok"], res.value["message"]
    assert len(res.value["benchmarks"]) == 1 and res.value["benchmarks"][0]["runs"] >= 3


class ScriptedPolicy:
    """Answers with a faster program, a wrong one and no code."""

    trainable = False

    def sample(self, prompts, n, params):
        from tttd.types import Sample

        answers = ["```python\n" + FAST + "```", "```python\n" + FAST.replace("s / c", "s / (c + 1)") + "```",
                   "no code today"]
        return [[Sample([1], [2, 3], [-0.1, -0.2], answers[i % 3]) for i in range(n)] for _ in prompts]

    def usage(self):
        from tttd.policy import TokenUsage

        return TokenUsage()


def _example_cfg(out, **kw):
    from tttd.config import resolve_config

    values = dict(task=EXAMPLE, steps=1, groups=1, group_size=3, workers=1, max_tokens=24, seed=0, out=str(out))
    values.update(kw)
    return resolve_config(flag_values=values)


def test_the_example_through_the_loop(tmp_path):
    from tttd.loop import Discovery
    from tttd.rundir import read_jsonl

    run = Discovery(_example_cfg(tmp_path / "r"), tmp_path / "r", policy=ScriptedPolicy())
    run.start()
    run.run()
    rows = list(read_jsonl(tmp_path / "r" / "rollouts.jsonl"))
    assert [r["status"] for r in rows] == ["ok", "invalid", "parse_error"]
    assert rows[0]["valid"] and rows[0]["reward"] > 1.0  # faster than the reference
    assert "wrong output" in rows[1]["message"]


@pytest.mark.slow
def test_the_example_with_the_tiny_model(tiny_model_dir, tmp_path):
    pytest.importorskip("torch")
    from tttd.loop import Discovery
    from tttd.policy.local import LocalPolicy

    policy = LocalPolicy(str(tiny_model_dir), lora_rank=4, seed=0)
    run = Discovery(_example_cfg(tmp_path / "t", group_size=2, steps=1), tmp_path / "t", policy=policy)
    run.start()
    summary = run.run()
    assert summary["steps"] == 1 and summary["samples"] == 2


def test_gpu_name_from_nvidia_smi_else_rocm_smi():
    from types import SimpleNamespace

    from tttd.tasks.speed.hardware import gpu_name

    rocm = ("============ ROCm System Management Interface ============\n"
            "GPU[0]\t\t: Card Series: \t\tAMD Instinct MI300X OAM\nGPU[0]\t\t: Card Model: \t\t0x74a1\n"
            "GPU[1]\t\t: Card Series: \t\tAMD Instinct MI300X OAM\n")

    def fake(outputs):
        def run(cmd, **kw):
            if cmd[0] not in outputs:
                raise FileNotFoundError(cmd[0])
            return SimpleNamespace(stdout=outputs[cmd[0]])
        return run

    assert gpu_name(fake({"nvidia-smi": "NVIDIA H200\nNVIDIA H200\n", "rocm-smi": rocm})) == "NVIDIA H200"
    assert gpu_name(fake({"rocm-smi": rocm})) == "AMD Instinct MI300X OAM"
    assert gpu_name(fake({"nvidia-smi": "", "rocm-smi": rocm})) == "AMD Instinct MI300X OAM"
    assert gpu_name(fake({"rocm-smi": "GPU[0]\t\t: Card Model: \t\t0x74a1\n"})) is None
    assert gpu_name(fake({})) is None
