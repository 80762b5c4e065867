"""Policies: what samples attempts and learns from them.

The :class:`Policy` protocol is shaped like Tinker's API (sample from current weights; train on
prompt/completion tokens with sampler log-probabilities and per-token advantages using the
importance-sampling loss; save/load state with optimizer). Backends:

- ``local``  (``tttd.policy.local``): transformers + peft on a CPU or GPU;
- ``tinker`` (``tttd.policy.tinker``): Tinker and Tinker-compatible training services;
- ``api``    (``tttd.policy.api``): any OpenAI-compatible endpoint, frozen (no training).

Backends are imported lazily by :func:`make_policy`, so the core never needs torch or tinker.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from tttd.policy.backends import BACKENDS as _SPECS
from tttd.types import Message, Sample, TrainDatum


@dataclass
class SamplingParams:
    """How to sample. Temperature 1 with no top-k/top-p is the exact policy (the loss assumes it)."""

    max_tokens: int = 256
    temperature: float = 1.0
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    seeds: list[int] | None = None  # one seed per prompt; overrides `seed` when set
    # a sample out of budget while thinking gets an answer header and continues (tttd.policy.forced_answer)
    forced_answer: bool = False


def check_sampling(n: int, params: SamplingParams) -> None:
    """The arguments every sampling engine rejects alike (ValueError, one line)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if params.max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {params.max_tokens}")
    if not params.temperature > 0:
        raise ValueError(f"temperature must be > 0, got {params.temperature}")


def prompt_seeds(params: SamplingParams, n_prompts: int, fallback: int) -> list[int]:
    """One sampling seed per prompt: ``params.seeds`` when set (checked against the number of
    prompts), else distinct seeds derived from ``params.seed`` (or ``fallback`` when that is None):
    the first prompt gets that seed itself, prompt i > 0 ``sub_seed(seed, i)``.

    Identical prompts must get different seeds: a service that honours seeds would otherwise
    return identical groups (issue 15)."""
    if params.seeds is not None:
        if len(params.seeds) != n_prompts:
            raise ValueError(f"SamplingParams.seeds has {len(params.seeds)} seeds for {n_prompts} prompts")
        return [int(s) for s in params.seeds]
    base = params.seed if params.seed is not None else fallback
    return [int(base) if i == 0 else sub_seed(base, i) for i in range(n_prompts)]


def sub_seed(*parts: int) -> int:
    """A 31-bit seed from integers (stable across processes and Python versions); e.g. the seed of
    sample j of a prompt whose seed is s is ``sub_seed(s, j)``."""
    import hashlib

    h = hashlib.sha256(("seed:" + ",".join(str(int(p)) for p in parts)).encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF


@dataclass
class TrainConfig:
    """One optimizer step's settings."""

    learning_rate: float = 4e-5
    kl_coef: float = 0.0  # lambda of the KL-to-base advantage shift (0.1 in the paper preset)
    clip: float | None = None  # PPO-style ratio clip epsilon; None = plain importance sampling
    micro_batch_tokens: int = 8192  # gradient-accumulation chunk size (local backend)


@dataclass
class TokenUsage:
    """Tokens used so far (for the spend ledger)."""

    prompt_tokens: int = 0
    sampled_tokens: int = 0
    trained_tokens: int = 0
    requests: int = 0

    def to_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@runtime_checkable
class Policy(Protocol):
    """What the discovery loop needs from a model."""

    #: False for frozen policies (api backend); the loop then skips training.
    trainable: bool

    def sample(
        self, prompts: list[list[Message]], n: int, params: SamplingParams
    ) -> list[list[Sample]]:
        """``n`` completions for each chat prompt (rendered with the model's chat template)."""
        ...

    def train_step(self, batch: list[TrainDatum], config: TrainConfig) -> dict[str, float]:
        """One importance-sampling policy-gradient step (one optimizer step) over ``batch``.
        Returns metrics (loss, kl_policy_base when kl_coef > 0, tokens, ...)."""
        ...

    def save(self, path: str) -> None:
        """Write everything needed to continue exactly (adapter/weights, optimizer, RNG)."""
        ...

    def load(self, path: str) -> None:
        ...

    def usage(self) -> TokenUsage:
        ...

    def close(self) -> None:
        ...


# name -> "module:Class"; each backend's options are declared in tttd.policy.backends
BACKENDS = {name: spec.target for name, spec in _SPECS.items()}


def backend_class(backend: str) -> type:
    """The policy class of a backend; its heavy imports happen here, not earlier."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    module_name, _, cls_name = BACKENDS[backend].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(
            f"the {backend!r} backend needs extra packages: pip install 'tttd[{backend}]' ({exc})"
        ) from exc
    return getattr(module, cls_name)


def make_policy(backend: str, **kwargs: Any) -> Policy:
    """Build a policy by backend name."""
    return backend_class(backend)(**kwargs)
