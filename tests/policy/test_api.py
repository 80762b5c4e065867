"""Tests for the frozen API backend against a real local HTTP server (tests/policy/openai_server.py).

Fast tests use a deterministic fake generator; one slow test serves the tiny model through the
OpenAI protocol with LocalPolicy.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("openai")  # the api extra (the SDK brings its own HTTP stack)

from tttd.policy import SamplingParams, TrainConfig, make_policy  # noqa: E402
from tttd.policy.api import ApiError, ApiPolicy  # noqa: E402
from tttd.types import TrainDatum  # noqa: E402


def _load_server_module():
    # Loaded by path so it works whether or not tests/policy is a package.
    name = "tttd_tests_openai_server"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("openai_server.py"))
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


srv_mod = _load_server_module()
USER = [{"role": "user", "content": "one two three"}]


@pytest.fixture
def server():
    with srv_mod.OpenAIServer(srv_mod.echo_generator()) as s:
        yield s


def _policy(server, **kw):
    kw.setdefault("backoff_s", 0.01)
    return ApiPolicy("tiny", base_url=server.base_url, api_key="sk-test", **kw)


def test_sample_basic(server):
    pol = _policy(server)
    try:
        out = pol.sample([USER, [{"role": "user", "content": "x y"}]], 3, SamplingParams(max_tokens=10))
    finally:
        pol.close()
    assert [len(g) for g in out] == [3, 3]
    assert [s.text for s in out[0]] == ["one two three #0", "one two three #1", "one two three #2"]
    s = out[0][0]
    assert s.stop_reason == "stop"
    assert s.logprobs == pytest.approx([-0.1, -0.2, -0.3, -0.4])
    assert s.tokens == [] and s.prompt_tokens == []  # no ids unless the server spells them
    # the two requests run concurrently, so find the first prompt's by its messages
    body = next(b for b in server.bodies if b["messages"] == USER)
    assert body["n"] == 3 and body["logprobs"] is True and body["max_tokens"] == 10
    assert body["model"] == "tiny"
    assert len(server.bodies) == 2  # one request per prompt with n


def test_length_stop_seed_and_token_ids(server):
    pol = _policy(server, extra_body={"return_tokens_as_token_ids": True})
    try:
        out = pol.sample([USER], 1, SamplingParams(max_tokens=2, stop=["END"], seed=7, temperature=0.3))
    finally:
        pol.close()
    s = out[0][0]
    assert s.stop_reason == "length" and s.text == "one two"
    assert s.tokens == [100, 101] and len(s.logprobs) == 2
    body = server.bodies[0]
    assert body["stop"] == ["END"] and body["seed"] == 7 and "n" not in body
    assert body["temperature"] == 0.3 and body["max_tokens"] == 2


def test_token_accounting(server):
    pol = _policy(server)
    try:
        pol.sample([USER, USER], 2, SamplingParams(max_tokens=3))
        u = pol.usage()
    finally:
        pol.close()
    # prompt: 3 words per request, 2 requests; completion: 3 tokens x 2 choices x 2 requests
    assert (u.prompt_tokens, u.sampled_tokens, u.requests, u.trained_tokens) == (6, 12, 2, 0)


def test_server_error_is_retried(server):
    server.faults = ["500", "500"]
    pol = _policy(server, max_retries=3)
    try:
        out = pol.sample([USER], 2, SamplingParams())
    finally:
        pol.close()
    assert len(out[0]) == 2 and server.stats["requests"] == 3
    assert pol.usage().requests == 3


def test_429_is_retried(server):
    server.faults = ["429"]
    pol = _policy(server, max_retries=1)
    try:
        assert len(pol.sample([USER], 1, SamplingParams())[0]) == 1
    finally:
        pol.close()


def test_persistent_server_error_gives_clear_error(server):
    server.faults = ["500"] * 10
    pol = _policy(server, max_retries=2)
    try:
        with pytest.raises(ApiError) as err:
            pol.sample([USER], 1, SamplingParams())
    finally:
        pol.close()
    msg = str(err.value)
    assert server.base_url in msg and "3 attempts" in msg and "HTTP 500" in msg
    assert server.stats["requests"] == 3


def test_timeout_is_retried_then_clear_error(server):
    server.faults = ["sleep:1.0", None]
    pol = _policy(server, timeout_s=0.3, max_retries=1)
    try:
        out = pol.sample([USER], 1, SamplingParams())  # first attempt times out, second answers
        assert len(out[0]) == 1
        server.faults = ["sleep:1.0", "sleep:1.0"]
        t0 = time.monotonic()
        with pytest.raises(ApiError, match="timed out"):
            pol.sample([USER], 1, SamplingParams())
        assert time.monotonic() - t0 < 3.0
    finally:
        pol.close()


@pytest.mark.parametrize("fault, what", [("badjson", "malformed"), ("nochoices", "no choices")])
def test_malformed_response(server, fault, what):
    server.faults = [fault]
    pol = _policy(server, max_retries=1)
    try:
        assert len(pol.sample([USER], 1, SamplingParams())[0]) == 1  # retried, then fine
        server.faults = [fault, fault]
        with pytest.raises(ApiError, match=what):
            pol.sample([USER], 1, SamplingParams())
    finally:
        pol.close()


def test_client_error_is_not_retried(server):
    server.faults = ["400"]
    pol = _policy(server, max_retries=3, logprobs=False)
    try:
        with pytest.raises(ApiError, match="rejected"):
            pol.sample([USER], 1, SamplingParams())
    finally:
        pol.close()
    assert server.stats["requests"] == 1


def test_connection_refused_gives_clear_error():
    import socket

    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pol = ApiPolicy("m", base_url=f"http://127.0.0.1:{port}/v1", max_retries=1, backoff_s=0.01)
    try:
        with pytest.raises(ApiError, match="connection error"):
            pol.sample([USER], 1, SamplingParams())
    finally:
        pol.close()


def test_concurrency_limit_respected():
    with srv_mod.OpenAIServer(srv_mod.echo_generator(delay_s=0.15)) as server:
        pol = _policy(server, concurrency=3)
        try:
            out = pol.sample([USER] * 10, 1, SamplingParams())
        finally:
            pol.close()
        assert len(out) == 10
        assert server.stats["requests"] == 10
        assert server.stats["max_in_flight"] == 3  # reached, never exceeded


def test_server_without_n_support():
    with srv_mod.OpenAIServer(srv_mod.echo_generator(), supports_n=False) as server:
        pol = _policy(server)
        try:
            out = pol.sample([USER, USER], 3, SamplingParams())
            assert [len(g) for g in out] == [3, 3]
            first = server.stats["requests"]
            pol.sample([USER], 2, SamplingParams())
        finally:
            pol.close()
        # The 400 for n > 1 is learned once; later requests go straight to n = 1.
        assert server.stats["requests"] - first == 2
        assert all("n" not in b for b in server.bodies[-2:])


def test_server_ignoring_n():
    with srv_mod.OpenAIServer(srv_mod.echo_generator(), ignores_n=True) as server:
        pol = _policy(server)
        try:
            out = pol.sample([USER], 4, SamplingParams())
        finally:
            pol.close()
        assert len(out[0]) == 4 and server.stats["requests"] == 4


def test_server_without_logprobs():
    with srv_mod.OpenAIServer(srv_mod.echo_generator(), supports_logprobs=False) as server:
        pol = _policy(server)
        try:
            out = pol.sample([USER], 2, SamplingParams())
        finally:
            pol.close()
        assert len(out[0]) == 2 and out[0][0].logprobs == []
        assert "logprobs" not in server.bodies[-1]


def test_frozen_and_validation(server, tmp_path, monkeypatch):
    pol = make_policy("api", model="tiny", base_url=server.base_url)
    try:
        assert pol.trainable is False
        with pytest.raises(NotImplementedError, match="frozen"):
            pol.train_step([TrainDatum([1], [2], [-1.0], [1.0])], TrainConfig())
        with pytest.raises(ValueError, match="n must be"):
            pol.sample([USER], 0, SamplingParams())
        with pytest.raises(ValueError, match="messages"):
            pol.sample([[]], 1, SamplingParams())
        pol.sample([USER], 1, SamplingParams())
        pol.save(str(tmp_path))
        pol2 = ApiPolicy("tiny", base_url=server.base_url)
        pol2.load(str(tmp_path))
        assert pol2.usage() == pol.usage()
        pol2.close()
    finally:
        pol.close()
    with pytest.raises(ValueError, match="mode"):
        ApiPolicy("m", mode="completions")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://example.invalid/v9/")
    assert ApiPolicy("m").endpoint == "http://example.invalid/v9/chat/completions"


# ----------------------------------------------------------------------------- tiny model, end to end


@pytest.mark.slow
def test_tiny_model_end_to_end(tiny_model_dir):
    local = pytest.importorskip("tttd.policy.local")
    # The session's shared tiny model (tests/conftest.py).
    model_dir = tiny_model_dir
    served = local.LocalPolicy(str(model_dir))
    with srv_mod.OpenAIServer(srv_mod.local_generator(served)) as server:
        pol = _policy(server, extra_body={"return_tokens_as_token_ids": True}, concurrency=2)
        try:
            out = pol.sample(
                [USER, [{"role": "user", "content": "def f():"}]], 2,
                SamplingParams(max_tokens=12, temperature=1.0),
            )
            u = pol.usage()
        finally:
            pol.close()
    assert [len(g) for g in out] == [2, 2]
    tok = served.tokenizer
    for group in out:
        for s in group:
            assert 1 <= len(s.tokens) <= 12 and len(s.logprobs) == len(s.tokens)
            assert all(lp <= 0.0 for lp in s.logprobs)
            assert s.stop_reason in ("stop", "length")
            # ids came through the protocol intact: they decode to the served text
            ids = s.tokens[:-1] if s.tokens[-1] == tok.eos_token_id else s.tokens
            assert tok.decode(ids, skip_special_tokens=False).startswith(s.text)
    assert u.sampled_tokens == sum(len(s.tokens) for g in out for s in g)
    # the server rendered each prompt with the model's chat template and counted its tokens
    prompts = [USER, [{"role": "user", "content": "def f():"}]]
    assert u.prompt_tokens == sum(len(served.render(p)) for p in prompts)
    assert u.requests == 2


def test_retry_after_header_parsing():
    import httpx

    from tttd.policy.api import _retry_after

    assert _retry_after(httpx.Headers({"retry-after": "2"})) == 2.0
    assert _retry_after(httpx.Headers({"retry-after-ms": "250", "retry-after": "9"})) == 0.25
    assert _retry_after(httpx.Headers({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0
    assert _retry_after(httpx.Headers({"retry-after": "-1"})) == 0.0
    assert _retry_after(httpx.Headers({})) == 0.0


def test_seeds_per_prompt_and_distinct_seeds_in_a_top_up():
    """Issue 15: identical prompts get their group's seed; when the server ignores n, the single
    requests of the top-up carry distinct seeds (the same seed would return the same text)."""
    with srv_mod.OpenAIServer(srv_mod.echo_generator(), ignores_n=True) as server:
        pol = _policy(server)
        try:
            pol.sample([USER, USER], 3, SamplingParams(seed=5, seeds=[41, 42]))
        finally:
            pol.close()
        seeds = [b.get("seed") for b in server.bodies]
        assert len(seeds) == 6 and len(set(seeds)) == 6
        assert {41, 42} <= set(seeds)


def test_chat_template_kwargs_go_in_the_body(server):
    pol = _policy(server, chat_template_kwargs={"reasoning_effort": "high"}, extra_body={"top_k": -1})
    try:
        pol.sample([USER], 1, SamplingParams(max_tokens=4))
    finally:
        pol.close()
    body = server.bodies[-1]
    assert body["chat_template_kwargs"] == {"reasoning_effort": "high"} and body["top_k"] == -1


def test_chat_template_kwargs_dropped_when_refused(server):
    """A hosted API refuses the unknown field (400): retried once without it, then never sent."""
    server.faults = ["400"]
    pol = _policy(server, chat_template_kwargs={"reasoning_effort": "high"}, logprobs=False)
    try:
        pol.sample([USER], 1, SamplingParams(max_tokens=4))
        pol.sample([USER], 1, SamplingParams(max_tokens=4))
    finally:
        pol.close()
    assert "chat_template_kwargs" in server.bodies[0]
    assert all("chat_template_kwargs" not in b for b in server.bodies[1:]) and len(server.bodies) == 3
