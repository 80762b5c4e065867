"""A tiny OpenAI-compatible ``/v1/chat/completions`` server for tests (standard library only).

The model is pluggable: ``generate(messages, n, max_tokens, temperature, stop)`` returns a list
of :class:`Completion`. :func:`echo_generator` is a deterministic fake; :func:`local_generator`
serves a real model through ``tttd.policy.local.LocalPolicy`` (the tiny model in tests).

Faults for robustness tests: ``server.faults`` is a list consumed one per request, each one of
``"500"``, ``"429"``, ``"sleep:<seconds>"`` (then answer normally), ``"badjson"``,
``"nochoices"``, ``"400"``, or ``None`` (answer normally). ``supports_n=False`` answers ``n > 1``
with HTTP 400; ``ignores_n=True`` silently returns one choice; ``supports_logprobs=False``
answers ``logprobs: true`` with HTTP 400. ``reports_usage=False`` leaves the ``usage`` field out
(servers that do). ``stats`` counts requests, the peak number in flight and the token usage
reported (``prompt_tokens``, ``completion_tokens``); ``bodies`` keeps every request's JSON.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, NamedTuple


class Completion(NamedTuple):
    text: str
    finish_reason: str  # "stop" | "length"
    tokens: list[int]
    logprobs: list[float]
    prompt_tokens: int = 0  # the prompt's token count (0: count words instead)


GenerateFn = Callable[[list[dict], int, int, float, list[str]], list[Completion]]


def echo_generator(delay_s: float = 0.0) -> GenerateFn:
    """Deterministic fake: completion i echoes the last user message's words (+ ``#i``),
    truncated to ``max_tokens`` words (finish_reason ``length``) or cut at a stop string."""

    def generate(messages, n, max_tokens, temperature, stop):
        if delay_s:
            time.sleep(delay_s)
        words = str(messages[-1]["content"]).split() or ["empty"]
        out = []
        for i in range(n):
            toks = words + [f"#{i}"]
            text = " ".join(toks[:max_tokens])
            reason = "length" if len(toks) > max_tokens else "stop"
            for s in stop:
                if s and s in text:
                    text, reason = text[: text.index(s)], "stop"
            k = min(len(toks), max_tokens)
            ids = [100 + i + j for j in range(k)]
            out.append(Completion(text, reason, ids, [-0.1 * (j + 1) for j in range(k)]))
        return out

    return generate


def local_generator(policy: Any) -> GenerateFn:
    """Serve a ``LocalPolicy`` (real chat template, real sampling and log-probs)."""
    from tttd.policy import SamplingParams

    lock = threading.Lock()  # one generate at a time on a CPU model

    def generate(messages, n, max_tokens, temperature, stop):
        with lock:
            groups = policy.sample(
                [messages], n, SamplingParams(max_tokens=max_tokens, temperature=temperature,
                                              stop=list(stop))
            )
        return [
            Completion(s.text, s.stop_reason, list(s.tokens), list(s.logprobs), len(s.prompt_tokens))
            for s in groups[0]
        ]

    return generate


class OpenAIServer:
    """``with OpenAIServer(gen) as srv: srv.base_url`` -> ``http://127.0.0.1:<port>/v1``."""

    def __init__(
        self,
        generate: GenerateFn,
        model: str = "tiny",
        supports_n: bool = True,
        ignores_n: bool = False,
        supports_logprobs: bool = True,
        token_str: Callable[[int], str] | None = None,
        reports_usage: bool = True,
    ) -> None:
        self.reports_usage = reports_usage
        self.generate = generate
        self.model = model
        self.supports_n = supports_n
        self.ignores_n = ignores_n
        self.supports_logprobs = supports_logprobs
        self.token_str = token_str or (lambda i: f"<{i}>")
        self.faults: list[str | None] = []
        self.bodies: list[dict] = []
        self.stats = {"requests": 0, "in_flight": 0, "max_in_flight": 0, "prompt_tokens": 0, "completion_tokens": 0}
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "server not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> "OpenAIServer":
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802
                with server._lock:
                    server.stats["requests"] += 1
                    server.stats["in_flight"] += 1
                    server.stats["max_in_flight"] = max(
                        server.stats["max_in_flight"], server.stats["in_flight"]
                    )
                    fault = server.faults.pop(0) if server.faults else None
                try:
                    server._handle(self, fault)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)
                finally:
                    with server._lock:
                        server.stats["in_flight"] -= 1

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> "OpenAIServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- protocol

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, payload: bytes, ctype: str = "application/json") -> None:
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        h.wfile.write(payload)

    def _error(self, h: BaseHTTPRequestHandler, status: int, message: str) -> None:
        self._send(h, status, json.dumps({"error": {"message": message, "code": status}}).encode())

    def _handle(self, h: BaseHTTPRequestHandler, fault: str | None) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length)
        if h.path.rstrip("/") != "/v1/chat/completions":
            return self._error(h, 404, f"no route {h.path}")
        try:
            body = json.loads(raw)
        except ValueError:
            return self._error(h, 400, "request body is not JSON")
        with self._lock:
            self.bodies.append(body)
        if fault is not None:
            if fault in ("500", "429", "400"):
                return self._error(h, int(fault), f"injected {fault}")
            if fault.startswith("sleep:"):
                time.sleep(float(fault.split(":", 1)[1]))
            elif fault == "badjson":
                return self._send(h, 200, b'{"choices": [')
            elif fault == "nochoices":
                return self._send(h, 200, json.dumps({"id": "x", "object": "chat.completion"}).encode())
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            return self._error(h, 400, "messages must be a non-empty list")
        n = int(body.get("n", 1))
        if n > 1 and not self.supports_n:
            return self._error(h, 400, "n > 1 is not supported")
        want_lp = bool(body.get("logprobs"))
        if want_lp and not self.supports_logprobs:
            return self._error(h, 400, "logprobs are not supported")
        stop = body.get("stop") or []
        stop = [stop] if isinstance(stop, str) else list(stop)
        completions = self.generate(
            messages, 1 if self.ignores_n else n, int(body.get("max_tokens") or 16),
            float(body.get("temperature", 1.0)), stop,
        )
        as_ids = bool(body.get("return_tokens_as_token_ids"))
        choices = []
        for i, c in enumerate(completions):
            choice: dict[str, Any] = {
                "index": i,
                "message": {"role": "assistant", "content": c.text},
                "finish_reason": c.finish_reason,
            }
            if want_lp:
                choice["logprobs"] = {
                    "content": [
                        {"token": f"token_id:{t}" if as_ids else self.token_str(t),
                         "logprob": lp, "top_logprobs": []}
                        for t, lp in zip(c.tokens, c.logprobs)
                    ]
                }
            else:
                choice["logprobs"] = None
            choices.append(choice)
        prompt_tokens = completions[0].prompt_tokens if completions else 0
        if not prompt_tokens:
            prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in messages)
        completion_tokens = sum(len(c.tokens) for c in completions)
        with self._lock:
            self.stats["prompt_tokens"] += prompt_tokens
            self.stats["completion_tokens"] += completion_tokens
        payload = {
            "id": f"chatcmpl-{self.stats['requests']}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.model,
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": sum(len(c.tokens) for c in completions),
                "total_tokens": prompt_tokens + sum(len(c.tokens) for c in completions),
            },
        }
        if not self.reports_usage:
            del payload["usage"]
        self._send(h, 200, json.dumps(payload).encode())
