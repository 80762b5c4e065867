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

Real-model details (issue 15): each request's ``max_tokens`` is clamped to ``min(max_tokens,
context_window - prompt - 50)`` (SPEC 1.2); sampling stops at the eos and the end-of-turn tokens
(:data:`END_OF_TURN_TOKENS`); prompt i carries its own seed (``SamplingParams.seeds``);
``chat_template_kwargs`` reach the template; ``train_unembed`` is sent explicitly; weights and
optimizer are saved on the service every ``save_every`` steps (see :meth:`TinkerPolicy.save` for
how resume stays exact). Works with both SDK generations: 0.24 (create_* return clients, used
with SkyRL's open server in ``tests/policy/test_tinker_skyrl.py``) and current ones (futures).

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
import uuid
from pathlib import Path
from typing import Any, Callable, Sequence

import tinker  # noqa: F401  (imported here so a missing extra fails in make_policy, clearly)

from tttd.atomic import atomic_write_json
from tttd.policy import SamplingParams, TokenUsage, TrainConfig, prompt_seeds
from tttd.policy.tinker_requests import (  # noqa: F401  (re-exported: the request builders)
    END_OF_TURN_TOKENS,
    _call_with_timeout,
    _check_datum,
    _has_credentials,
    _loss_fn,
    adam_params,
    build_datum,
    build_sampling_params,
    clamp_max_tokens,
    kl_shift,
    render_prompt,
    stop_token_ids,
)
from tttd.types import Message, Sample, TrainDatum

STATE_FILE = "tinker_state.json"
_KEY_HELP = (
    "set the TINKER_API_KEY environment variable (or pass api_key=...; "
    "TINKER_CREDENTIAL_CMD or a stored key from `tinker auth login` also work)"
)


# ----------------------------------------------------------------------------- the policy


class TinkerPolicy:
    """A LoRA policy trained on a Tinker(-compatible) service.

    ``model``: the service's base model name (e.g. ``"Qwen/Qwen3-8B"``). ``base_url`` / ``api_key``
    default to ``TINKER_BASE_URL`` / ``TINKER_API_KEY`` (the SDK's variables). ``tokenizer``: a
    tokenizer object or a local path / hub name, for services whose tokenizer cannot be fetched
    (default: ``training_client.get_tokenizer()``). ``service_client``: a pre-built
    ``tinker.ServiceClient`` (custom headers, or a stand-in in tests); skips the key check.
    ``seed`` seeds the LoRA init and the sampling seeds when SamplingParams carries none.

    ``context_window`` (default 32768, the paper's): each request's ``max_tokens`` is clamped to
    ``min(max_tokens, context_window - prompt - 50)`` (SPEC 1.2); None = no clamp.
    ``chat_template_kwargs``: passed to the chat template (e.g. ``{"reasoning_effort": "high"}``,
    the paper's gpt-oss setting). ``train_unembed`` (default True, Tinker's default and the
    paper's): LoRA on the output layer too; the local backend has the same option and default.
    ``save_every`` (default 5, the paper's): weights + optimizer are saved on the service every
    ``save_every``-th :meth:`save` call (one per loop step) and at step ``total_steps``; the other
    steps' checkpoints are marked incomplete and a resume goes back to the last complete one
    (see :meth:`save`).

    The training client is created on first use (or by :meth:`load` from saved state), so a
    resume never makes a throwaway client; the constructor only checks that the service answers.
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
        context_window: int | None = 32768,
        chat_template_kwargs: dict[str, Any] | None = None,
        train_unembed: bool = True,
        save_every: int = 5,
        total_steps: int | None = None,
        request_retries: int = 4,
        retry_backoff_s: float = 1.0,
    ) -> None:
        if not model:
            raise ValueError("model (the service's base model name) is required")
        if lora_rank < 1:
            raise ValueError(f"lora_rank must be >= 1, got {lora_rank}")
        if save_every < 1:
            raise ValueError(f"save_every must be >= 1, got {save_every}")
        if context_window is not None and context_window < 64:
            raise ValueError(f"context_window must be >= 64 tokens, got {context_window}")
        if chat_template_kwargs is not None and not isinstance(chat_template_kwargs, dict):
            raise ValueError(f"chat_template_kwargs must be a mapping, got {chat_template_kwargs!r}")
        self.model = model
        self.lora_rank = int(lora_rank)
        self.seed = int(seed)
        self.connect_timeout_s = connect_timeout_s
        self.setup_timeout_s = setup_timeout_s
        self.request_timeout_s = request_timeout_s
        self.context_window = None if context_window is None else int(context_window)
        self.chat_template_kwargs = dict(chat_template_kwargs or {})
        self.train_unembed = bool(train_unembed)
        self.save_every = int(save_every)
        self.total_steps = total_steps
        if request_retries < 0 or retry_backoff_s < 0:
            raise ValueError("request_retries and retry_backoff_s must be >= 0")
        self.request_retries = int(request_retries)  # issue 24: see tttd.policy.service_retry
        self.retry_backoff_s = float(retry_backoff_s)
        self.base_url = base_url or os.environ.get("TINKER_BASE_URL") or None
        self._usage = TokenUsage()
        self._rng = random.Random(self.seed)
        self._step = 0  # optimizer steps done
        self._saves = 0  # save() calls (one per committed loop step)
        self._tinker_path: str | None = None  # last weights + optimizer saved on the service
        self._tinker_saves = -1  # value of _saves when _tinker_path was written
        self._training: Any = None
        self._sampler: Any = None
        self._base_sampler: Any = None
        self._tokenizer_arg = tokenizer
        self._tokenizer: Any = None
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
        self._probe()
        if isinstance(tokenizer, (str, os.PathLike)):
            self._tokenizer = self._load_tokenizer(tokenizer)

    # -- plumbing

    @property
    def _where(self) -> str:
        return self.base_url or "the default Tinker endpoint"

    def _probe(self) -> None:
        """Fail fast (bounded by ``connect_timeout_s``) when the service does not answer, and
        when it lists its models and ``model`` is not one of them."""
        self._reachable = False
        probe = getattr(self._service, "get_server_capabilities", None)
        if probe is None:
            return

        def call() -> Any:
            import warnings

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # deprecated in newer SDKs, still served
                return probe()

        try:
            caps = _call_with_timeout(call, self.connect_timeout_s, "tinker capabilities")
        except TimeoutError as exc:
            raise TimeoutError(
                f"could not reach the tinker service at {self._where} within "
                f"{self.connect_timeout_s} s (is the address right and the service up?)"
            ) from exc
        except Exception as exc:  # noqa: BLE001
            if getattr(exc, "status_code", None) is not None:
                return  # answers, but not this endpoint: no model list to check
            raise RuntimeError(f"could not reach the tinker service at {self._where}: {exc}") from exc
        self._reachable = True
        models = [getattr(m, "model_name", m) for m in (getattr(caps, "supported_models", None) or [])]
        models = [m for m in models if isinstance(m, str)]
        if models and self.model not in models:
            raise ValueError(
                f"the tinker service at {self._where} does not serve {self.model!r}; it serves: "
                + ", ".join(models[:20])
            )

    def _result(self, future: Any, timeout_s: float | None, what: str) -> Any:
        """Wait for an SDK future with a bound; a hung service becomes a clear error.
        (SDK 0.24 returns some clients directly, later ones futures: both are accepted.)"""
        if hasattr(future, "result"):
            return _call_with_timeout(lambda: future.result(), timeout_s, f"tinker {what}")
        return future

    def _sample_result(self, first: Any, again: Callable[[], Any]) -> Any:
        """A sample response; a request failed by a flaky service (429/5xx, timeout, dropped
        connection) is sent again with the same seed, at most ``request_retries`` times (issue 24)."""
        from tttd.policy.service_retry import with_retries

        pending = [first]

        def attempt() -> Any:
            if not pending:  # a retry is a request too (issue 32: spend)
                self._usage.requests += 1
            fut = pending.pop() if pending else again()
            if isinstance(fut, BaseException):
                raise fut
            return self._result(fut, self.request_timeout_s, "sample request")

        return with_retries(attempt, "a sample request", self.request_retries, self.retry_backoff_s, self._where)

    def _create(self, fn: Callable[[], Any], what: str) -> Any:
        """Call a ``create_*`` method. Session creation may hang on a dead address: bounded by
        ``connect_timeout_s`` unless the service already answered the probe (SDK 0.24 returns
        the client itself, after the model is built: ``setup_timeout_s`` then)."""
        bound = self.setup_timeout_s if self._reachable else self.connect_timeout_s
        try:
            future = _call_with_timeout(fn, bound, f"tinker {what}")
        except TimeoutError as exc:
            raise TimeoutError(
                f"could not reach the tinker service at {self._where} within "
                f"{bound} s (is the address right and the service up?)"
            ) from exc
        return self._result(future, self.setup_timeout_s, what)

    def _ensure_training(self) -> Any:
        """The training client, created on first use (a fresh LoRA)."""
        if self._training is None:
            kwargs: dict[str, Any] = dict(base_model=self.model, rank=self.lora_rank, seed=self.seed,
                                          train_unembed=self.train_unembed)
            self._training = self._create(
                lambda: self._service.create_lora_training_client(**kwargs),
                "LoRA training client creation",
            )
            self._sampler = None
        return self._training

    def _get_sampler(self) -> Any:
        if self._sampler is None:
            self._ensure_training()
            self._sampler = self._fresh_sampler()
        return self._sampler

    @property
    def tokenizer(self) -> Any:
        if self._tokenizer is None:
            self._tokenizer = self._load_tokenizer(self._tokenizer_arg)
        return self._tokenizer

    def _load_tokenizer(self, tokenizer: Any) -> Any:
        if tokenizer is None:
            return self._ensure_training().get_tokenizer()
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

    def render(self, messages: Sequence[Message]) -> list[int]:
        """Prompt token ids (chat template with :attr:`chat_template_kwargs`)."""
        return render_prompt(self.tokenizer, messages, self.chat_template_kwargs)

    def max_new_tokens(self, max_tokens: int, prompt_len: int) -> int:
        """The clamped budget of one request (see :func:`clamp_max_tokens`)."""
        return clamp_max_tokens(max_tokens, prompt_len, self.context_window)

    @classmethod
    def dry_run_info(
        cls, max_tokens: int, options: dict[str, Any] | None = None, prompt_tokens: int | None = None
    ) -> dict[str, str]:
        """What a run with these backend ``options`` would send, without contacting the service:
        lines for ``tttd run --dry-run`` (label -> text). ``prompt_tokens``: a rendered prompt's
        length, when known, to show its clamped budget."""
        from tttd.policy.backends import TINKER

        defaults = TINKER.defaults()
        opts = {**defaults, **(options or {})}
        context = opts["context_window"]
        lines: dict[str, str] = {}
        if context is None:
            lines["token budget"] = f"{max_tokens} new tokens per sample (no context clamp)"
        else:
            full = int(context) - 50 - int(max_tokens)
            text = (f"min({max_tokens}, {context} - prompt - 50) new tokens per sample "
                    f"(prompts up to {max(full, 0)} tokens get the full {max_tokens})")
            if prompt_tokens is not None:
                try:
                    got = clamp_max_tokens(max_tokens, prompt_tokens, context)
                    text += f"; this prompt: {prompt_tokens} tokens -> {got}"
                except ValueError as exc:
                    text += f"; this prompt: {exc}"
            lines["token budget"] = text
        kw = opts["chat_template_kwargs"] or {}
        lines["chat template options"] = (
            ", ".join(f"{k}={v!r}" for k, v in sorted(kw.items())) if kw
            else "none (the template's defaults)"
        )
        lines["stop tokens"] = "eos + end-of-turn tokens in the vocabulary (" + ", ".join(END_OF_TURN_TOKENS) + ")"
        lines["LoRA"] = (f"rank {opts.get('lora_rank')}, output layer "
                         f"{'trained' if opts['train_unembed'] else 'frozen'} (train_unembed)")
        lines["service checkpoints"] = f"weights + optimizer every {opts['save_every']} steps and at the last step"
        return lines

    # -- Policy protocol

    def sample(
        self, prompts: list[list[Message]], n: int, params: SamplingParams
    ) -> list[list[Sample]]:
        """``n`` samples per prompt; all prompts are submitted before any result is awaited.

        Prompt i is sampled with seed ``params.seeds[i]`` (else seeds derived from
        ``params.seed``, else from the policy's checkpointed RNG), so identical prompts never
        repeat a group on a service that honours seeds."""
        from tinker import types

        self._check_open()
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        sampler = self._get_sampler()
        stop_ids = stop_token_ids(self.tokenizer)
        stop_texts = [str(t) for t in self.tokenizer.convert_ids_to_tokens(stop_ids)] if stop_ids else []
        rendered = [self.render(p) for p in prompts]
        fallback = 0
        if params.seeds is None and params.seed is None:
            fallback = self._rng.randrange(2**31)
        seeds = prompt_seeds(params, len(prompts), fallback)
        budgets = [self.max_new_tokens(params.max_tokens, len(t)) for t in rendered]
        def submit(tokens, seed, budget):
            sp = build_sampling_params(params, stop_ids, stop_texts, seed=seed, max_tokens=budget)
            return sampler.sample(prompt=types.ModelInput.from_ints(tokens), num_samples=n, sampling_params=sp)

        futures = []
        for tokens, seed, budget in zip(rendered, seeds, budgets):
            try:
                futures.append(submit(tokens, seed, budget))
            except Exception as exc:  # noqa: BLE001 - resubmitted below (bounded)
                futures.append(exc)
        out: list[list[Sample]] = []
        for tokens, seed, budget, fut in zip(rendered, seeds, budgets, futures):
            resp = self._sample_result(fut, lambda t=tokens, s=seed, b=budget: submit(t, s, b))
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
        if params.forced_answer:
            out = self._force_answers(out, seeds, params, stop_ids, stop_texts)
        return out

    def _force_answers(self, groups: list[list[Sample]], seeds: list[int], params: SamplingParams,
                       stop_ids: list[int], stop_texts: list[str]) -> list[list[Sample]]:
        """Phase 2 of the forced final answer (:mod:`tttd.policy.forced_answer`): one request per
        sample out of budget, continuing from its tokens, up to ``context_window - 50``."""
        from tinker import types

        from tttd.policy.forced_answer import continue_samples, detect

        tok = self.tokenizer

        def more(requests: list[list[int]], more_seeds: list[int]) -> list[Sample | None]:
            futures: list[Any] = []
            for req, seed in zip(requests, more_seeds):
                try:
                    budget = self.max_new_tokens(self.context_window or params.max_tokens, len(req))
                except ValueError:  # no room left in the context
                    futures.append(None)
                    continue
                sp = build_sampling_params(params, stop_ids, stop_texts, seed=seed, max_tokens=budget)
                futures.append(self._get_sampler().sample(
                    prompt=types.ModelInput.from_ints(req), num_samples=1, sampling_params=sp))
            res: list[Sample | None] = []
            for req, fut in zip(requests, futures):
                if fut is None:
                    res.append(None)
                    continue
                seq = self._result(fut, self.request_timeout_s, "sample request").sequences[0]
                toks = [int(t) for t in seq.tokens]
                lps = seq.logprobs
                if lps is None or len(lps) != len(toks):
                    raise RuntimeError("the tinker sampler returned no per-token logprobs")
                res.append(Sample(prompt_tokens=list(req), tokens=toks, logprobs=[float(x) for x in lps],
                                  text=tok.decode(toks, skip_special_tokens=True),
                                  stop_reason="length" if seq.stop_reason == "length" else "stop"))
                self._usage.sampled_tokens += len(toks)
                self._usage.prompt_tokens += len(req)
                self._usage.requests += 1
            return res

        return continue_samples(
            groups, seeds, detect(getattr(tok, "chat_template", None)),
            encode=lambda text: [int(t) for t in tok.encode(text, add_special_tokens=False)],
            decode=lambda ids: tok.decode(ids, skip_special_tokens=False),
            text_of=lambda ids: tok.decode(ids, skip_special_tokens=True),
            sample_more=more)

    def base_logprobs(self, batch: list[TrainDatum]) -> list[list[float]]:
        """Base-model log-probs of each datum's completion tokens (for the KL penalty).
        Services return one value per input token with a leading None (Tinker) or one per
        predicted token without it (SkyRL): the last ``len(tokens)`` values are used either way."""
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
            self._usage.prompt_tokens += len(d.prompt_tokens) + len(d.tokens)  # a prefill: paid as prompt
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
        training = self._ensure_training()
        loss_fn, loss_cfg = _loss_fn(config)
        optim = adam_params(config.learning_rate)
        metrics: dict[str, float] = {}
        advantages = [list(d.advantages) for d in batch]
        if config.kl_coef > 0:
            base = self.base_logprobs(batch)
            advantages, dbar = kl_shift(
                advantages, [d.logprobs for d in batch], base, config.kl_coef,
                masks=[d.mask_or_ones() for d in batch],
            )
            metrics["kl_policy_base"] = dbar
        data = [build_datum(d, a) for d, a in zip(batch, advantages)]
        kwargs: dict[str, Any] = {"loss_fn": loss_fn}
        if loss_cfg is not None:
            kwargs["loss_fn_config"] = loss_cfg
        try:  # issue 24: never repeated (see tttd.policy.service_retry); the step stops instead
            fb_future = training.forward_backward(data, **kwargs)
            opt_future = training.optim_step(optim)  # enqueued before waiting, as the cookbook
            fb = self._result(fb_future, self.request_timeout_s, "forward_backward")
            self._result(opt_future, self.request_timeout_s, "optim_step")
        except Exception as exc:  # noqa: BLE001
            from tttd.policy.service_retry import training_failed

            raise training_failed(exc, self._where) from None
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
            keep = np.concatenate([np.asarray(d.mask_or_ones()) for d in batch]) > 0  # sampled tokens
            allq = np.concatenate([np.asarray(d.logprobs, dtype=np.float64) for d in batch])[keep]
            alld = np.concatenate(diffs)[keep]
            metrics["kl_sample_train_v1"] = float(alld.mean())
            metrics["kl_sample_train_v2"] = float(0.5 * (alld**2).mean())
            metrics["entropy"] = float(-allq.mean())
        self._usage.trained_tokens += int(metrics["trained_tokens"])
        self._usage.requests += 2
        from tttd.policy.service_retry import with_retries

        self._sampler = with_retries(self._fresh_sampler, "a sampler on the new weights", self.request_retries,
                                     self.retry_backoff_s, self._where)
        return metrics

    def save(self, path: str) -> None:
        """Record this step's policy state in ``path``; weights + optimizer go to the service
        every ``save_every``-th call and at call ``total_steps`` (the paper saves every 5 steps).

        The other calls write a state that names the last service save and mark the folder
        incomplete (``tttd.rundir.POLICY_INCOMPLETE``): resuming from it would pair newer archive
        statistics with older weights, so the loop resumes from the newest complete step instead
        and repeats the steps after it (exact resume, at the cost of up to ``save_every - 1``
        repeated steps)."""
        from tttd.rundir import POLICY_INCOMPLETE

        self._check_open()
        training = self._ensure_training()
        self._saves += 1
        due = self._saves % self.save_every == 0 or (
            self.total_steps is not None and self._saves >= int(self.total_steps)
        )
        if due:
            name = f"tttd-step{self._step:06d}-{uuid.uuid4().hex[:8]}"
            from tttd.policy.service_retry import with_retries

            resp = with_retries(lambda: self._result(training.save_state(name), self.setup_timeout_s, "save_state"),
                                "save_state", self.request_retries, self.retry_backoff_s, self._where)
            self._tinker_path, self._tinker_saves = resp.path, self._saves
        complete = self._tinker_saves == self._saves
        state = {
            "backend": "tinker",
            "tinker_path": self._tinker_path,
            "complete": complete,
            "model": self.model,
            "lora_rank": self.lora_rank,
            "train_unembed": self.train_unembed,
            "base_url": self.base_url,
            "step": self._step,
            "saves": self._saves,
            "tinker_saves": self._tinker_saves,
            "rng_state": _rng_to_json(self._rng.getstate()),
            "usage": self._usage.to_dict(),
        }
        folder = Path(path)
        atomic_write_json(folder / STATE_FILE, state, indent=2)
        marker = folder / POLICY_INCOMPLETE
        if complete:
            marker.unlink(missing_ok=True)
        else:
            marker.write_text(f"service state saved every {self.save_every} steps\n")

    def load(self, path: str) -> None:
        """Restore weights + optimizer from the saved service path, then the step and RNG.

        The training client is created from the saved state directly (no fresh client first).
        A state marked incomplete is refused (see :meth:`save`)."""
        self._check_open()
        file = Path(path) / STATE_FILE
        if not file.is_file():
            raise FileNotFoundError(f"no tinker policy state at {file}")
        state = json.loads(file.read_text())
        if state.get("model") != self.model:
            raise ValueError(
                f"checkpoint is for model {state.get('model')!r}, this policy is {self.model!r}"
            )
        if not state.get("complete", True) or not state.get("tinker_path"):
            raise ValueError(
                f"{file} is an incomplete checkpoint (weights are saved on the service every "
                f"{self.save_every} steps): resume from the last complete step"
            )
        for key, mine in (("lora_rank", self.lora_rank), ("train_unembed", self.train_unembed)):
            if key in state and state[key] != mine:
                raise ValueError(f"checkpoint has {key}={state[key]!r}, this policy {mine!r}")
        restore = getattr(self._service, "create_training_client_from_state_with_optimizer", None)
        if restore is not None:
            self._training = self._create(lambda: restore(state["tinker_path"]), "training client restore")
        else:  # SDKs without it: a fresh client, then its state replaced
            training = self._ensure_training()
            self._result(training.load_state_with_optimizer(state["tinker_path"]),
                         self.setup_timeout_s, "load_state_with_optimizer")
        self._step = int(state["step"])
        self._saves = int(state.get("saves", 0))
        self._tinker_path = state["tinker_path"]
        self._tinker_saves = int(state.get("tinker_saves", self._saves))
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
