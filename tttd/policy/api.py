"""API backend: a frozen policy behind any OpenAI-compatible ``/chat/completions`` endpoint.

For baselines (best-of-N with a fixed model, as the paper's ``eval_BoN`` mode) and local servers
(vLLM, SGLang, llama.cpp, Ollama). Nothing is trained: ``trainable = False`` and
:meth:`ApiPolicy.train_step` raises; the loop skips the update for frozen policies.

Transport is the official ``openai`` SDK (``client.chat.completions.create``; the ``api`` extra),
with the SDK's own retries switched off (``max_retries=0``) so that there is one retry policy,
ours, which also covers malformed answers the SDK accepts. Extra request fields (e.g. vLLM's
``return_tokens_as_token_ids``) go through the SDK's ``extra_body``.

What comes back, and what does not:

- ``text`` and ``stop_reason`` (``finish_reason == "length"`` -> ``"length"``, else ``"stop"``);
- ``logprobs``: per-token sampler log-probs when the server returns them (we ask with
  ``logprobs=true`` and stop asking if the server rejects it), else an empty list;
- ``tokens``: token ids only when the server spells tokens as ``"token_id:<id>"`` (vLLM's
  ``return_tokens_as_token_ids``; pass it via ``extra_body``), else an empty list. Frozen runs
  never train, so they do not need ids;
- ``prompt_tokens``: always an empty list; the prompt's token *count* (``usage.prompt_tokens``)
  goes to :meth:`usage`.

Spend (issue 32): :meth:`usage` adds up the server's ``usage`` fields of every answered request.
A server that omits them gets its tokens counted here, with the model's tokenizer (the
``tokenizer`` option, else the model's own if installed); with none, completion tokens are the
log-probs returned and prompt tokens 4 characters each (an estimate). Which one was used is said
once (:meth:`take_notes`: the loop shows it and keeps it for ``tttd show``), as is every request
feature dropped after a 400/422 (``n``, ``logprobs``, ``chat_template_kwargs``).

Robustness: each request is retried with exponential backoff (``backoff_s * 2**attempt``, or the
server's ``Retry-After``/``Retry-After-Ms`` when larger, capped at 30 s) on HTTP 5xx and 429
(``openai.APIStatusError``), timeouts (``openai.APITimeoutError``), connection errors
(``openai.APIConnectionError``) and malformed responses (bad JSON, missing or empty ``choices``;
the SDK builds its response models without validation, so we check the fields we use). After
``max_retries`` retries an :class:`ApiError` names the endpoint and the last error. Other 4xx
errors are not retried, except that a 400/422 on a request using ``n > 1`` or ``logprobs`` is
retried once without that feature (servers that support neither). At most ``concurrency``
requests are in flight (a thread pool of that size over an ``httpx`` connection pool of that
size). A server that returns fewer than ``n`` choices is topped up with single requests.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx  # imported here so a missing ``api`` extra fails in make_policy, clearly
import openai

from tttd.policy import SamplingParams, TokenUsage, TrainConfig, prompt_seeds, sub_seed
from tttd.types import Message, Sample, TrainDatum

DEFAULT_BASE_URL = "https://api.openai.com/v1"
_MAX_BACKOFF_S = 30.0


class ApiError(RuntimeError):
    """An endpoint kept failing (after retries) or refused a request."""


class _Retryable(Exception):
    """Internal: this attempt failed in a way worth retrying."""

    def __init__(self, message: str, retry_after: float = 0.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _Rejected(Exception):
    """Internal: a non-retryable 4xx answer."""

    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:500]}")
        self.status = status


@dataclass
class _Choice:
    text: str
    finish_reason: str
    tokens: list[int]
    logprobs: list[float]


def _parse_choices(data: Any) -> tuple[list[_Choice], dict[str, int]]:
    """A chat-completions response -> choices and usage; raises ValueError when malformed."""
    if not isinstance(data, dict):
        raise ValueError(f"response is not a JSON object: {str(data)[:200]}")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        raise ValueError(f"response has no choices: {json.dumps(data)[:300]}")
    out = []
    for ch in sorted(choices, key=lambda c: c.get("index", 0) if isinstance(c, dict) else 0):
        if not isinstance(ch, dict) or not isinstance(ch.get("message"), dict):
            raise ValueError(f"choice without a message: {str(ch)[:200]}")
        content = ch["message"].get("content")
        if content is not None and not isinstance(content, str):
            raise ValueError(f"message content is not a string: {str(content)[:200]}")
        tokens: list[int] = []
        logprobs: list[float] = []
        lp = ch.get("logprobs")
        entries = lp.get("content") if isinstance(lp, dict) else None
        if isinstance(entries, list):
            for e in entries:
                if not isinstance(e, dict) or not isinstance(e.get("logprob"), (int, float)):
                    raise ValueError(f"bad logprobs entry: {str(e)[:200]}")
                logprobs.append(float(e["logprob"]))
                tok = e.get("token")
                if isinstance(tok, str) and tok.startswith("token_id:"):
                    try:
                        tokens.append(int(tok[len("token_id:"):]))
                    except ValueError:
                        pass
            if len(tokens) != len(logprobs):
                tokens = []  # ids for some tokens only: report none rather than misaligned ones
        out.append(_Choice(content or "", str(ch.get("finish_reason") or "stop"), tokens, logprobs))
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    counts = {
        k: int(usage[k])
        for k in ("prompt_tokens", "completion_tokens")
        if isinstance(usage.get(k), (int, float))
    }
    return out, counts


class ApiPolicy:
    """A frozen chat model behind an OpenAI-compatible endpoint.

    ``base_url`` defaults to ``OPENAI_BASE_URL`` then the OpenAI API; ``api_key`` to
    ``OPENAI_API_KEY`` then ``"EMPTY"`` (local servers need none). ``mode`` must be ``"chat"``
    (``/chat/completions``; the server applies the chat template). ``logprobs``: ask for
    per-token log-probs. ``extra_body``: extra JSON fields for every request (e.g.
    ``{"return_tokens_as_token_ids": True}`` for vLLM, ``{"top_k": -1}``).
    ``chat_template_kwargs``: sent as the body's ``chat_template_kwargs`` (vLLM, SGLang), e.g.
    ``{"reasoning_effort": "high"}`` for gpt-oss; dropped, like ``n`` and ``logprobs``, after a
    400/422 from a server that does not take the field. Seeds: prompt i is sent with
    ``SamplingParams.seeds[i]`` (else seeds derived from ``seed``; none when both are unset).
    """

    trainable = False

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        concurrency: int = 8,
        max_retries: int = 4,
        timeout_s: float = 120.0,
        backoff_s: float = 0.5,
        mode: str = "chat",
        logprobs: bool = True,
        extra_body: dict[str, Any] | None = None,
        chat_template_kwargs: dict[str, Any] | None = None,
        tokenizer: str | None = None,
    ) -> None:
        if not model:
            raise ValueError("model is required")
        if mode != "chat":
            raise ValueError(f"mode must be 'chat' (the only protocol supported), got {mode!r}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if not (timeout_s > 0):
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        if backoff_s < 0:
            raise ValueError(f"backoff_s must be >= 0, got {backoff_s}")
        self.model = model
        url = base_url or os.environ.get("OPENAI_BASE_URL")
        if not url:  # never fall back to a public service silently
            raise ValueError(
                "the api backend needs an endpoint: --backend-option base_url=http://HOST:PORT/v1 "
                f"(or OPENAI_BASE_URL); for OpenAI's own service pass base_url={DEFAULT_BASE_URL}")
        self.base_url = url.rstrip("/")
        self.endpoint = f"{self.base_url}/chat/completions"
        key = api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self.concurrency = int(concurrency)
        self.max_retries = int(max_retries)
        self.timeout_s = float(timeout_s)
        self.backoff_s = float(backoff_s)
        self.extra_body = dict(extra_body or {})
        if chat_template_kwargs is not None and not isinstance(chat_template_kwargs, dict):
            raise ValueError(f"chat_template_kwargs must be a mapping, got {chat_template_kwargs!r}")
        if chat_template_kwargs:  # vLLM / SGLang read them from the request body
            merged = dict(self.extra_body.get("chat_template_kwargs") or {})
            merged.update(chat_template_kwargs)
            self.extra_body["chat_template_kwargs"] = merged
        self.chat_template_kwargs = dict(self.extra_body.get("chat_template_kwargs") or {})
        self._send_template_kwargs = True  # False once a server refused the field (400/422)
        self._want_logprobs = bool(logprobs)
        self._n_supported = True  # set False when the server rejects or ignores n > 1
        self._usage = TokenUsage()
        self._lock = threading.Lock()
        self._notes: list[str] = []  # said once each (take_notes)
        self._said: set[str] = set()
        self._tokenizer_name = tokenizer
        self._counter: Any = None  # how tokens are counted when the server reports no usage
        self._client = openai.OpenAI(
            base_url=self.base_url,
            api_key=key,
            timeout=self.timeout_s,
            max_retries=0,  # one retry policy: ours (see the module docstring)
            http_client=httpx.Client(
                limits=httpx.Limits(
                    max_connections=self.concurrency, max_keepalive_connections=self.concurrency
                )
            ),
        )
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="tttd-api")
        self._closed = False

    def check_reachable(self, timeout_s: float = 10.0) -> None:
        """Fail fast (ValueError, one line) when nothing answers at ``base_url``: any HTTP
        answer, even an error status, counts as reachable; only connection failures do not."""
        try:
            httpx.get(f"{self.base_url}/models", timeout=min(timeout_s, self.timeout_s))
        except httpx.HTTPError as exc:
            raise ValueError(f"cannot reach {self.base_url}: {type(exc).__name__}: {exc}") from None

    # -- HTTP

    def _body(
        self, messages: list[Message], n: int, params: SamplingParams, seed: int | None = None
    ) -> dict[str, Any]:
        """Keyword arguments for ``chat.completions.create`` (unset features are left out)."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": list(messages),
            "max_tokens": int(params.max_tokens),
            "temperature": float(params.temperature),
        }
        if n > 1:
            body["n"] = n
        if params.stop:
            body["stop"] = list(params.stop)
        if seed is not None:
            body["seed"] = int(seed)
        if self._want_logprobs:
            body["logprobs"] = True
        extra = dict(self.extra_body)
        if not self._send_template_kwargs:
            extra.pop("chat_template_kwargs", None)
        if extra:
            body["extra_body"] = extra
        return body

    def _attempt(self, body: dict[str, Any]) -> tuple[list[_Choice], dict[str, int]]:
        """One request through the SDK; SDK exceptions -> :class:`_Retryable`/:class:`_Rejected`."""
        with self._lock:
            self._usage.requests += 1  # every attempt, answered or not
        try:
            completion = self._client.chat.completions.create(**body)
        except openai.APITimeoutError as exc:  # a subclass of APIConnectionError: test it first
            raise _Retryable(f"timed out after {self.timeout_s} s ({type(exc).__name__})") from exc
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc
            raise _Retryable(f"connection error: {type(cause).__name__}: {cause}") from exc
        except openai.APIStatusError as exc:
            status, text = exc.status_code, _body_text(exc)
            if status == 429 or status >= 500:
                wait = _retry_after(exc.response.headers)
                raise _Retryable(f"HTTP {status}: {text[:300]}", wait) from exc
            raise _Rejected(status, text) from exc
        except openai.APIResponseValidationError as exc:  # strict-validation clients only
            raise _Retryable(f"malformed response: {exc}") from exc
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:  # SDK's .json() on a bad body
            raise _Retryable(f"malformed response: not JSON ({exc})") from exc
        try:
            # The SDK returns a model built without validation, or the raw text when the body
            # is not labelled JSON; _parse_choices checks both.
            data = completion.to_dict() if isinstance(completion, openai.BaseModel) else completion
            return _parse_choices(data)
        except ValueError as exc:
            raise _Retryable(f"malformed response: {exc}") from exc

    def _post(self, body: dict[str, Any]) -> tuple[list[_Choice], dict[str, int]]:
        """One logical request with retries."""
        last: Exception | None = None
        for attempt in range(self.max_retries + 1):
            if self._closed:
                raise ApiError("the ApiPolicy is closed")
            try:
                return self._attempt(body)
            except _Rejected as exc:
                raise ApiError(f"{self.endpoint} rejected the request: {exc}") from exc
            except _Retryable as exc:
                last = exc
                if attempt == self.max_retries:
                    break
                delay = self.backoff_s * (2**attempt)
                delay = max(delay, exc.retry_after)
                time.sleep(min(delay, _MAX_BACKOFF_S))
        raise ApiError(
            f"{self.endpoint} failed after {self.max_retries + 1} attempts; last error: {last}"
        )

    def _complete(
        self, messages: list[Message], n: int, params: SamplingParams, seed: int | None = None
    ) -> list[_Choice]:
        """Up to ``n`` choices for one prompt; falls back when ``n``/``logprobs`` are refused."""
        while True:
            want_n = n if self._n_supported else 1
            try:
                choices, counts = self._post(self._body(messages, want_n, params, seed))
            except ApiError as exc:
                cause = exc.__cause__
                rejected = isinstance(cause, _Rejected) and cause.status in (400, 422)
                if rejected and want_n > 1:
                    self._n_supported = False
                    self._note(f"n (HTTP {cause.status}): one request per sample from now on")
                    continue
                if rejected and self._want_logprobs:
                    self._want_logprobs = False
                    self._note(f"logprobs (HTTP {cause.status}): samples carry no log-probs from now on")
                    continue
                if rejected and self._send_template_kwargs and "chat_template_kwargs" in self.extra_body:
                    self._send_template_kwargs = False  # hosted APIs refuse the field: the template's defaults
                    self._note(f"chat_template_kwargs {self.chat_template_kwargs} (HTTP {cause.status}): "
                               "the chat template's defaults from now on")
                    continue
                raise
            if want_n > 1 and len(choices) < want_n:
                self._n_supported = False  # the server ignores n: top up with single requests
            if "prompt_tokens" not in counts or "completion_tokens" not in counts:
                counts = {**self._count_tokens(messages, choices), **counts}
            with self._lock:
                self._usage.prompt_tokens += counts["prompt_tokens"]
                self._usage.sampled_tokens += counts["completion_tokens"]
            return choices[:want_n]

    def _note(self, what: str) -> None:
        """Say once that a request feature was dropped (concurrent requests may all be refused)."""
        with self._lock:
            key = what.split(" ", 1)[0]
            if key not in self._said:
                self._said.add(key)
                self._notes.append(f"api backend: {self.endpoint} refused {what}")

    def take_notes(self) -> list[str]:
        """Lines said once: request features dropped, how tokens are counted (the loop shows
        them as events and keeps them in the run's state for ``tttd show``)."""
        with self._lock:
            got, self._notes = self._notes, []
        return got

    def _count_tokens(self, messages: list[Message], choices: list[_Choice]) -> dict[str, int]:
        """Token counts of one answered request whose server reported no ``usage``."""
        with self._lock:
            if self._counter is None:
                self._counter = _load_counter(self._tokenizer_name or self.model)
                how = ("with the tokenizer " + (self._tokenizer_name or self.model) if self._counter
                       else "as completion log-probs and 4 prompt characters a token (an estimate; "
                            "pass --backend-option tokenizer=PATH to count them)")
                self._notes.append(f"api backend: {self.endpoint} reports no token usage; tokens are counted {how}")
        if self._counter:
            prompt = self._counter([m.get("content") or "" for m in messages])
            return {"prompt_tokens": prompt, "completion_tokens": self._counter([c.text for c in choices])}
        chars = sum(len(str(m.get("content") or "")) for m in messages)
        return {"prompt_tokens": math.ceil(chars / 4),
                "completion_tokens": sum(len(c.logprobs) or math.ceil(len(c.text) / 4) for c in choices)}

    # -- Policy protocol

    def sample(
        self, prompts: list[list[Message]], n: int, params: SamplingParams
    ) -> list[list[Sample]]:
        """``n`` completions per prompt, at most ``concurrency`` requests in flight."""
        if self._closed:
            raise ApiError("the ApiPolicy is closed")
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if params.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {params.max_tokens}")
        if not (params.temperature >= 0 and math.isfinite(params.temperature)):
            raise ValueError(f"temperature must be a finite number >= 0, got {params.temperature}")
        for p in prompts:
            if not p or not all(isinstance(m, dict) and "role" in m and "content" in m for m in p):
                raise ValueError("each prompt must be a non-empty list of {role, content} messages")

        results: list[list[_Choice]] = [[] for _ in prompts]
        # Prompt i's first request uses seeds[i]; its r-th request sub_seed(seeds[i], r), so the
        # single requests of a top-up never repeat a text. No seed given: none is sent.
        seeded = params.seeds is not None or params.seed is not None
        seeds = prompt_seeds(params, len(prompts), 0) if seeded else [None] * len(prompts)
        sent = [0] * len(prompts)

        def request_seed(i: int) -> int | None:
            sent[i] += 1
            if seeds[i] is None or sent[i] == 1:
                return seeds[i]
            return sub_seed(seeds[i], sent[i] - 1)

        per_request = n if self._n_supported else 1
        jobs = [(i, per_request) for i in range(len(prompts)) for _ in range(n // per_request)]
        while jobs:
            futures = [
                (i, self._pool.submit(self._complete, prompts[i], k, params, request_seed(i)))
                for i, k in jobs
            ]
            for i, fut in futures:
                results[i].extend(fut.result())
            # Prompts still short (the server ignored n): top up with single requests.
            jobs = [(i, 1) for i in range(len(prompts)) for _ in range(n - len(results[i]))]
        return [
            [
                Sample(
                    prompt_tokens=[],
                    tokens=c.tokens,
                    logprobs=c.logprobs,
                    text=c.text,
                    stop_reason="length" if c.finish_reason == "length" else "stop",
                )
                for c in group[:n]
            ]
            for group in results
        ]

    def train_step(self, batch: list[TrainDatum], config: TrainConfig) -> dict[str, float]:
        raise NotImplementedError(
            "the api backend is frozen (trainable=False): it cannot train; use the 'local' or "
            "'tinker' backend to train"
        )

    def save(self, path: str) -> None:
        """Record the endpoint and usage (there are no weights to save)."""
        from pathlib import Path

        from tttd.atomic import atomic_write_json

        atomic_write_json(Path(path) / "api_policy.json", {"backend": "api", "model": self.model,
                                                           "base_url": self.base_url,
                                                           "usage": self._usage.to_dict()}, indent=2)

    def load(self, path: str) -> None:
        """Restore usage counters (frozen: nothing else to restore)."""
        from pathlib import Path

        file = Path(path) / "api_policy.json"
        if file.is_file():
            data = json.loads(file.read_text())
            self._usage = TokenUsage(**data.get("usage", {}))

    def usage(self) -> TokenUsage:
        with self._lock:
            return TokenUsage(**self._usage.to_dict())

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)
        self._client.close()


def _load_counter(name: str) -> Any:
    """``texts -> token count`` with a tokenizer installed on this machine, or False (none)."""
    try:
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(name, local_files_only=True)
    except Exception:  # noqa: BLE001 - not installed, not a tokenizer: the estimate is used
        return False
    return lambda texts: sum(len(tok.encode(t, add_special_tokens=False)) for t in texts)


def _body_text(exc: openai.APIStatusError) -> str:
    try:
        return exc.response.text
    except Exception:  # a streamed or unread body: fall back to the SDK's message
        return str(exc)


def _retry_after(headers: Any) -> float:
    """Seconds from ``Retry-After-Ms`` or ``Retry-After`` (numeric forms); 0 when absent/bad."""
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        value = headers.get(name) if headers is not None else None
        try:
            v = float(value) * scale if value is not None else 0.0
        except ValueError:
            continue
        if math.isfinite(v) and v > 0:
            return v
    return 0.0
