"""TriMul's correctness path on the CPU (no GPU needed): the contest contract works in the sandbox,
the plain PyTorch root and our fp16 kernel pass, subtly wrong, NaN-producing and tampering
candidates fail, and ``tttd verify trimul`` says that timing needs a GPU. GPU-only: side streams."""

from __future__ import annotations

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from tttd.cli import main  # noqa: E402
from tttd.registry import get_task  # noqa: E402
from tttd.tasks.speed import trimul  # noqa: E402
from tttd.cli.verify import verify_program  # noqa: E402

HERE = os.path.dirname(trimul.__file__)
ROOT = open(os.path.join(HERE, "root.py")).read()
FAST = open(os.path.join(HERE, "fast_fp16.py")).read()
GPU = torch.cuda.is_available()


@pytest.fixture(scope="module")
def task():
    return get_task("trimul")


def verdict(task, code):
    return verify_program(task, code, state=task.initial_states(1, np.random.default_rng(0))[0])


def test_contest_shape_of_the_task(task):
    assert len(trimul.TESTS) == 18 and len(trimul.BENCHMARKS) == 7
    assert task.spec.reward == 3000.0 and task.spec.entry == "custom_kernel"
    text = task.prompt(task.initial_states(1, np.random.default_rng(0))[0])[0]["content"]
    assert "Triton" in text and "1000 us" in text and "from task import input_t, output_t" in text


@pytest.mark.skipif(GPU, reason="the CPU path")
def test_our_fp16_kernel_passes_on_cpu_and_timing_needs_a_gpu(task):
    ev = verdict(task, FAST)
    assert not ev.valid and ev.status == "needs_gpu", ev.message
    assert "correct on all 4 cpu test cases (2 calls each, on fresh inputs)" in ev.message and "GPU" in ev.message


NO_MASK = ROOT.replace('right = F.linear(x, w["right_proj.weight"]) * m *', 'right = F.linear(x, w["right_proj.weight"]) *')
NAN = """\
import reference  # the contest's candidates may import the reference module
from task import input_t, output_t


def custom_kernel(data: input_t) -> output_t:
    y = reference.ref_kernel(data)
    y[..., 0, 0, 0] = float("nan")
    return y
"""
TAMPER = "import torch\ntorch.isnan = lambda t: torch.zeros_like(t, dtype=torch.bool)\n" + ROOT


@pytest.mark.parametrize("name,code,expect", [
    ("mask dropped on one side", NO_MASK, "wrong output"),
    ("NaN", NAN, "NaN"),
])
def test_wrong_and_tampering_candidates_fail(task, name, code, expect):
    assert code != ROOT
    ev = verdict(task, code)
    assert not ev.valid and ev.status != "needs_gpu", f"{name}: {ev.message}"
    assert expect in ev.message, f"{name}: {ev.message}"


def test_patching_torch_reaches_only_the_worker(task):
    """The check runs in the controller, not in the candidate's process: a patched torch.isnan there
    changes nothing (the program is the root, correct: on a CPU it gets the correctness verdict)."""
    ev = verdict(task, TAMPER)
    assert ev.valid or ev.status == "needs_gpu", ev.message


@pytest.mark.skipif(GPU, reason="the CPU path")
def test_verify_cli_on_cpu(tmp_path, capsys):
    prog = tmp_path / "prog.py"
    prog.write_text(ROOT)
    assert main(["verify", "trimul", str(prog)]) == 1
    out = capsys.readouterr().out
    assert "correct on all 4 cpu test cases" in out and "needs a CUDA GPU" in out


#: the contest's task.yml (gpu-mode/reference-kernels problems/bioml/trimul): (seqlen, bs, dim, nomask,
#: distribution, seed) of its 18 tests
CONTEST_TESTS = [
    (32, 1, 128, True, "normal", 9371), (32, 1, 128, False, "normal", 1092), (64, 2, 256, True, "normal", 2291),
    (64, 2, 256, False, "normal", 210284), (128, 1, 768, True, "normal", 81934), (256, 1, 128, True, "normal", 1932),
    (256, 1, 128, False, "normal", 10432), (768, 2, 128, True, "normal", 731), (1024, 1, 384, False, "normal", 53121),
    (1024, 1, 768, True, "normal", 31), (1024, 1, 768, False, "normal", 4921), (32, 1, 128, True, "cauchy", 937321),
    (64, 2, 256, True, "cauchy", 2291), (128, 1, 768, True, "cauchy", 8134), (256, 1, 128, True, "cauchy", 932),
    (768, 2, 128, True, "cauchy", 31), (1024, 1, 384, False, "cauchy", 5321), (1024, 1, 768, False, "cauchy", 491),
]


def test_the_tests_are_the_contests_eighteen_and_their_seeds_are_opt_in():
    from tttd.tasks.speed import build_config

    got = [(c["seqlen"], c["bs"], c["dim"], c["nomask"], c["distribution"], c["seed"]) for c in trimul.TESTS]
    assert got == CONTEST_TESTS and all(c["hiddendim"] == 128 for c in trimul.TESTS)
    fixed = build_config(trimul.TriMulTask(fixed_seeds=True).spec, device="cuda")
    assert [c["seed"] for c in fixed["tests"]] == [c[-1] for c in CONTEST_TESTS]
    fresh = build_config(trimul.TriMulTask().spec, device="cuda")  # default: secret seeds, new each time
    assert len(fresh["tests"]) == 18 and not {c["seed"] for c in fresh["tests"]} & {c[-1] for c in CONTEST_TESTS}


def test_the_mask_is_int64_as_the_contest_passes_it():
    from tttd.tasks.speed.harness import _load_private

    prob = _load_private(open(os.path.join(HERE, "problem.py")).read())
    _, mask, _, _ = prob.generate_input(seed=1, seqlen=8, bs=1, dim=16, hiddendim=8, nomask=False,
                                        distribution="normal")
    assert mask.dtype == torch.int64 and set(mask.unique().tolist()) <= {0, 1}
    x, mask, w, cfg = data = prob.generate_input(seed=1, seqlen=8, bs=1, dim=16, hiddendim=8, nomask=False,
                                                 distribution="normal")
    as_float = prob.ref_kernel((x, mask.float(), w, cfg))
    assert torch.equal(prob.ref_kernel(data), as_float)


BF16_OUT = ROOT.replace("    return F.linear(out, w[\"to_out.weight\"])",
                        "    return F.linear(out, w[\"to_out.weight\"]).to(torch.bfloat16)")
CACHE_BY_SHAPE = ROOT.replace("def custom_kernel(data: input_t) -> output_t:", "def _k(data):") + """

_cache = {}


def custom_kernel(data: input_t) -> output_t:
    key = tuple(data[0].shape)  # same shape, same answer
    if key not in _cache:
        _cache[key] = _k(data)
    return _cache[key]
"""


@pytest.mark.skipif(GPU, reason="the CPU path")
def test_any_output_dtype_is_compared_as_fp32(task):
    assert BF16_OUT != ROOT
    ev = verdict(task, BF16_OUT)
    assert ev.status == "needs_gpu" and "correct on all 4 cpu test cases" in ev.message, ev.message


@pytest.mark.skipif(GPU, reason="the CPU path")
def test_a_result_cached_by_shape_fails_on_the_cpu(task):
    ev = verdict(task, CACHE_BY_SHAPE)
    assert not ev.valid and ev.status != "needs_gpu" and "wrong output" in ev.message, ev.message


SIDE_STREAM = open(os.path.join(HERE, "hostile_side_stream.py")).read()


@pytest.mark.skipif(not GPU, reason="needs a CUDA GPU")
def test_side_stream_work_is_caught_on_gpu(task):
    ev = verdict(task, SIDE_STREAM)
    assert not ev.valid and ("wrong output" in ev.message or "stream" in ev.message), ev.message


