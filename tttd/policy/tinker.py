"""Tinker backend: sample and train a LoRA policy on Tinker or a Tinker-compatible service.

This is the paper's own setup (SPEC.md section 0): the model lives on the service; this process
renders prompts, sends token ids, and receives sampled tokens with the sampler's log-probs. One
training step is one ``forward_backward(loss_fn="importance_sampling")`` plus one ``optim_step``
with Adam(lr, 0.9, 0.95, 1e-8), followed by a fresh sampling client on the new weights, so every
step samples strictly on-policy (SPEC.md 1.1, 2.5).

Request building is split into pure functions (:func:`render_prompt`, :func:`build_datum`,
:func:`build_sampling_params`, :func:`adam_params`, :func:`kl_shift`) that use the SDK's real
types and are tested offline; :class:`TinkerPolicy` only moves them over the wire.

Datums follow the tinker cookbook: the full sequence is prompt + completion; the model input is
every token but the last, ``target_tokens`` every token but the first; ``logprobs`` and
``advantages`` are aligned with the targets and are 0 on prompt positions (there the sampler
log-prob is unknown and the advantage 0, so prompt tokens carry no loss; no ``mask`` field is sent,
as in the reference, which removes it before the call).

The SDK hangs, rather than fails, on a dead address: session creation runs in a daemon thread and
is abandoned after ``connect_timeout_s`` with a clear error. Every later call waits at most
``request_timeout_s``.

Deviations from the reference: none in the update itself. The KL-to-base shift is computed here in
numpy with the same formula as :func:`tttd.losses.kl_advantage_shift` (the reference computes it
in the cookbook before the call, the same place). Sampling makes one request per prompt with
``num_samples=n`` instead of the reference's ``n`` requests with ``num_samples=1``; both draw
independent samples, ours shares the prompt prefill.
"""

from __future__ import annotations

import json
import math
import os
import random
import threading
import uuid
from pathlib import Path
from typing import Any, Callable, Sequence, TypeVar

import tinker  # noqa: F401  (imported here so a missing extra fails in make_policy, clearly)

from tttd.atomic import atomic_write_json
from tttd.policy import SamplingParams, TokenUsage, TrainConfig
from tttd.types import Message, Sample, TrainDatum

T = TypeVar("T")

STATE_FILE = "tinker_state.json"
_KEY_HELP = (
    "set the TINKER_API_KEY environment variable (or pass api_key=...; "
    "TINKER_CREDENTIAL_CMD or a stored key from `tinker auth login` also work)"
)


# ----------------------------------------------------------------------------- pure helpers


def render_prompt(tokenizer: Any, messages: Sequence[Message]) -> list[int]:
    """Chat messages -> prompt token ids via the tokenizer's chat template.

    Renders to text with ``add_generation_prompt=True`` and then encodes without adding special
    tokens: the template already writes them, and text-then-encode behaves the same across
    transformers versions (``tokenize=True`` returns a dict in some of them).
    """
    if not messages:
        raise ValueError("a prompt needs at least one message")
    for m in messages:
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise ValueError(f"each message must be a dict with 'role' and 'content', got {m!r}")
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("the tokenizer has no chat template; pass a tokenizer that has one")
    text = tokenizer.apply_chat_template(
        list(messages), tokenize=False, add_generation_prompt=True
    )
    ids = tokenizer.encode(text, add_special_tokens=False)
    return [int(t) for t in ids]


def stop_token_ids(tokenizer: Any) -> list[int]:
    """End-of-sequence ids to stop on: ``eos_token_id`` (one id or a list), deduplicated."""
    eos = getattr(tokenizer, "eos_token_id", None)
    ids = eos if isinstance(eos, (list, tuple)) else ([eos] if eos is not None else [])
    out: list[int] = []
    for i in ids:
        if i is not None and int(i) not in out:
            out.append(int(i))
    return out


def build_sampling_params(
    params: SamplingParams,
    stop_ids: Sequence[int] = (),
    eos_text: str | None = None,
    seed: int | None = None,
) -> Any:
    """tttd SamplingParams -> ``tinker.types.SamplingParams``.

    No top-k / top-p (the loss assumes the exact policy). Stops: without user stop strings we
    send the end-of-sequence ids (``stop_ids``), so a chat model stops at its end-of-turn token;
    with user stop strings the SDK takes strings only, so the EOS token's text is appended to
    them. With neither, ``stop=None`` keeps the service's implicit EOS stopping.
    """
    from tinker import types

    if params.max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {params.max_tokens}")
    if not (params.temperature > 0 and math.isfinite(params.temperature)):
        raise ValueError(f"temperature must be a positive finite number, got {params.temperature}")
    stop: list[str] | list[int] | None
    if params.stop:
        stop = [str(s) for s in params.stop]
        if eos_text and eos_text not in stop:
            stop.append(eos_text)
    elif stop_ids:
        stop = [int(i) for i in stop_ids]
    else:
        stop = None
    return types.SamplingParams(
        max_tokens=int(params.max_tokens),
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
) -> tuple[list[list[float]], float]:
    """The paper's KL-to-base penalty as an advantage shift, per completion token.

    Same formula as :func:`tttd.losses.kl_advantage_shift` (every completion token is unmasked):
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
    shifted, dbar = kl_advantage_shift(*flat, np.ones_like(flat[0]), coef)
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


# ----------------------------------------------------------------------------- the policy


class TinkerPolicy:
    """A LoRA policy trained on a Tinker(-compatible) service.

    ``model``: the service's base model name (e.g. ``"Qwen/Qwen3-8B"``). ``base_url`` / ``api_key``
    default to ``TINKER_BASE_URL`` / ``TINKER_API_KEY`` (the SDK's variables). ``tokenizer``: a
    tokenizer object or a local path / hub name, for services whose tokenizer cannot be fetched
    (default: ``training_client.get_tokenizer()``). ``service_client``: a pre-built
    ``tinker.ServiceClient`` (custom headers, or a stand-in in tests); skips the key check.
    ``seed`` seeds the LoRA init and per-request sampling seeds (when SamplingParams.seed is None).
    """

    trainable = True

    def __init__(
        self,
        model: str,
        lora_rank: int = 32,
        base_url: str | None = None,
        api_key: str | None = None,
        seed: int = 0,
        connect_timeout_s: float = 30.0,
        setup_timeout_s: float = 900.0,
        request_timeout_s: float | None = 7200.0,
        tokenizer: Any = None,
        service_client: Any = None,
    ) -> None:
        if not model:
            raise ValueError("model (the service's base model name) is required")
        if lora_rank < 1:
            raise ValueError(f"lora_rank must be >= 1, got {lora_rank}")
        self.model = model
        self.lora_rank = int(lora_rank)
        self.seed = int(seed)
        self.connect_timeout_s = connect_timeout_s
        self.setup_timeout_s = setup_timeout_s
        self.request_timeout_s = request_timeout_s
        self.base_url = base_url or os.environ.get("TINKER_BASE_URL") or None
        self._usage = TokenUsage()
        self._rng = random.Random(self.seed)
        self._step = 0
        self._base_sampler: Any = None
        self._closed = False

        if service_client is None:
            if not _has_credentials(api_key):
                raise RuntimeError(f"the tinker backend needs an API key: {_KEY_HELP}")
            kwargs: dict[str, Any] = {}
            if self.base_url:
                kwargs["base_url"] = self.base_url
            if api_key:
                kwargs["api_key"] = api_key
            service_client = tinker.ServiceClient(**kwargs)
        self._service = service_client

        # Session creation happens inside the first create_* call and hangs on a dead address.
        where = self.base_url or "the default Tinker endpoint"
        try:
            future = _call_with_timeout(
                lambda: self._service.create_lora_training_client(
                    base_model=model, rank=self.lora_rank, seed=self.seed
                ),
                connect_timeout_s,
                "tinker session creation",
            )
        except TimeoutError as exc:
            raise TimeoutError(
                f"could not reach the tinker service at {where} within {connect_timeout_s} s "
                f"(is the address right and the service up?)"
            ) from exc
        self._training = self._result(future, self.setup_timeout_s, "LoRA training client creation")
        self.tokenizer = self._load_tokenizer(tokenizer)
        self._sampler = self._fresh_sampler()

    # -- plumbing

    def _result(self, future: Any, timeout_s: float | None, what: str) -> Any:
        """Wait for an SDK future with a bound; a hung service becomes a clear error."""
        if hasattr(future, "result"):
            return _call_with_timeout(lambda: future.result(), timeout_s, f"tinker {what}")
        return future

    def _load_tokenizer(self, tokenizer: Any) -> Any:
        if tokenizer is None:
            return self._training.get_tokenizer()
        if isinstance(tokenizer, (str, os.PathLike)):
            from transformers import AutoTokenizer

            return AutoTokenizer.from_pretrained(str(tokenizer))
        return tokenizer

    def _fresh_sampler(self) -> Any:
        """A sampling client on the current weights (after every optimizer step)."""
        try:
            future = self._training.save_weights_and_get_sampling_client()
        except TypeError:  # older SDKs require a name
            future = self._training.save_weights_and_get_sampling_client(
                name=f"tttd-{self._step}-{uuid.uuid4().hex[:8]}"
            )
        return self._result(future, self.setup_timeout_s, "sampling client creation")

    def _get_base_sampler(self) -> Any:
        if self._base_sampler is None:
            self._base_sampler = self._result(
                self._service.create_sampling_client(base_model=self.model),
                self.setup_timeout_s,
                "base-model sampling client creation",
            )
        return self._base_sampler

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("this TinkerPolicy is closed")

    # -- Policy protocol

    def sample(
        self, prompts: list[list[Message]], n: int, params: SamplingParams
    ) -> list[list[Sample]]:
        """``n`` samples per prompt; all prompts are submitted before any result is awaited."""
        from tinker import types

        self._check_open()
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        stop_ids = stop_token_ids(self.tokenizer)
        eos_text = getattr(self.tokenizer, "eos_token", None)
        rendered = [render_prompt(self.tokenizer, p) for p in prompts]
        futures = []
        for tokens in rendered:
            seed = params.seed if params.seed is not None else self._rng.randrange(2**31)
            sp = build_sampling_params(params, stop_ids, eos_text, seed=seed)
            futures.append(
                self._sampler.sample(
                    prompt=types.ModelInput.from_ints(tokens), num_samples=n, sampling_params=sp
                )
            )
        out: list[list[Sample]] = []
        for tokens, fut in zip(rendered, futures):
            resp = self._result(fut, self.request_timeout_s, "sample request")
            group = []
            for seq in resp.sequences:
                toks = [int(t) for t in seq.tokens]
                lps = seq.logprobs
                if lps is None or len(lps) != len(toks):
                    raise RuntimeError(
                        "the tinker sampler returned no per-token logprobs "
                        f"({0 if lps is None else len(lps)} for {len(toks)} tokens)"
                    )
                group.append(
                    Sample(
                        prompt_tokens=list(tokens),
                        tokens=toks,
                        logprobs=[float(x) for x in lps],
                        text=self.tokenizer.decode(toks, skip_special_tokens=True),
                        stop_reason="length" if seq.stop_reason == "length" else "stop",
                    )
                )
                self._usage.sampled_tokens += len(toks)
            if len(group) != n:
                raise RuntimeError(f"the tinker sampler returned {len(group)} samples, asked {n}")
            self._usage.prompt_tokens += len(tokens)
            self._usage.requests += 1
            out.append(group)
        return out

    def base_logprobs(self, batch: list[TrainDatum]) -> list[list[float]]:
        """Base-model log-probs of each datum's completion tokens (for the KL penalty)."""
        from tinker import types

        sampler = self._get_base_sampler()
        futures = [
            sampler.compute_logprobs(
                types.ModelInput.from_ints(list(d.prompt_tokens) + list(d.tokens))
            )
            for d in batch
        ]
        out = []
        for d, fut in zip(batch, futures):
            lps = self._result(fut, self.request_timeout_s, "compute_logprobs request")
            tail = list(lps)[-len(d.tokens):]
            if len(tail) != len(d.tokens) or any(x is None for x in tail):
                raise RuntimeError("the tinker service returned incomplete base-model logprobs")
            out.append([float(x) for x in tail])
            self._usage.requests += 1
        return out

    def train_step(self, batch: list[TrainDatum], config: TrainConfig) -> dict[str, float]:
        """One forward_backward + optim_step on the service, then a fresh sampler.

        An empty batch (every group dropped) skips the step and returns ``skipped = 1``.
        """
        import numpy as np

        self._check_open()
        for i, d in enumerate(batch):
            _check_datum(d, i)
        if not batch:
            return {"loss": 0.0, "tokens": 0.0, "sequences": 0.0, "skipped": 1.0}
        loss_fn, loss_cfg = _loss_fn(config)
        optim = adam_params(config.learning_rate)
        metrics: dict[str, float] = {}
        advantages = [list(d.advantages) for d in batch]
        if config.kl_coef > 0:
            base = self.base_logprobs(batch)
            advantages, dbar = kl_shift(
                advantages, [d.logprobs for d in batch], base, config.kl_coef
            )
            metrics["kl_policy_base"] = dbar
        data = [build_datum(d, a) for d, a in zip(batch, advantages)]
        kwargs: dict[str, Any] = {"loss_fn": loss_fn}
        if loss_cfg is not None:
            kwargs["loss_fn_config"] = loss_cfg
        fb_future = self._training.forward_backward(data, **kwargs)
        opt_future = self._training.optim_step(optim)  # enqueued before waiting, as the cookbook
        fb = self._result(fb_future, self.request_timeout_s, "forward_backward")
        self._result(opt_future, self.request_timeout_s, "optim_step")
        self._step += 1

        service_metrics = dict(getattr(fb, "metrics", {}) or {})
        loss = next(
            (float(v) for k, v in service_metrics.items() if k.startswith("loss")), math.nan
        )
        n_tokens = sum(len(d.tokens) for d in batch)
        metrics.update(
            loss=loss,
            tokens=float(n_tokens),
            sequences=float(len(batch)),
            trained_tokens=float(sum(len(d.prompt_tokens) + len(d.tokens) - 1 for d in batch)),
        )
        # Diagnostics as the reference logs them: sampler vs. learner log-probs on action tokens.
        outputs = getattr(fb, "loss_fn_outputs", None) or []
        if len(outputs) == len(batch) and all("logprobs" in o for o in outputs):
            diffs = []
            for d, o in zip(batch, outputs):
                lp = np.asarray(o["logprobs"].tolist(), dtype=np.float64)[-len(d.tokens):]
                diffs.append(np.asarray(d.logprobs, dtype=np.float64) - lp)
            allq = np.concatenate([np.asarray(d.logprobs, dtype=np.float64) for d in batch])
            alld = np.concatenate(diffs)
            metrics["kl_sample_train_v1"] = float(alld.mean())
            metrics["kl_sample_train_v2"] = float(0.5 * (alld**2).mean())
            metrics["entropy"] = float(-allq.mean())
        self._usage.trained_tokens += int(metrics["trained_tokens"])
        self._usage.requests += 2
        self._sampler = self._fresh_sampler()
        return metrics

    def save(self, path: str) -> None:
        """Save weights + optimizer on the service; record its path, the step and RNG locally."""
        self._check_open()
        name = f"tttd-step{self._step:06d}-{uuid.uuid4().hex[:8]}"
        resp = self._result(self._training.save_state(name), self.setup_timeout_s, "save_state")
        state = {
            "backend": "tinker",
            "tinker_path": resp.path,
            "model": self.model,
            "lora_rank": self.lora_rank,
            "base_url": self.base_url,
            "step": self._step,
            "rng_state": _rng_to_json(self._rng.getstate()),
            "usage": self._usage.to_dict(),
        }
        atomic_write_json(Path(path) / STATE_FILE, state, indent=2)

    def load(self, path: str) -> None:
        """Restore weights + optimizer from the saved service path, then the step and RNG."""
        self._check_open()
        file = Path(path) / STATE_FILE
        if not file.is_file():
            raise FileNotFoundError(f"no tinker policy state at {file}")
        state = json.loads(file.read_text())
        if state.get("model") != self.model:
            raise ValueError(
                f"checkpoint is for model {state.get('model')!r}, this policy is {self.model!r}"
            )
        self._training = self._result(
            self._service.create_training_client_from_state_with_optimizer(state["tinker_path"]),
            self.setup_timeout_s,
            "training client restore",
        )
        self._step = int(state["step"])
        self._rng.setstate(_rng_from_json(state["rng_state"]))
        self._usage = TokenUsage(**state.get("usage", {}))
        self._sampler = self._fresh_sampler()

    def usage(self) -> TokenUsage:
        return TokenUsage(**self._usage.to_dict())

    def close(self) -> None:
        """End the service session (best effort, bounded by ``connect_timeout_s``)."""
        if self._closed:
            return
        self._closed = True
        close = getattr(self._service, "close", None)
        if close is None:
            return
        try:
            fut = _call_with_timeout(lambda: close("success"), self.connect_timeout_s, "close")
            self._result(fut, self.connect_timeout_s, "session close")
        except Exception:  # noqa: BLE001 - closing must not mask the run's own outcome
            pass


def _rng_to_json(state: tuple) -> list:
    version, internal, gauss = state
    return [version, list(internal), gauss]


def _rng_from_json(data: list) -> tuple:
    version, internal, gauss = data
    return (version, tuple(internal), gauss)
