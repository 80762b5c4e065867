"""Request building for the tinker backend: pure functions over the SDK's real types (tested
offline), plus the bounded-wait and credential helpers. :mod:`tttd.policy.tinker` moves them
over the wire; see its docstring for the datum layout and the paper's settings."""

from __future__ import annotations

import math
import os
import threading
from typing import Any, Callable, Sequence, TypeVar

from tttd.policy import SamplingParams, TrainConfig
from tttd.types import Message, TrainDatum

T = TypeVar("T")

# ----------------------------------------------------------------------------- pure helpers


def render_prompt(
    tokenizer: Any, messages: Sequence[Message], chat_template_kwargs: dict[str, Any] | None = None
) -> list[int]:
    """Chat messages -> prompt token ids via the tokenizer's chat template.

    Renders to text with ``add_generation_prompt=True`` and then encodes without adding special
    tokens: the template already writes them, and text-then-encode behaves the same across
    transformers versions (``tokenize=True`` returns a dict in some of them).
    ``chat_template_kwargs`` reach the template (e.g. ``{"reasoning_effort": "high"}`` for
    gpt-oss, whose template defaults to medium; ``{"enable_thinking": False}`` for Qwen3).
    """
    if not messages:
        raise ValueError("a prompt needs at least one message")
    for m in messages:
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise ValueError(f"each message must be a dict with 'role' and 'content', got {m!r}")
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("the tokenizer has no chat template; pass a tokenizer that has one")
    text = tokenizer.apply_chat_template(
        list(messages), tokenize=False, add_generation_prompt=True, **(chat_template_kwargs or {})
    )
    ids = tokenizer.encode(text, add_special_tokens=False)
    return [int(t) for t in ids]


#: End-of-turn tokens of common chat formats: ChatML (Qwen, whose base models' eos is
#: ``<|endoftext|>``), Llama 3, gpt-oss Harmony (``<|return|>`` ends the final message; its
#: ``<|end|>`` only ends a channel and must not stop sampling), Gemma.
END_OF_TURN_TOKENS = ("<|im_end|>", "<|eot_id|>", "<|return|>", "<end_of_turn>")


def stop_token_ids(tokenizer: Any) -> list[int]:
    """Token ids that end a completion: ``eos_token_id`` (one id or a list) plus the end-of-turn
    tokens of :data:`END_OF_TURN_TOKENS` that the vocabulary has, deduplicated."""
    eos = getattr(tokenizer, "eos_token_id", None)
    ids = list(eos) if isinstance(eos, (list, tuple)) else ([eos] if eos is not None else [])
    vocab = tokenizer.get_vocab() if hasattr(tokenizer, "get_vocab") else {}
    ids += [vocab[t] for t in END_OF_TURN_TOKENS if t in vocab]
    out: list[int] = []
    for i in ids:
        if i is not None and int(i) not in out:
            out.append(int(i))
    return out


def clamp_max_tokens(max_tokens: int, prompt_len: int, context_window: int | None) -> int:
    """The paper's dynamic budget (SPEC 1.2): ``min(max_tokens, context - prompt - 50)``; raises
    ValueError when the prompt leaves no room (the reference raised too)."""
    if context_window is None:
        return int(max_tokens)
    room = int(context_window) - int(prompt_len) - 50
    if room < 1:
        raise ValueError(
            f"a prompt of {prompt_len} tokens leaves no room in the {context_window}-token context "
            "(50 tokens are kept free, as the paper does)"
        )
    return min(int(max_tokens), room)


def build_sampling_params(
    params: SamplingParams,
    stop_ids: Sequence[int] = (),
    eos_text: str | Sequence[str] | None = None,
    seed: int | None = None,
    max_tokens: int | None = None,
) -> Any:
    """tttd SamplingParams -> ``tinker.types.SamplingParams``.

    No top-k / top-p (the loss assumes the exact policy). Stops: without user stop strings we
    send the end-of-sequence and end-of-turn ids (``stop_ids``); with user stop strings the SDK
    takes strings only, so the texts of those tokens (``eos_text``: one or several) are appended
    to them. With neither, ``stop=None`` keeps the service's implicit EOS stopping.
    ``max_tokens`` overrides ``params.max_tokens`` (the clamped budget of one prompt).
    """
    from tinker import types

    budget = params.max_tokens if max_tokens is None else max_tokens
    if budget < 1:
        raise ValueError(f"max_tokens must be >= 1, got {budget}")
    if not (params.temperature > 0 and math.isfinite(params.temperature)):
        raise ValueError(f"temperature must be a positive finite number, got {params.temperature}")
    stop: list[str] | list[int] | None
    if params.stop:
        stop = [str(s) for s in params.stop]
        texts = [eos_text] if isinstance(eos_text, str) else list(eos_text or [])
        for t in texts:
            if t and t not in stop:
                stop.append(t)
    elif stop_ids:
        stop = [int(i) for i in stop_ids]
    else:
        stop = None
    return types.SamplingParams(
        max_tokens=int(budget),
        temperature=float(params.temperature),
        stop=stop,
        seed=seed if seed is not None else params.seed,
        top_k=-1,
        top_p=1.0,
    )


def adam_params(learning_rate: float) -> Any:
    """The paper's optimizer: Adam(lr, beta1=0.9, beta2=0.95, eps=1e-8), no weight decay."""
    from tinker import types

    if not (learning_rate > 0 and math.isfinite(learning_rate)):
        raise ValueError(f"learning_rate must be a positive finite number, got {learning_rate}")
    return types.AdamParams(learning_rate=float(learning_rate), beta1=0.9, beta2=0.95, eps=1e-8)


def _check_datum(d: TrainDatum, i: int) -> None:
    if not d.prompt_tokens:
        raise ValueError(f"datum {i}: prompt_tokens is empty")
    if not d.tokens:
        raise ValueError(f"datum {i}: tokens (the completion) is empty")
    if not (len(d.tokens) == len(d.logprobs) == len(d.advantages)):
        raise ValueError(
            f"datum {i}: tokens, logprobs and advantages must have equal lengths, got "
            f"{len(d.tokens)}, {len(d.logprobs)}, {len(d.advantages)}"
        )
    for name in ("logprobs", "advantages"):
        if not all(math.isfinite(float(x)) for x in getattr(d, name)):
            raise ValueError(f"datum {i}: {name} contains a non-finite value")
    if d.mask is not None and len(d.mask) != len(d.tokens):
        raise ValueError(f"datum {i}: mask has {len(d.mask)} entries for {len(d.tokens)} tokens")


def build_datum(datum: TrainDatum, advantages: Sequence[float] | None = None) -> Any:
    """TrainDatum -> ``tinker.types.Datum`` for the importance-sampling / PPO losses.

    ``advantages`` overrides ``datum.advantages`` (per completion token), e.g. after the KL shift.
    """
    import numpy as np
    from tinker import types

    _check_datum(datum, 0)
    adv = list(datum.advantages if advantages is None else advantages)
    if len(adv) != len(datum.tokens):
        raise ValueError(f"advantages has {len(adv)} entries for {len(datum.tokens)} tokens")
    full = [int(t) for t in datum.prompt_tokens] + [int(t) for t in datum.tokens]
    pad = len(datum.prompt_tokens) - 1  # target positions that predict prompt tokens
    logprobs = np.array([0.0] * pad + [float(x) for x in datum.logprobs], dtype=np.float32)
    advs = np.array([0.0] * pad + [float(x) for x in adv], dtype=np.float32)
    return types.Datum(
        model_input=types.ModelInput.from_ints(full[:-1]),
        loss_fn_inputs={
            "target_tokens": np.array(full[1:], dtype=np.int64),
            "logprobs": logprobs,
            "advantages": advs,
        },
    )


def kl_shift(
    advantages: Sequence[Sequence[float]],
    sampler_logprobs: Sequence[Sequence[float]],
    base_logprobs: Sequence[Sequence[float]],
    coef: float,
    masks: Sequence[Sequence[float]] | None = None,
) -> tuple[list[list[float]], float]:
    """The paper's KL-to-base penalty as an advantage shift, per completion token.

    Same formula as :func:`tttd.losses.kl_advantage_shift` (``masks``: 0 on appended tokens, which
    get no shift and stay out of the mean; default every completion token):
    ``d_t = logq_t - logp_base_t``, ``dbar`` = mean of d over all completion tokens of the batch,
    ``A_t <- A_t + coef * (dbar - d_t)``. Returns the shifted advantages and ``dbar`` (the logged
    ``kl_policy_base``).
    """
    import numpy as np

    from tttd.losses import kl_advantage_shift

    if not (len(advantages) == len(sampler_logprobs) == len(base_logprobs)):
        raise ValueError("advantages, sampler_logprobs and base_logprobs need one row per datum")
    for i, (a, q, p) in enumerate(zip(advantages, sampler_logprobs, base_logprobs)):
        if not (len(a) == len(q) == len(p)):
            raise ValueError(f"datum {i}: advantages/logprobs/base_logprobs lengths differ")
    if not advantages:
        return [], 0.0
    flat = [np.concatenate([np.asarray(r, dtype=np.float64) for r in rows])
            for rows in (advantages, sampler_logprobs, base_logprobs)]
    mask = np.ones_like(flat[0]) if masks is None else np.concatenate(
        [np.asarray(m, dtype=np.float64) for m in masks])
    if mask.shape != flat[0].shape:
        raise ValueError("masks need one entry per completion token")
    shifted, dbar = kl_advantage_shift(*flat, mask, coef)
    bounds = np.cumsum([len(a) for a in advantages])[:-1]
    return [row.tolist() for row in np.split(shifted, bounds)], dbar


def _loss_fn(config: TrainConfig) -> tuple[str, dict[str, float] | None]:
    if config.clip is None:
        return "importance_sampling", None
    if not (0 < config.clip < 1):
        raise ValueError(f"clip must be in (0, 1), got {config.clip}")
    eps = float(config.clip)
    return "ppo", {"clip_low_threshold": 1.0 - eps, "clip_high_threshold": 1.0 + eps}


def _call_with_timeout(fn: Callable[[], T], timeout_s: float | None, what: str) -> T:
    """Run ``fn`` in a daemon thread; raise TimeoutError after ``timeout_s``.

    A daemon thread (not an executor) so that a call hung inside the SDK never blocks exit.
    """
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
            box["error"] = exc

    th = threading.Thread(target=run, name=f"tttd-tinker-{what}", daemon=True)
    th.start()
    th.join(timeout_s)
    if th.is_alive():
        raise TimeoutError(f"{what} did not finish within {timeout_s} s")
    if "error" in box:
        raise box["error"]
    return box["value"]


def _has_credentials(api_key: str | None) -> bool:
    if api_key or os.environ.get("TINKER_API_KEY") or os.environ.get("TINKER_CREDENTIAL_CMD"):
        return True
    try:  # a stored default key from `tinker auth login`
        from tinker.lib import credentials

        return credentials.JsonCredentialStore(
            credentials.default_credentials_path()
        ).get_default_key() is not None
    except Exception:  # noqa: BLE001 - unreadable store = no stored key
        return False
