"""Model set-up helpers of the local backend: LoRA targets (with the output layer when
``train_unembed``), dropout off, activation checkpointing."""

from __future__ import annotations

import torch


def lora_targets(model, target_modules: str | list[str], train_unembed: bool) -> str | list[str]:
    """peft target modules; with ``train_unembed`` the output layer is added (peft's
    ``"all-linear"`` leaves it out, Tinker trains it by default)."""
    head = model.get_output_embeddings()
    head_name = next((n for n, m in model.named_modules() if m is head), "lm_head")
    head_leaf = head_name.rsplit(".", 1)[-1]
    if target_modules == "all-linear":
        if not train_unembed:
            return "all-linear"
        names = {n.rsplit(".", 1)[-1] for n, m in model.named_modules()
                 if isinstance(m, torch.nn.Linear) and n != head_name}
        return sorted(names) + [head_leaf]
    names = [target_modules] if isinstance(target_modules, str) else list(target_modules)
    if train_unembed and head_leaf not in names:
        names.append(head_leaf)
    return names


def enable_checkpointing(model) -> None:
    """Activation (gradient) checkpointing of every decoder layer, non-reentrant (frozen inputs
    are fine with a LoRA). transformers >= 5.2x renamed the method; both names are handled."""
    kwargs = {"use_reentrant": False}
    enable = getattr(model, "activation_checkpointing_enable", None)
    if enable is not None:
        enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def no_dropout(model) -> None:
    """Set every dropout probability to 0 (modules and the attention's config value), so that
    training mode (needed for gradient checkpointing) computes the same log-probs as sampling."""
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            m.p = 0.0
    for cfg in {id(c): c for c in (getattr(m, "config", None) for m in model.modules()) if c is not None}.values():
        for key in ("attention_dropout", "hidden_dropout", "dropout", "resid_pdrop", "embd_pdrop", "attn_pdrop"):
            if isinstance(getattr(cfg, key, None), float) and getattr(cfg, key) > 0:
                setattr(cfg, key, 0.0)
