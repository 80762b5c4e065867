"""Flaky services (issue 24), offline: the tinker backend against a stand-in service that fails
with 429/5xx, timeouts and dropped connections. Sampling is repeated (bounded, same seed, same
result), training never is, and a step that cannot complete ends in one ServiceError line. The
live version (SkyRL's server behind a fault-injecting proxy) is test_tinker_skyrl_faults.py."""

from __future__ import annotations

import pytest

pytest.importorskip("tinker")

from tests.policy.test_tinker import FakeService, FakeTraining, tokenizer  # noqa: E402,F401
from tttd.policy import SamplingParams, TrainConfig  # noqa: E402
from tttd.policy import tinker as tp  # noqa: E402
from tttd.policy.service_retry import ServiceError, retryable, with_retries  # noqa: E402
from tttd.types import TrainDatum  # noqa: E402


class HTTPError(Exception):
    def __init__(self, status):
        super().__init__(f"HTTP {status}")
        self.status_code = status


class APIConnectionError(Exception):
    pass


def test_what_is_retryable():
    assert all(retryable(HTTPError(s)) for s in (408, 429, 500, 502, 503))
    assert not any(retryable(HTTPError(s)) for s in (400, 401, 404, 422))
    assert retryable(TimeoutError()) and retryable(ConnectionResetError()) and retryable(APIConnectionError())
    assert not retryable(ValueError("bad datum"))


def test_with_retries_is_bounded():
    calls, slept = [], []

    def flaky():
        calls.append(1)
        raise HTTPError(503)

    with pytest.raises(ServiceError, match=r"kept failing x \(3 tries, last: HTTPError \(HTTP 503\)"):
        with_retries(flaky, "x", 2, 0.5, "http://svc", sleep=slept.append)
    assert len(calls) == 3 and slept == [0.5, 1.0]
    with pytest.raises(ServiceError, match="refused"):
        with_retries(lambda: (_ for _ in ()).throw(HTTPError(400)), "x", 5, 0.0, "http://svc")


class FlakyService(FakeService):
    """Every sampler's first ``fail`` sample calls raise (429, 503, a timeout, a dropped connection)."""

    def __init__(self, tokenizer, fail=0, train_fail=False):
        super().__init__(tokenizer)
        self.errors = [HTTPError(429), HTTPError(503), TimeoutError("read timed out"),
                       APIConnectionError("connection dropped")][:fail] if fail <= 4 else [HTTPError(503)] * fail
        self.train_fail = train_fail

    def create_lora_training_client(self, base_model, rank, seed, **kwargs):
        fut = super().create_lora_training_client(base_model, rank, seed, **kwargs)
        training = fut.value
        svc = self
        orig_client = training.save_weights_and_get_sampling_client

        def client():
            sampler = orig_client()
            inner = sampler.value.sample

            def sample(*a, **k):
                if svc.errors:
                    raise svc.errors.pop(0)
                return inner(*a, **k)

            sampler.value.sample = sample
            return sampler

        training.save_weights_and_get_sampling_client = client
        if self.train_fail:
            def optim_step(params):
                self.calls.append(("optim_step", params))
                raise HTTPError(503)

            training.optim_step = optim_step
        return fut


def _policy(tok, **kw):
    svc = FlakyService(tok, **kw)
    return tp.TinkerPolicy("fake/model", lora_rank=8, seed=1, service_client=svc, retry_backoff_s=0.0), svc


PROMPTS = [[{"role": "user", "content": "hello world"}], [{"role": "user", "content": "def main"}]]


def test_sampling_survives_429_5xx_timeouts_and_drops_with_the_same_result(tokenizer):
    clean, _ = _policy(tokenizer)
    want = clean.sample(PROMPTS, 2, SamplingParams(max_tokens=8, seeds=[5, 6]))
    pol, svc = _policy(tokenizer, fail=4)
    got = pol.sample(PROMPTS, 2, SamplingParams(max_tokens=8, seeds=[5, 6]))
    assert [[s.tokens for s in g] for g in got] == [[s.tokens for s in g] for g in want]
    assert svc.errors == []
    # the usage counts each prompt once: a repeat is not a second sample
    assert pol.usage().prompt_tokens == clean.usage().prompt_tokens


def test_sampling_that_keeps_failing_stops_with_one_service_error(tokenizer):
    pol, svc = _policy(tokenizer, fail=50)
    with pytest.raises(ServiceError, match=r"kept failing a sample request \(5 tries"):
        pol.sample(PROMPTS, 2, SamplingParams(max_tokens=8, seeds=[5, 6]))


def test_a_failed_training_step_is_not_repeated(tokenizer):
    pol, svc = _policy(tokenizer, train_fail=True)
    g = pol.sample(PROMPTS[:1], 2, SamplingParams(max_tokens=8, seeds=[5]))[0]
    batch = [TrainDatum(s.prompt_tokens, s.tokens, s.logprobs, [1.0] * len(s.tokens)) for s in g]
    with pytest.raises(ServiceError, match="during a training step.*not repeated"):
        pol.train_step(batch, TrainConfig(learning_rate=1e-3))
    assert [c[0] for c in svc.calls].count("forward_backward") == 1
    assert [c[0] for c in svc.calls].count("optim_step") == 1
    assert pol._step == 0  # nothing counted as trained


def test_a_service_down_mid_run_stops_in_one_line_and_resumes_exactly(tmp_path):
    """Through the real CLI: a service that stays down during step 2 stops the run (exit 1, one
    line); resumed when it is back, the run equals one that met no fault (ledger included)."""
    from tests.fault_driver import assert_same_run, cli, metrics, one_line, run_args

    ref, out = tmp_path / "ref", tmp_path / "run"
    assert cli(*run_args(ref, 4)).returncode == 0
    died = cli(*run_args(out, 4), TTTD_TEST_SERVICE_DOWN_AT="3")
    assert died.returncode == 1, died.stderr
    line = one_line(died.stderr)
    assert line.startswith("tttd: the service at http://127.0.0.1:9 kept failing a sample request (3 tries")
    assert [m["step"] for m in metrics(out)] == [0, 1]
    assert cli("resume", str(out), "--quiet", "--json").returncode == 0
    assert_same_run(out, ref)
