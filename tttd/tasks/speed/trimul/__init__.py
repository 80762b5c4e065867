"""TriMul: the GPU MODE contest's triangle multiplicative update kernel (SPEC 5.5), on the speed kit.

Faithful to the contest: the candidate contract ``custom_kernel(data)`` with ``data = (input,
mask, weights, config)``, ``from task import input_t, output_t`` and ``import reference`` work in
the sandbox, 18 test cases at |out - ref| <= 2e-2 + 2e-2|ref| with NaN/Inf agreement, the 7
benchmark shapes, up to 100 timed runs per shape (fresh inputs, each re-checked) until the
standard error is below 0.1% of the mean or 30 s / 120 s caps, the geometric mean in
microseconds, reward 3000/us. Our own code throughout (reference, generator, check, root).

Deviations: the weights come from the per-case seeded generator (SPEC 5.5: the contest's came
from the unseeded global RNG); the test seeds are drawn afresh by the trusted process for every
evaluation and the timed runs' seeds inside the harness at each run (the contest's were fixed and
public, SPEC 7.7 item 18); the 18 test cases are the contest's (``task.yml``), their seeds used only with
``fixed_seeds=True``. As the contest: the warm-up is up to 100 runs or 10 ms on benchmark 0, then
one untimed call of every benchmark shape before its timed runs; the output may have any dtype
(compared as fp32); the random mask is int64 (the all-ones mask fp32, as the contest's generator).
Without a GPU the correctness path runs on the CPU (four small test cases, each called twice on
fresh inputs, so a result cached by input shape fails), and there is no time.

Files here (read as text, never imported by tttd): ``problem.py`` (the ``reference`` module),
``types_module.py`` (the ``task`` module), ``root.py`` (the plain PyTorch root), and, for
``benchmarks/speed_bench.py``, our kernels ``fast_fp16.py`` (fp16 PyTorch) and ``fast_triton.py``
(Triton + cuBLAS; checked on CPU under ``TRITON_INTERPRET=1``) and a hostile side-stream
candidate ``hostile_side_stream.py`` that the evaluator must refuse.
"""

from __future__ import annotations

import os

from tttd.registry import register_task
from tttd.tasks.speed import SpeedSpec, SpeedTask
from tttd.tasks.speed.hardware import bool_option, gpu_and_triton

_HERE = os.path.dirname(os.path.abspath(__file__))


def _read(name: str) -> str:
    with open(os.path.join(_HERE, name), encoding="utf-8") as f:
        return f.read()


def _case(seqlen, bs, dim, nomask, distribution, seed=None):
    c = {"seqlen": seqlen, "bs": bs, "dim": dim, "hiddendim": 128, "nomask": nomask, "distribution": distribution}
    return c if seed is None else dict(c, seed=seed)


#: the contest's 18 correctness tests, with its seeds (reference-kernels problems/bioml/trimul/task.yml);
#: the seeds are used only with ``fixed_seeds=True`` (and do not reproduce the contest's inputs bit for
#: bit: our generator is our own); by default every evaluation draws fresh secret seeds
TESTS = [_case(*c) for c in [
    (32, 1, 128, True, "normal", 9371), (32, 1, 128, False, "normal", 1092),
    (64, 2, 256, True, "normal", 2291), (64, 2, 256, False, "normal", 210284),
    (128, 1, 768, True, "normal", 81934), (256, 1, 128, True, "normal", 1932),
    (256, 1, 128, False, "normal", 10432), (768, 2, 128, True, "normal", 731),
    (1024, 1, 384, False, "normal", 53121), (1024, 1, 768, True, "normal", 31),
    (1024, 1, 768, False, "normal", 4921), (32, 1, 128, True, "cauchy", 937321),
    (64, 2, 256, True, "cauchy", 2291), (128, 1, 768, True, "cauchy", 8134),
    (256, 1, 128, True, "cauchy", 932), (768, 2, 128, True, "cauchy", 31),
    (1024, 1, 384, False, "cauchy", 5321), (1024, 1, 768, False, "cauchy", 491),
]]

#: SPEC 5.5's table: (seqlen, bs, dim, mask, distribution)
BENCHMARKS = [_case(*c) for c in [
    (256, 2, 128, True, "normal"), (768, 1, 128, True, "cauchy"), (256, 2, 384, False, "normal"),
    (512, 1, 128, True, "normal"), (1024, 1, 128, True, "cauchy"), (768, 1, 384, False, "normal"),
    (1024, 1, 384, True, "normal"),
]]

CPU_TESTS = [_case(*c) for c in [
    (32, 1, 128, True, "normal"), (32, 2, 128, False, "cauchy"), (48, 1, 256, False, "normal"),
    (64, 1, 128, True, "cauchy"),
]]

TIMING = {"warmup_runs": 100, "warmup_s": 0.01, "min_runs": 3, "max_runs": 100, "rel_err": 0.001,
          "max_time_s": 30.0, "max_wall_s": 120.0, "l2_flush": False}


def _hardware() -> tuple[str, str]:
    """(GPU name, Triton version) for the prompt; the paper's H100 / Triton 3.3.1 when unknown."""
    return gpu_and_triton("NVIDIA H100", "3.3.1")


def description(gpu: str, triton: str) -> str:
    ref = _read("problem.py").split("def ref_kernel", 1)[1].split("def check", 1)[0]
    return f"""\
You are an expert GPU kernel engineer. Write a faster implementation of the outgoing triangle
multiplicative update of AlphaFold3 (TriMul) for an {gpu} GPU, using Triton {triton} kernels
(PyTorch is available too). Your code is timed against the plain PyTorch reference below.

The operation, for input x [bs, N, N, dim] fp32, mask [bs, N, N], hidden = 128:
  1. x = LayerNorm(dim)(x)  (weights norm.weight, norm.bias)
  2. left = left_proj(x) * mask * sigmoid(left_gate(x)); right likewise (Linear layers, no bias)
  3. out[b, i, j, d] = sum_k left[b, i, k, d] * right[b, j, k, d]
  4. out = LayerNorm(hidden)(out) * sigmoid(out_gate(x))  (to_out_norm.weight, to_out_norm.bias)
  5. return to_out(out)  [bs, N, N, dim] fp32

Reference (`from reference import ref_kernel`):
```python
def ref_kernel{ref.rstrip()}
```

Contract: `custom_kernel(data: input_t) -> output_t` with `data = (input, mask, weights, config)`:
mask is float32 ones (no mask) or int64 zeros and ones; weights is a dict with keys norm.weight, norm.bias, left_proj.weight, right_proj.weight,
left_gate.weight, right_gate.weight, out_gate.weight, to_out_norm.weight, to_out_norm.bias,
to_out.weight (Linear weights stored [out, in]); config = {{"dim": dim, "hidden_dim": 128}}.
Start your module with `from task import input_t, output_t`. The output (any float dtype, compared
as fp32) must match the reference within |out - ref| <= 2e-2 + 2e-2*|ref| elementwise, NaN and Inf
in the same places."""


class TriMulTask(SpeedTask):
    """TriMul GPU kernel (GPU MODE): minimise the geometric-mean time in us (reward 3000/us)."""

    summary = "TriMul GPU kernel (GPU MODE): minimise the time in us, reward 3000/us (paper 1161 us on H100)"

    def __init__(self, l2_flush: bool = False, fixed_seeds: bool = False, invalid_flags: str = ""):
        l2_flush, fixed_seeds = bool_option("l2_flush", l2_flush), bool_option("fixed_seeds", fixed_seeds)
        gpu, triton = _hardware()
        problem = _read("problem.py")
        spec = SpeedSpec(
            name="trimul", problem_source=problem, tests=TESTS, benchmarks=BENCHMARKS,
            entry="custom_kernel", ref_name="ref_kernel", device="cuda", rtol=2e-2, atol=2e-2,  # (shown; check() decides)
            public_modules={"reference": problem, "task": _read("types_module.py")},
            initial_code=_read("root.py"), description=description(gpu, triton),
            signature="custom_kernel(data: input_t) -> output_t", reward=3000.0,
            timing=dict(TIMING, l2_flush=bool(l2_flush)), wall_s=1200.0,
            memory_mb=8192, threads=4, cpu_tests=CPU_TESTS, fixed_test_seeds=bool(fixed_seeds),
            invalid_flags=invalid_flags,
            target="Target: below 1000 us (the best human kernel: 1371 us on an H100).",
        )
        super().__init__(spec)


register_task("trimul", TriMulTask)
