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


def save_checkpoint(policy: Any, path: str | os.PathLike, weights: dict[str, Any] | None = None,
                    optimizer_state: dict[str, Any] | None = None) -> None:
    """Write weights (adapter or full), optimizer, RNG states and counters into ``path``
    atomically (a temporary sibling folder, then a rename). ``weights`` (full tensors by parameter
    name) and ``optimizer_state`` replace the policy's own where they are sharded
    (:mod:`tttd.policy.fsdp`); the files are the same either way."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    if weights is not None:
        _write_weights(policy, tmp, weights)
    elif policy.full_finetune:
        from safetensors.torch import save_model

        save_model(policy.model, str(tmp / "model.safetensors"))
    else:
        # the adapter only: with a LoRA on a tied output layer peft would also copy the (frozen)
        # embedding matrix into every checkpoint
        policy.model.save_pretrained(str(tmp / "adapter"), save_embedding_layers=False)
    torch.save(optimizer_state if optimizer_state is not None else policy.optimizer.state_dict(), tmp / "optimizer.pt")
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


def _write_weights(policy: Any, folder: Path, weights: dict[str, Any]) -> None:
    """The files ``save_model``/``save_pretrained`` write, from full tensors by parameter name."""
    from safetensors.torch import save_file

    if policy.full_finetune:
        save_file({k: v.contiguous() for k, v in weights.items()}, str(folder / "model.safetensors"),
                  metadata={"format": "pt"})
        return
    adapter = folder / "adapter"
    adapter.mkdir()
    # peft's saved names drop the adapter name (read_checkpoint maps them back)
    sd = {k.replace(".default", ""): v.contiguous() for k, v in weights.items()}
    save_file(sd, str(adapter / "adapter_model.safetensors"),
              metadata={"format": "pt"})
    config = policy.model.peft_config["default"]
    inference = config.inference_mode
    config.inference_mode = True  # as save_pretrained writes it
    try:
        config.save_pretrained(str(adapter))
    finally:
        config.inference_mode = inference


def read_checkpoint(policy: Any, path: str | os.PathLike) -> dict[str, Any]:
    """Check and read a checkpoint without applying it: ``state`` (state.json), ``weights`` (the
    trainable parameters' full tensors by parameter name), ``optimizer`` and ``rng``. For a
    sharded policy (:mod:`tttd.policy.fsdp`), whose rank 0 reads before the ranks scatter."""
    src = Path(path)
    state = _check_state(policy, src)
    from safetensors.torch import load_file

    named = list(policy.model.named_parameters(remove_duplicate=False))
    if policy.full_finetune:
        raw = load_file(str(src / "model.safetensors"))
        aliases: dict[int, list[str]] = {}
        for name, param in named:
            aliases.setdefault(id(param), []).append(name)
        weights = {}
        for name, param in policy.model.named_parameters():
            found = next((raw[a] for a in aliases[id(param)] if a in raw), None)
            if found is None:
                raise ValueError(f"checkpoint model has no weight {name!r}")
            weights[name] = found
    else:
        raw = load_file(str(src / "adapter" / "adapter_model.safetensors"))
        weights, used = {}, set()
        for name, param in policy.model.named_parameters():
            if not param.requires_grad:
                continue
            key = name.replace(".default", "")  # peft's saved names drop the adapter name
            if key not in raw:
                raise ValueError(f"checkpoint adapter has no weight {key!r}")
            weights[name] = raw[key]
            used.add(key)
        extra = sorted(set(raw) - used)
        if extra:
            raise ValueError(f"checkpoint adapter has unexpected weights: {extra[:3]}")
    return {"state": state, "weights": weights,
            "optimizer": torch.load(src / "optimizer.pt", map_location="cpu", weights_only=True),
            "rng": torch.load(src / "rng.pt", weights_only=True)}


def _check_state(policy: Any, src: Path) -> dict[str, Any]:
    state_file = src / "state.json"
    if not state_file.exists():
        raise ValueError(f"{src} is not a LocalPolicy checkpoint (no state.json)")
    state = json.loads(state_file.read_text())
    if bool(state["full_finetune"]) != policy.full_finetune:
        raise ValueError(
            f"checkpoint full_finetune={state['full_finetune']} but this policy has "
            f"full_finetune={policy.full_finetune}"
        )
    if not policy.full_finetune and int(state["lora_rank"]) != policy.lora_rank:
        raise ValueError(f"checkpoint LoRA rank {state['lora_rank']} != {policy.lora_rank}")
    return state


def apply_counters(policy: Any, state: dict[str, Any], rng: dict[str, Any]) -> None:
    """The RNG states and counters of a checkpoint into ``policy``."""
    torch.set_rng_state(rng["cpu"])
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(rng["cuda"])
    policy.step = int(state["step"])
    policy.sample_calls = int(state["sample_calls"])
    policy._usage = TokenUsage(**state.get("usage", {}))


def load_checkpoint(policy: Any, path: str | os.PathLike) -> None:
    """Restore what :meth:`save` wrote (same model, same LoRA shape) into this policy."""
    src = Path(path)
    state = _check_state(policy, src)
    if policy.full_finetune:
        from safetensors.torch import load_model

        load_model(policy.model, str(src / "model.safetensors"), device=str(policy.device))
    else:
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        weights = load_file(str(src / "adapter" / "adapter_model.safetensors"), device=str(policy.device))
        result = set_peft_model_state_dict(policy.model, weights)
        unexpected = getattr(result, "unexpected_keys", None)
        if unexpected:
            raise ValueError(f"checkpoint adapter has unexpected weights: {unexpected[:3]}")
    opt_state = torch.load(src / "optimizer.pt", map_location=policy.device, weights_only=True)
    policy.optimizer.load_state_dict(opt_state)
    apply_counters(policy, state, torch.load(src / "rng.pt", weights_only=True))
