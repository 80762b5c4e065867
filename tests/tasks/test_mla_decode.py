"""MLA decode's correctness path on the CPU (no GPU needed): the contest contract works in the sandbox,
our reference agrees with the root, and wrong-shape, wrong-value, NaN, stale-cache, skipped-head,
low-precision and every anti-gaming candidate of the speed kit (caching, call counting, output
hunting, timing detection, patched reference, patched torch) is refused. The timing path runs on a
CPU copy of the task (a GPU is needed for the real one; skipped here)."""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tttd.cli import main  # noqa: E402
from tttd.registry import get_task  # noqa: E402
from tttd.tasks.speed import SpeedTask, build_config, mla_decode  # noqa: E402
from tttd.tasks.speed.harness import _load_private  # noqa: E402
from tttd.cli.verify import verify_program  # noqa: E402

HERE = os.path.dirname(mla_decode.__file__)
ROOT = open(os.path.join(HERE, "root.py")).read()
PROBLEM = open(os.path.join(HERE, "problem.py")).read()
GPU = torch.cuda.is_available()
#: the short-prefill CPU cases: outputs large against atol, so precision shortcuts show
SMALL = [mla_decode.CPU_TESTS[0], mla_decode.CPU_TESTS[2]]


@pytest.fixture(scope="module")
def task():
    return get_task("mla_decode")


@pytest.fixture(scope="module")
def small():
    """The task with two CPU test cases (each still called twice): the verdict tests stay fast."""
    return SpeedTask(dataclasses.replace(get_task("mla_decode").spec, cpu_tests=SMALL))


def verdict(task, code):
    return verify_program(task, code, state=task.initial_states(1, np.random.default_rng(0))[0])


def test_contest_shape_of_the_task(task):
    assert [(c["batchsize"], c["dim"], c["dq"], c["prefill"], c["seed"]) for c in mla_decode.TESTS] == [
        (128, 7168, 1536, 128, 9247), (128, 7168, 1536, 512, 2197), (128, 7168, 1536, 1024, 9107),
        (128, 7168, 1536, 2048, 5291)]
    assert [(c["batchsize"], c["dim"], c["dq"], c["prefill"]) for c in mla_decode.BENCHMARKS] == [
        (128, 7168, 1536, 4096), (128, 7168, 1536, 6144)]
    s = task.spec
    assert (s.reward, s.entry, s.rtol, s.atol, s.device) == (3000.0, "custom_kernel", 2e-2, 8e-3, "cuda")
    text = task.prompt(task.initial_states(1, np.random.default_rng(0))[0])[0]["content"]
    for needle in ("from task import input_t, output_t", "from reference import KVCache, Config", "def mla_decode",
                   "8e-3 + 2e-2*|ref|", "geometric mean"):
        assert needle in text, needle
    cfg = build_config(task.spec, device="cpu")
    assert cfg["benchmarks"] == [] and len(cfg["tests"]) == 2 * len(mla_decode.CPU_TESTS)
    assert len({c["seed"] for c in cfg["tests"]}) == len(cfg["tests"])  # every call on fresh inputs
    fixed = build_config(get_task("mla_decode", fixed_seeds=True).spec, device="cuda")
    assert [c["seed"] for c in fixed["tests"]] == [9247, 2197, 9107, 5291]
    from tttd.task import TaskOptionError

    with pytest.raises(TaskOptionError, match="fixed_seeds must be true or false"):
        get_task("mla_decode", fixed_seeds="False")


def test_the_inputs_follow_the_contract():
    prob = _load_private(PROBLEM)
    config, x, cache = prob.generate_input(seed=3, **mla_decode.CPU_TESTS[0])
    assert x.shape == (2, 1, 256) and x.dtype == torch.bfloat16
    assert cache.data.shape == (2, 64, 576) and cache.seq_len == 31 and cache.data.dtype == torch.bfloat16
    assert not cache.data[:, 31:].any() and cache.data[:, :31].abs().sum() > 0
    assert config.Q_proj_up_weight.shape == ((128 + 64) * 4, 64) and config.KV_proj_up_weight.shape == (256 * 4, 512)
    assert config.wo_weight.shape == (256, 128 * 4) and config.kv_cache_shape == (2, 64, 576)
    out, data = prob.mla_decode((config, x, cache))
    assert out.shape == (2, 1, 256) and out.dtype == torch.bfloat16 and data is cache.data
    assert cache.seq_len == 32 and data[:, 31].abs().sum() > 0  # the new latent went into row 31
    again = prob.generate_input(seed=3, **mla_decode.CPU_TESTS[0])
    assert torch.equal(again[1], x) and not torch.equal(again[2].data, cache.data)  # deterministic inputs


def test_the_root_matches_the_reference_bit_for_bit():
    import sys
    import types

    prob = _load_private(PROBLEM)
    task_mod = _load_private(open(os.path.join(HERE, "types_module.py")).read(), "_t")
    saved = {k: sys.modules.get(k) for k in ("reference", "task")}
    sys.modules["reference"], sys.modules["task"] = prob, task_mod
    try:
        root = types.ModuleType("root_under_test")
        exec(compile(ROOT, "root.py", "exec"), root.__dict__)
    finally:
        for k, v in saved.items():
            sys.modules.pop(k) if v is None else sys.modules.__setitem__(k, v)
    for case in mla_decode.CPU_TESTS:
        ref = prob.mla_decode(prob.generate_input(seed=11, **case))
        got = root.custom_kernel(prob.generate_input(seed=11, **case))
        assert torch.equal(ref[0], got[0]) and torch.equal(ref[1], got[1]), case
        assert prob.check(got, ref) is None


def test_the_check_accepts_any_dtype_and_refuses_what_is_off():
    prob = _load_private(PROBLEM)
    ref = prob.mla_decode(prob.generate_input(seed=5, **mla_decode.CPU_TESTS[2]))
    assert prob.check((ref[0].float(), ref[1].half()), ref) is None
    off = ref[0].clone()
    off[0, 0, 0] += 0.05 + 0.05 * off[0, 0, 0].abs()
    assert "output: 1 of" in prob.check((off, ref[1]), ref)
    assert "KV cache: shape" in prob.check((ref[0], ref[1][:, :-1]), ref)
    assert "pair" in prob.check(ref[0], ref)


@pytest.mark.skipif(GPU, reason="the CPU path")
def test_verify_cli_on_cpu(tmp_path, capsys):
    prog = tmp_path / "prog.py"
    prog.write_text(ROOT)
    assert main(["verify", "mla_decode", str(prog)]) == 1
    out = capsys.readouterr().out
    assert "correct on all 4 cpu test cases (2 calls each, on fresh inputs)" in out and "needs a CUDA GPU" in out


KERNEL = ROOT.replace("def custom_kernel(data: input_t) -> output_t:", "def _root(data):")
WRONG_SHAPE = KERNEL + """

def custom_kernel(data):
    out, cache = _root(data)
    return out[:, 0], cache  # [bs, dim]: the sequence dim dropped
"""
WRONG_VALUE = ROOT.replace("/ math.sqrt(nope + pe)", "/ math.sqrt(nope)")
NAN = KERNEL + """

def custom_kernel(data):
    out, cache = _root(data)
    out[0, 0, 0] = float("nan")
    return out, cache
"""
STALE_CACHE = KERNEL + """

def custom_kernel(data):
    config, x, kv_cache = data
    before = kv_cache.data.clone()
    out, _ = _root(data)  # the right output ...
    return out, before  # ... and the cache as it was: the new latent never lands
"""
SKIP_HEADS = ROOT.replace("        attended.append(torch.matmul(torch.softmax(scores, dim=-1), kv[..., nope:]))",
                          "        o = torch.matmul(torch.softmax(scores, dim=-1), kv[..., nope:])\n"
                          "        o[:, -1] = 0  # the last head is skipped\n"
                          "        attended.append(o)")
LOW_PRECISION = ROOT.replace("        lat = kv_cache.data[b:b + group, :length]",
                             "        lat = kv_cache.data[b:b + group, :length].to(torch.float8_e4m3fn).to(torch.bfloat16)")
CACHE_BY_SHAPE = KERNEL + """

_memo = {}


def custom_kernel(data):
    config, x, kv_cache = data
    key = (tuple(x.shape), kv_cache.seq_len)  # same shape, same answer
    if key not in _memo:
        _memo[key] = _root(data)
    return _memo[key]
"""
COUNTS_CALLS = KERNEL + """

_calls = [0]


def custom_kernel(data):
    _calls[0] += 1
    out, cache = _root(data)
    if _calls[0] > 2:  # 'the tests are over'
        return torch.zeros_like(out), cache
    return out, cache
"""
PATCHES_REFERENCE = WRONG_VALUE + """
import reference
reference.mla_decode = custom_kernel
"""
PATCHES_TORCH = "import torch\ntorch.isnan = lambda t: torch.zeros_like(t, dtype=torch.bool)\n" + ROOT
RETURNS_MODULE = KERNEL + """

def custom_kernel(data):
    out, _ = _root(data)
    return out, data[2]  # the KVCache module, not its data
"""


@pytest.mark.parametrize("name,code,expect", [
    ("wrong shape", WRONG_SHAPE, "output: shape"),
    ("wrong value", WRONG_VALUE, "wrong output: output:"),
    ("NaN", NAN, "disagree on NaN"),
    ("stale cache", STALE_CACHE, "wrong output: KV cache:"),
    ("skips a head", SKIP_HEADS, "wrong output: output:"),
    ("fp8 latents", LOW_PRECISION, "wrong output: output:"),
    ("caches by shape", CACHE_BY_SHAPE, "wrong output"),
    ("counts calls", COUNTS_CALLS, "wrong output"),
    ("patches the public reference", PATCHES_REFERENCE, "wrong output"),
    ("returns the cache module", RETURNS_MODULE, "is not data"),
])
def test_wrong_and_hostile_candidates_are_refused(small, name, code, expect):
    assert code not in (ROOT, KERNEL), name  # the edit took
    ev = verdict(small, code)
    assert not ev.valid and ev.status != "needs_gpu", f"{name}: {ev.message}"
    assert expect in ev.message, f"{name}: {ev.message}"


def test_patching_torch_reaches_only_the_worker(small):
    """The check runs in the controller: a patched torch.isnan in the candidate's process changes nothing."""
    ev = verdict(small, PATCHES_TORCH)
    assert ev.status == "needs_gpu", ev.message


def test_the_reference_output_is_never_reachable_during_a_call(small):
    code = KERNEL + """
import gc


def custom_kernel(data):
    mine = _root(data)
    for o in gc.get_objects():  # hunt for the reference's result of this very input
        if type(o) is torch.Tensor and o.shape == mine[0].shape and o is not mine[0] and torch.equal(o, mine[0]):
            raise RuntimeError("LEAK: found the expected output")
    return mine
"""
    ev = verdict(small, code)
    assert ev.status == "needs_gpu" and "LEAK" not in ev.message, ev.message


# ---- the timing path, on a CPU copy of the task (the real one needs a GPU) --------------------------------

def _cpu_timed() -> SpeedTask:
    spec = dataclasses.replace(
        get_task("mla_decode").spec, name="mla_decode_cpu", device="cpu", tests=[SMALL[1]], benchmarks=[SMALL[0]],
        timing=dict(mla_decode.TIMING, warmup_runs=1, min_runs=2, max_runs=2, max_time_s=5.0, max_wall_s=20.0))
    return SpeedTask(spec)


def test_the_timing_path_and_its_reward_on_a_cpu_copy():
    task = _cpu_timed()
    ev = task._evaluate_code(ROOT)
    assert ev.valid, ev.message
    assert ev.metrics["runs"] == [2] and ev.value > 0
    assert math.isclose(ev.reward, 3000.0 / ev.value)  # the paper's 3000/us
    assert "geometric mean" in ev.message


def test_timed_runs_cannot_be_told_apart_on_the_timing_path():
    """Frames of the harness are in another process: the lookup finds nothing and the honest branch is timed."""
    task = _cpu_timed()
    code = KERNEL + """
import sys


def custom_kernel(data):
    out, cache = _root(data)
    f = sys._getframe(1)
    while f is not None:  # look for the harness's benchmark loop
        if "benchmark" in str(f.f_locals.get("what", "")):
            return torch.zeros_like(out), cache  # cheap garbage when timed
        f = f.f_back
    return out, cache
"""
    ev = task._evaluate_code(code)  # the worker's frames hold no harness loop: always the honest branch
    assert ev.valid, ev.message


@pytest.mark.skipif(not GPU, reason="needs a CUDA or ROCm GPU")
def test_the_root_is_timed_on_a_gpu(task):
    ev = verdict(task, ROOT)
    assert ev.valid and math.isclose(ev.reward, 3000.0 / ev.value), ev.message
