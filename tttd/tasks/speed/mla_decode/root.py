import math

import torch
import torch.nn.functional as F
from reference import Config, KVCache  # noqa: F401  (the contract's types)
from task import input_t, output_t


def rope(t, first_pos):
    """Rotate-half RoPE on the last dim of t [..., n, d] for positions first_pos.., all in bf16."""
    n, d = t.shape[-2:]
    half = d // 2
    inv_freq = (10000 ** (-torch.arange(half, dtype=torch.bfloat16) / half)).to(t.device)
    angles = torch.arange(first_pos, first_pos + n, device=t.device).to(torch.bfloat16)[:, None] * inv_freq
    angles = angles.repeat(1, 2)
    rotated = torch.cat([-t[..., half:], t[..., :half]], dim=-1)
    return t * angles.cos() + rotated * angles.sin()


@torch.no_grad()
def custom_kernel(data: input_t) -> output_t:
    """MLA decode in plain PyTorch (bf16): write the new latent into the cache, expand every cached latent
    into per-head keys and values, attend, project out. Batch rows go in groups to bound memory."""
    config, x, kv_cache = data
    bs, heads = x.shape[0], config.n_heads
    nope, pe, vdim, rank = config.qk_nope_head_dim, config.qk_rope_head_dim, config.v_head_dim, config.kv_lora_rank

    q = F.linear(F.linear(x, config.Q_proj_down_weight), config.Q_proj_up_weight)
    pos = kv_cache.seq_len
    kv_cache.data[:, pos] = F.linear(x[:, 0], config.KV_proj_down_weight)
    kv_cache.seq_len = length = pos + 1

    q = q.view(bs, heads, 1, nope + pe)
    q = torch.cat([q[..., :nope], rope(q[..., nope:], pos)], dim=-1)
    attended = []
    group = max(1, (2 << 30) // (length * heads * (2 * nope + vdim + pe) * 2))
    for b in range(0, bs, group):
        lat = kv_cache.data[b:b + group, :length]
        kv = F.linear(lat[..., :rank], config.KV_proj_up_weight).view(lat.shape[0], length, heads, nope + vdim)
        kv = kv.permute(0, 2, 1, 3)
        k_pe = rope(lat[..., rank:], 0)[:, None].expand(-1, heads, -1, -1)
        keys = torch.cat([kv[..., :nope], k_pe], dim=-1)
        scores = torch.matmul(q[b:b + group], keys.transpose(-1, -2)) / math.sqrt(nope + pe)
        attended.append(torch.matmul(torch.softmax(scores, dim=-1), kv[..., nope:]))
    y = torch.cat(attended).reshape(bs, 1, heads * vdim)
    return F.linear(y, config.wo_weight), kv_cache.data
