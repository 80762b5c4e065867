"""Checkpoints of :class:`tttd.policy.local.LocalPolicy`: weights (LoRA adapter or full), optimizer,
RNG states and counters, written atomically (a temporary sibling folder, then a rename).

These files are ours, never a candidate's: the optimizer and RNG states are saved with
``torch.save`` and loaded with ``weights_only=True``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch

from tttd.policy import TokenUsage

# The policy is typed ``Any`` here: naming LocalPolicy would import tttd.policy.local, which
# imports this module (an import circle, removed in issue 32).


def save_checkpoint(policy: Any, path: str | os.PathLike) -> None:
    """Write weights (adapter or full), optimizer, RNG states and counters into ``path``
    atomically (a temporary sibling folder, then a rename)."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    if policy.full_finetune:
        from safetensors.torch import save_model

        save_model(policy.model, str(tmp / "model.safetensors"))
    else:
        # the adapter only: with a LoRA on a tied output layer peft would also copy the (frozen)
        # embedding matrix into every checkpoint
        policy.model.save_pretrained(str(tmp / "adapter"), save_embedding_layers=False)
    torch.save(policy.optimizer.state_dict(), tmp / "optimizer.pt")
    rng: dict[str, Any] = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        rng["cuda"] = torch.cuda.get_rng_state_all()
    torch.save(rng, tmp / "rng.pt")
    state = {
        "step": policy.step,
        "sample_calls": policy.sample_calls,
        "seed": policy.seed,
        "model": policy.model_name,
        "full_finetune": policy.full_finetune,
        "lora_rank": policy.lora_rank,
        "lora_alpha": policy.lora_alpha,
        "usage": policy._usage.to_dict(),
    }
    (tmp / "state.json").write_text(json.dumps(state, indent=2) + "\n")
    if final.exists():
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        os.rename(final, old)
        os.rename(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(tmp, final)


def load_checkpoint(policy: Any, path: str | os.PathLike) -> None:
    """Restore what :meth:`save` wrote (same model, same LoRA shape) into this policy."""
    src = Path(path)
    state_file = src / "state.json"
    if not state_file.exists():
        raise ValueError(f"{src} is not a LocalPolicy checkpoint (no state.json)")
    state = json.loads(state_file.read_text())
    if bool(state["full_finetune"]) != policy.full_finetune:
        raise ValueError(
            f"checkpoint full_finetune={state['full_finetune']} but this policy has "
            f"full_finetune={policy.full_finetune}"
        )
    if policy.full_finetune:
        from safetensors.torch import load_model

        load_model(policy.model, str(src / "model.safetensors"), device=str(policy.device))
    else:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        if int(state["lora_rank"]) != policy.lora_rank:
            raise ValueError(f"checkpoint LoRA rank {state['lora_rank']} != {policy.lora_rank}")
        weights = load_file(str(src / "adapter" / "adapter_model.safetensors"), device=str(policy.device))
        result = set_peft_model_state_dict(policy.model, weights)
        unexpected = getattr(result, "unexpected_keys", None)
        if unexpected:
            raise ValueError(f"checkpoint adapter has unexpected weights: {unexpected[:3]}")
    opt_state = torch.load(src / "optimizer.pt", map_location=policy.device, weights_only=True)
    policy.optimizer.load_state_dict(opt_state)
    rng = torch.load(src / "rng.pt", weights_only=True)
    torch.set_rng_state(rng["cpu"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    policy.step = int(state["step"])
    policy.sample_calls = int(state["sample_calls"])
    policy._usage = TokenUsage(**state.get("usage", {}))
