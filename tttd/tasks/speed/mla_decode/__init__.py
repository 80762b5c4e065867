"""MLA decode: the GPU MODE "amd-mla-decode" contest's kernel (SPEC 5.6), on the speed kit.

The paper's second GPU-kernel task. One decode step of DeepSeek-R1-shaped multi-head latent
attention in bf16 (128 heads, q_lora_rank 1536, kv_lora_rank 512, 128 nope + 64 rope dims per
head, v 128, hidden 7168, batch 128) with a pre-allocated non-paged latent KV cache (8192 rows),
returning the output and the updated cache.

As the contest (reference-kernels problems/amd/mla-decode/task.yml): the candidate's
``submission.py`` defines ``custom_kernel(data)`` with ``data = (config, x, kv_cache)``; ``from
task import input_t, output_t`` and ``from reference import KVCache, Config`` work in the sandbox;
the 4 tests (prefill 128/512/1024/2048) and 2 benchmarks (prefill 4096/6144) of its task.yml;
both the output [bs, 1, dim] and the whole cache [bs, 8192, 576] must match within rtol 2e-2,
atol 8e-3 (any dtype, compared as fp32, NaN/Inf agreement); the score is the geometric mean of
the benchmark means in microseconds; reward 3000/us (SPEC 5.6, the authors' gpu_mode score scale).
Our own code throughout (reference, generator, check, root; ``problem.py``, ``root.py``).

Timing as TriMul on the kit: warm-up on benchmark 0 (0.2 s, as the contest's MLA harness), one
untimed call of each benchmark shape, then up to 100 timed runs per shape on fresh inputs, each
re-checked, until the standard error is below 1% of the mean (the contest's MLA threshold) or 30 s.

Deviations (see docs/kernels.md): CUDA events, not the contest's wall clock around a synchronise
(SPEC 7.7 item 18: the kit's events plus its wall-clock gap check); fresh secret seeds per
evaluation and per timed run (the contest regenerated the same seeded input at every run; the
task.yml seeds are used with ``fixed_seeds=True``); both benchmark shapes are timed, whereas the
authors' "leaderboard" runs timed only prefill 6144, so our microseconds are not their values;
the paper's evaluations ran on other GPUs (the contest on AMD MI300X, the authors' code on an
NVIDIA H200), and times on any other GPU are not comparable with theirs.

Without a GPU, ``tttd verify mla_decode FILE`` checks correctness on the CPU on ``CPU_TESTS``
(scaled down: 1-3 batch rows, 2-8 heads, hidden 128-256, q_lora_rank 64-96, prefill 5/31/200/1500,
cache 16-2048 rows; the per-head dims 128/64/128 and kv_lora_rank 512 stay), each called twice on
fresh inputs, and says that timing needs a GPU. ``n_heads`` and ``max_seq_len`` are generator
parameters for that (the contest fixes them), so a candidate must read its sizes from ``config``.
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


def _case(prefill: int, seed: int | None = None, batchsize: int = 128, dim: int = 7168, dq: int = 1536,
          **extra) -> dict:
    c = {"batchsize": batchsize, "dim": dim, "dq": dq, "prefill": prefill, **extra}
    return c if seed is None else dict(c, seed=seed)


#: the contest's task.yml tests, with its seeds (used only with ``fixed_seeds=True``)
TESTS = [_case(128, 9247), _case(512, 2197), _case(1024, 9107), _case(2048, 5291)]
#: the contest's task.yml benchmarks (each timed run draws a fresh seed)
BENCHMARKS = [_case(4096), _case(6144)]
#: correctness on a CPU: scaled down (see the module docstring); short prefills keep the outputs
#: large against atol, so low-precision shortcuts show (with prefill 1500 an fp8 cache passes the
#: contest's tolerance: its atol dominates the small outputs of long contexts)
CPU_TESTS = [
    _case(31, batchsize=2, dim=256, dq=64, n_heads=4, max_seq_len=64),
    _case(200, batchsize=1, dim=128, dq=96, n_heads=2, max_seq_len=256),
    _case(5, batchsize=3, dim=192, dq=64, n_heads=8, max_seq_len=16),
    _case(1500, batchsize=1, dim=128, dq=64, n_heads=2, max_seq_len=2048),
]

TIMING = {"warmup_runs": 1000, "warmup_s": 0.2, "min_runs": 3, "max_runs": 100, "rel_err": 0.01,
          "max_time_s": 30.0, "max_wall_s": 120.0, "l2_flush": False, "warm_each": True}


def description(gpu: str, triton: str) -> str:
    src = _read("problem.py")
    ref = src[src.index("def _rope("):src.index("def check(")].rstrip()
    return f"""\
You are an expert GPU kernel engineer. Write a faster implementation of one decode step of
multi-head latent attention (MLA, DeepSeek-R1 shapes) for an {gpu} GPU, using Triton {triton}
kernels (PyTorch is available too; torch.compile is allowed). Your code is timed against plain
PyTorch.

The operation, all in bf16, for x [bs, 1, dim] and a latent KV cache [bs, max_seq_len, 512 + 64]
whose first kv_cache.seq_len rows are filled:
  1. q = Q_proj_up(Q_proj_down(x)) split per head into 128 nope + 64 rope dims;
     c = KV_proj_down(x) (512 latent + 64 rope dims) is written into the cache at row seq_len
  2. every cached latent (the new one included) is up-projected by KV_proj_up into per-head
     128-dim keys (nope) and 128-dim values; the 64 rope dims of the cache are shared by all heads
  3. RoPE (rotate-half, bf16 angles) on the query's rope dims at position seq_len and on the keys'
     rope dims at positions 0..seq_len
  4. softmax(q k^T / sqrt(192)) v per head, then the output projection wo
Sizes: bs 128, dim 7168, q_lora_rank 1536, 128 heads, cache 8192 rows; timed with 4096 and 6144
cached rows (read every size from config: other sizes are tested too).

Reference (`from reference import mla_decode`):
```python
{ref}
```

Contract: `custom_kernel(data: input_t) -> output_t` with `data = (config, x, kv_cache)`: config is a
`reference.Config` (batch_size, dim, n_heads, q_lora_rank, kv_lora_rank, qk_nope_head_dim,
qk_rope_head_dim, v_head_dim, seq_len, max_seq_len, kv_cache_shape and the weights
Q_proj_down_weight, Q_proj_up_weight, KV_proj_down_weight, KV_proj_up_weight, wo_weight, stored
[out, in]); kv_cache is a `reference.KVCache` (kv_cache.data, kv_cache.seq_len). Return
`(output [bs, 1, dim], kv_cache.data)` with the new latent written into the cache. Start your module
with `from task import input_t, output_t` and `from reference import KVCache, Config`. Both the
output and the whole cache (any float dtype, compared as fp32) must match the reference within
|out - ref| <= 8e-3 + 2e-2*|ref| elementwise, NaN and Inf in the same places."""


class MLADecodeTask(SpeedTask):
    """MLA decode GPU kernel (GPU MODE amd-mla-decode): minimise the geometric-mean time in us (reward 3000/us)."""

    summary = "MLA decode GPU kernel (GPU MODE amd-mla-decode): minimise the time in us, reward 3000/us"

    def __init__(self, fixed_seeds: bool = False, invalid_flags: str = ""):
        fixed_seeds = bool_option("fixed_seeds", fixed_seeds)
        gpu, triton = gpu_and_triton("NVIDIA H200", "3.4.0")
        problem = _read("problem.py")
        spec = SpeedSpec(
            name="mla_decode", problem_source=problem, tests=TESTS, benchmarks=BENCHMARKS,
            entry="custom_kernel", ref_name="mla_decode", device="cuda", rtol=2e-2, atol=8e-3,  # (shown; check() decides)
            public_modules={"reference": problem, "task": _read("types_module.py")},
            initial_code=_read("root.py"), description=description(gpu, triton),
            signature="custom_kernel(data: input_t) -> output_t", reward=3000.0, timing=dict(TIMING),
            wall_s=1200.0, memory_mb=8192, threads=4, cpu_tests=CPU_TESTS, fixed_test_seeds=bool(fixed_seeds),
            invalid_flags=invalid_flags,
        )
        super().__init__(spec)


register_task("mla_decode", MLADecodeTask)
