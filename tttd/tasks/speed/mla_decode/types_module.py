"""The contest's ``task`` module: the type aliases candidates import (``from task import input_t, output_t``)."""

from typing import TypeVar

import torch

#: (config: reference.Config, x [bs, 1, dim] bf16, kv_cache: reference.KVCache)
input_t = TypeVar("input_t", bound=tuple[object, torch.Tensor, object])
#: (output [bs, 1, dim] bf16, kv_cache.data [bs, max_seq_len, kv_lora_rank + qk_rope_head_dim] bf16)
output_t = TypeVar("output_t", bound=tuple[torch.Tensor, torch.Tensor])
