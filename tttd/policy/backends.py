"""Each backend's options, declared once: what ``--backend-option`` accepts (checked by
:mod:`tttd.cli.preflight` before anything is written), what the loop hands the policy's constructor
(:func:`tttd.build.build_policy`), and the defaults ``tttd run --dry-run`` shows.

Plain data, no imports of the backends themselves (torch, tinker, httpx load only when a policy is
built). tests/policy/test_backends.py checks each declaration against its class's constructor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

REQUIRED = object()  # the default of an option without one (the model name of a remote backend)


@dataclass(frozen=True)
class Option:
    """One constructor keyword of a backend.

    ``from_run``: set from the run configuration's own key of that name (``--model``,
    ``--lora-rank``, ``--full-finetune``, ``--seed``, ``--learning-rate``), so it is not listed as a
    backend option (it may still be overridden by one, as today)."""

    name: str
    type: str
    default: Any
    help: str
    from_run: bool = False


@dataclass(frozen=True)
class Backend:
    name: str
    target: str  # "module:Class", imported by tttd.policy.backend_class
    trainable: bool
    options: tuple[Option, ...]

    def names(self) -> list[str]:
        """Every keyword the policy's constructor takes."""
        return [o.name for o in self.options]

    def user_options(self) -> list[str]:
        """The options listed to a user (sorted; the run configuration's own keys left out)."""
        return sorted(o.name for o in self.options if not o.from_run)

    def defaults(self) -> dict[str, Any]:
        return {o.name: o.default for o in self.options if o.default is not REQUIRED}


def _o(name: str, type_: str, default: Any, help_: str, from_run: bool = False) -> Option:
    return Option(name, type_, default, help_, from_run)


_CHAT = _o("chat_template_kwargs", "dict | None", None,
           "passed to the chat template (e.g. {reasoning_effort: high} for gpt-oss)")

LOCAL = Backend("local", "tttd.policy.local:LocalPolicy", True, (
    _o("model", "str", "tiny", "a Hugging Face folder, a hub name, or tiny/small", True),
    _o("lora_rank", "int", 32, "LoRA rank", True),
    _o("lora_alpha", "float | None", None, "LoRA alpha (default 32, Tinker's)"),
    _o("target_modules", "str | list[str]", "all-linear", "peft target modules"),
    _o("full_finetune", "bool", False, "train every weight instead of a LoRA adapter", True),
    _o("device", "str | None", None, "cuda or cpu (default: cuda if available)"),
    _o("dtype", "str | None", None, "bf16, fp16 or fp32 (default: bf16 on cuda, fp32 on cpu)"),
    _o("seed", "int", 0, "seeds the LoRA init and sampling", True),
    _o("learning_rate", "float | None", None, "used when a step gets no TrainConfig", True),
    _o("max_batch_size", "int | None", None, "most sequences per generate call (default: from free memory)"),
    _o("micro_batch_tokens", "int | None", None, "gradient-accumulation chunk (padded tokens)"),
    _o("max_grad_norm", "float | None", None, "gradient clipping (default: none)"),
    _o("gradient_checkpointing", "bool | None", None, "recompute layers in backward (default: on for cuda)"),
    _o("train_unembed", "bool", True, "LoRA on the output layer too (Tinker's default)"),
    _CHAT,
    _o("engine", "str", "hf", "sampling engine: auto, hf or vllm (tttd.policy.engines)"),
    _o("engine_options", "dict | None", None, "settings of the engine (e.g. vLLM's gpu_memory_utilization)"),
    _o("parallel", "str", "replicate",
       "under torchrun: replicate (every rank holds the model) or fsdp (FSDP2 shards weights, gradients, Adam)"),
))

TINKER = Backend("tinker", "tttd.policy.tinker:TinkerPolicy", True, (
    _o("model", "str", REQUIRED, "the service's base model name", True),
    _o("lora_rank", "int", 32, "LoRA rank", True),
    _o("base_url", "str | None", None, "service URL (default: TINKER_BASE_URL)"),
    _o("api_key", "str | None", None, "API key (default: TINKER_API_KEY)"),
    _o("seed", "int", 0, "seeds the LoRA init and sampling", True),
    _o("connect_timeout_s", "float", 30.0, "seconds to reach the service"),
    _o("setup_timeout_s", "float", 900.0, "seconds to create the training client"),
    _o("request_timeout_s", "float | None", 7200.0, "seconds per sampling or training request"),
    _o("tokenizer", "object | str | None", None, "a tokenizer, path or hub name (default: the service's)"),
    _o("service_client", "object | None", None, "a pre-built tinker.ServiceClient"),
    _o("context_window", "int | None", 32768, "max_tokens clamped to context - prompt - 50 (None: no clamp)"),
    _CHAT,
    _o("train_unembed", "bool", True, "LoRA on the output layer too"),
    _o("save_every", "int", 5, "weights + optimizer saved on the service every n-th step"),
    _o("total_steps", "int | None", None, "the run's last step (always saved)"),
    _o("request_retries", "int", 4, "resends of a failed sample request, same seed (a training step is never resent)"),
    _o("retry_backoff_s", "float", 1.0, "first resend delay (doubles)"),
))

API = Backend("api", "tttd.policy.api:ApiPolicy", False, (
    _o("model", "str", REQUIRED, "the endpoint's model name", True),
    _o("base_url", "str | None", None, "endpoint (default: OPENAI_BASE_URL)"),
    _o("api_key", "str | None", None, "API key (default: OPENAI_API_KEY, else EMPTY)"),
    _o("concurrency", "int", 8, "requests in flight"),
    _o("max_retries", "int", 4, "retries of a failed request"),
    _o("timeout_s", "float", 120.0, "seconds per request"),
    _o("backoff_s", "float", 0.5, "first retry delay (doubles)"),
    _o("mode", "str", "chat", "protocol: chat (/chat/completions)"),
    _o("logprobs", "bool", True, "ask for per-token log-probs"),
    _o("extra_body", "dict | None", None, "extra JSON fields for every request"),
    _CHAT,
    _o("tokenizer", "str | None", None,
       "counts tokens when the server reports no usage (default: the model's, if installed)"),
))

BACKENDS: dict[str, Backend] = {b.name: b for b in (LOCAL, TINKER, API)}


def backend_spec(name: str) -> Backend:
    """The declaration of backend ``name`` (ValueError, one line, for an unknown one)."""
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    return BACKENDS[name]
