"""MLA decode (DeepSeek-R1-shaped multi-head latent attention, one decode step): the contract's
types, the input generator, the reference and the check.

Written for tttd from the GPU MODE "amd-mla-decode" contract (reference-kernels
problems/amd/mla-decode: task.yml and the candidate-facing types); our own code. This file is
the ``reference`` module a candidate may import (``from reference import KVCache, Config``) and
the harness's private copy of the problem.

The contract: ``data = (config, x, kv_cache)`` with ``x`` [bs, 1, dim] bf16 and ``kv_cache`` a
pre-allocated, non-paged latent cache (``kv_cache.data`` [bs, max_seq_len, kv_lora_rank + rope]
bf16, its first ``kv_cache.seq_len`` rows filled); the result is ``(output [bs, 1, dim],
kv_cache.data)`` with the new token's latent written at row ``seq_len``. Numerics follow the
contest's reference step for step in bf16, including its RoPE, whose angles are bf16 products
(coarse at long positions, but that is what candidates are checked against).

Deviation: ``n_heads`` and ``max_seq_len`` are generator parameters (the contest fixes 128 and 8192,
the defaults here) so that the CPU test cases can be small.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

KV_LORA_RANK, ROPE_DIM, NOPE_DIM, V_DIM = 512, 64, 128, 128


def _device():
    return "cuda" if torch.cuda.is_available() else "cpu"


class KVCache(nn.Module):
    """The latent cache: ``data`` [bs, max_seq_len, kv_lora_rank + rope] bf16, rows below ``seq_len`` filled.
    Calling it with new latents [bs, n, kv_lora_rank + rope] appends them and returns (filled rows, seq_len)."""

    def __init__(self, kv_cache_shape: tuple, **kwargs) -> None:
        super().__init__(**kwargs)
        self.register_buffer("data", torch.zeros(kv_cache_shape, dtype=torch.bfloat16))
        self.seq_len = 0

    def zero(self) -> None:
        self.data.zero_()
        self.seq_len = 0

    def get_data(self) -> torch.Tensor:
        return self.data

    def forward(self, c_kv: torch.Tensor):
        n = c_kv.size(1)
        if self.seq_len + n > self.data.size(1):
            raise ValueError(f"KV cache exceeded: {self.seq_len} + {n} rows > {self.data.size(1)}")
        self.data[:, self.seq_len:self.seq_len + n] = c_kv.to(self.data.dtype)
        self.seq_len += n
        return self.data[:, :self.seq_len], self.seq_len


@dataclass
class Config:
    """Sizes and weights (Linear layout [out, in], bf16) of one MLA layer."""

    batch_size: int
    dim: int
    n_heads: int
    q_lora_rank: int
    kv_lora_rank: int
    qk_nope_head_dim: int
    qk_rope_head_dim: int
    v_head_dim: int
    seq_len: int
    max_seq_len: int
    kv_cache_shape: tuple
    Q_proj_down_weight: torch.Tensor
    Q_proj_up_weight: torch.Tensor
    KV_proj_down_weight: torch.Tensor
    KV_proj_up_weight: torch.Tensor
    wo_weight: torch.Tensor


def generate_input(batchsize, dim, dq, prefill, seed, n_heads=128, max_seq_len=8192):
    """(config, x [bs, 1, dim] bf16, KVCache with ``prefill`` random rows), all from ``seed``. Weights
    ~ N(0, 1)/sqrt(fan_in), x and the cached latents ~ N(0, 1), in bf16."""
    dev = _device()
    g = torch.Generator(device=dev)
    g.manual_seed(int(seed))

    def randn(*shape, fan_in=1):
        return torch.randn(shape, generator=g, device=dev, dtype=torch.bfloat16) / math.sqrt(fan_in)

    latent = KV_LORA_RANK + ROPE_DIM
    config = Config(
        batch_size=batchsize, dim=dim, n_heads=n_heads, q_lora_rank=dq, kv_lora_rank=KV_LORA_RANK,
        qk_nope_head_dim=NOPE_DIM, qk_rope_head_dim=ROPE_DIM, v_head_dim=V_DIM, seq_len=1,
        max_seq_len=max_seq_len, kv_cache_shape=(batchsize, max_seq_len, latent),
        Q_proj_down_weight=randn(dq, dim, fan_in=dim),
        Q_proj_up_weight=randn((NOPE_DIM + ROPE_DIM) * n_heads, dq, fan_in=dq),
        KV_proj_down_weight=randn(latent, dim, fan_in=dim),
        KV_proj_up_weight=randn((NOPE_DIM + V_DIM) * n_heads, KV_LORA_RANK, fan_in=KV_LORA_RANK),
        wo_weight=randn(dim, V_DIM * n_heads, fan_in=V_DIM * n_heads),
    )
    x = randn(batchsize, 1, dim)
    cache = KVCache(config.kv_cache_shape).to(dev)
    cache(randn(batchsize, prefill, latent))
    return config, x, cache


def wire_pack(data):
    """The inputs as plain data for the speed kit's worker process (the harness's wire carries
    tensors, tuples, dicts and scalars only)."""
    config, x, cache = data
    fields = {name: getattr(config, name) for name in config.__dataclass_fields__}
    return {"config": fields, "x": x, "cache": cache.data, "seq_len": cache.seq_len}


def wire_unpack(tree):
    """The worker's side of :func:`wire_pack`: the contract's objects around the shared tensors (no copy)."""
    cache = KVCache.__new__(KVCache)
    nn.Module.__init__(cache)
    cache.register_buffer("data", tree["cache"])
    cache.seq_len = tree["seq_len"]
    return Config(**tree["config"]), tree["x"], cache


def work(batchsize, dim, dq, prefill, n_heads=128, max_seq_len=8192):
    """The least a call must move (the speed kit's physics floor): read the filled cache rows (bf16);
    weights and FLOPs are not declared."""
    return {"bytes": 2 * batchsize * (prefill + 1) * (KV_LORA_RANK + ROPE_DIM), "flops": 0}


def _rope(t: torch.Tensor, start: int) -> torch.Tensor:
    """Rotate-half RoPE over the last dim of ``t`` [..., n, d] for positions start..start+n-1, in bf16:
    frequencies 10000^(-i/(d/2)) and the angles position*frequency are bf16 values, cos/sin rounded to bf16."""
    n, d = t.shape[-2], t.shape[-1]
    half = d // 2
    freq = (10000 ** (-torch.arange(half, dtype=torch.bfloat16) / half)).to(t.device)  # on the CPU, as the contest
    pos = torch.arange(start, start + n, device=t.device).to(torch.bfloat16)
    ang = pos[:, None] * freq[None, :]
    ang = torch.cat([ang, ang], dim=-1)
    cos, sin = ang.cos().to(torch.bfloat16), ang.sin().to(torch.bfloat16)
    lo, hi = t[..., :half], t[..., half:]
    return t * cos + torch.cat([-hi, lo], dim=-1) * sin


def _chunk(bs: int, kv_len: int, heads: int) -> int:
    """Batch rows per attention chunk: the up-projected keys and values of a chunk stay near 4 GB."""
    per_row = kv_len * heads * (NOPE_DIM + V_DIM + NOPE_DIM + ROPE_DIM) * 2
    return max(1, min(bs, (4 << 30) // max(1, per_row)))


@torch.no_grad()
def mla_decode(data):
    """One decode step of MLA without weight absorption, in bf16 (the contest's order of operations):
    down-project x, append its latent to the cache, up-project the queries and every cached latent into
    per-head keys/values, RoPE, softmax(q k^T / sqrt(nope + rope)) v, output projection. Computed in
    batch chunks to bound memory. Returns (output [bs, 1, dim] bf16, kv_cache.data)."""
    config, x, kv_cache = data
    bs = x.size(0)
    h, dn, dr, dv, r = (config.n_heads, config.qk_nope_head_dim, config.qk_rope_head_dim, config.v_head_dim,
                        config.kv_lora_rank)
    q_lat = F.linear(x, config.Q_proj_down_weight)
    _, kv_len = kv_cache(F.linear(x, config.KV_proj_down_weight))
    q = F.linear(q_lat, config.Q_proj_up_weight).view(bs, 1, h, dn + dr).transpose(1, 2)  # [bs, h, 1, dn+dr]
    q = torch.cat([q[..., :dn], _rope(q[..., dn:], kv_len - 1)], dim=-1)
    scale = math.sqrt(dn + dr)
    heads_out = torch.empty((bs, h, 1, dv), dtype=torch.bfloat16, device=x.device)
    step = _chunk(bs, kv_len, h)
    for b0 in range(0, bs, step):
        lat = kv_cache.data[b0:b0 + step, :kv_len]  # [c, L, r + dr]
        c = lat.size(0)
        kv = F.linear(lat[..., :r], config.KV_proj_up_weight).view(c, kv_len, h, dn + dv).transpose(1, 2)
        k_pe = _rope(lat[:, None, :, r:], 0).expand(-1, h, -1, -1)  # [c, h, L, dr], shared by the heads
        k = torch.cat([kv[..., :dn], k_pe], dim=-1)
        scores = torch.matmul(q[b0:b0 + c], k.transpose(-1, -2)) / scale
        attn = F.softmax(scores, dim=-1).to(torch.bfloat16)
        heads_out[b0:b0 + c] = torch.matmul(attn, kv[..., dn:])
        del kv, k_pe, k, scores, attn
    out = F.linear(heads_out.reshape(bs, 1, h * dv), config.wo_weight)
    return out, kv_cache.data


def check(output, expected, rtol=2e-2, atol=8e-3):
    """None when both the output and the whole cache match: |out - ref| <= atol + rtol*|ref| elementwise,
    compared as fp32 (any dtype accepted, as the contest), NaN/+-Inf in the same places; else why not."""
    if type(output) not in (tuple, list) or len(output) != 2:
        return "expected a pair (output [bs, 1, dim], kv_cache.data)"
    for name, out, ref in (("output", output[0], expected[0]), ("KV cache", output[1], expected[1])):
        if type(out) is not torch.Tensor:
            return f"{name}: expected a torch.Tensor, got {type(out).__name__}"
        if out.shape != ref.shape:
            return f"{name}: shape {tuple(out.shape)}, expected {tuple(ref.shape)}"
        if out.is_complex():
            return f"{name}: dtype {out.dtype}, a real tensor is expected"
        step = max(1, (1 << 28) // max(1, ref[0].numel()))  # compare in batch chunks (the cache is large)
        for b0 in range(0, ref.size(0), step):
            o = out[b0:b0 + step].to(device=ref.device, dtype=torch.float32)
            e = ref[b0:b0 + step].to(torch.float32)
            for what, f in (("NaN", torch.isnan), ("+Inf", torch.isposinf), ("-Inf", torch.isneginf)):
                n = int((f(o) != f(e)).sum())
                if n:
                    return f"{name}: {n} elements disagree on {what}"
            bad = ((o - e).abs() > atol + rtol * e.abs()) & torch.isfinite(e)
            n = int(bad.sum())
            if n:
                i = int(torch.nonzero(bad.flatten())[0])
                idx = tuple(int(v) for v in torch.unravel_index(torch.tensor(i), o.shape))
                return (f"{name}: {n} of {o.numel()} elements (batch rows from {b0}) differ beyond {atol:g} + "
                        f"{rtol:g}*|ref| (first at {idx}: {float(o.flatten()[i])!r} vs {float(e.flatten()[i])!r})")
    return None
