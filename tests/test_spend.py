"""Issue 32: spend is what the backends themselves counted (the change in ``policy.usage()`` each
step), not what the loop guesses from the sampled text; ``--max-usd`` stops an api run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fakes import FakeDigitPolicy
from tttd.cli import main
from tttd.config import resolve_config
from tttd.loop import Discovery
from tttd.rundir import read_jsonl


def _cfg(**kw):
    values = dict(task="demo", steps=2, groups=2, group_size=4, learning_rate=0.5, workers=1, seed=1)
    values.update(kw)
    return resolve_config(flag_values=values)


class ExtraRequests(FakeDigitPolicy):
    """Requests the loop never sees, as the tinker backend's forced answers and KL reference."""

    def sample(self, prompts, n, params):
        out = super().sample(prompts, n, params)
        self._usage.prompt_tokens += 1000  # a second phase: the prompt and thinking sent again
        self._usage.sampled_tokens += 7
        self._usage.requests += 1
        return out

    def train_step(self, batch, config):
        got = super().train_step(batch, config)
        self._usage.prompt_tokens += 500  # base-model log-probs of every sequence
        self._usage.requests += len(batch)
        return got


def test_the_ledger_is_the_backends_usage(tmp_path):
    pol = ExtraRequests()
    run = Discovery(_cfg(), tmp_path / "r", policy=pol)
    run.start()
    run.run()
    used, led = pol.usage(), run.ledger
    assert (led.prompt_tokens, led.sampled_tokens, led.trained_tokens, led.requests) == (
        used.prompt_tokens, used.sampled_tokens, used.trained_tokens, used.requests)
    rows = list(read_jsonl(tmp_path / "r" / "rollouts.jsonl"))
    completions = sum(r["tokens"] for r in rows)
    assert led.sampled_tokens == completions + 2 * 7  # the extra requests' tokens are paid for
    assert led.prompt_tokens >= 2 * 1000
    # trained tokens are whole trained sequences (prompt and completion), as the backend counts
    assert led.trained_tokens > completions
    metrics = list(read_jsonl(tmp_path / "r" / "metrics.jsonl"))
    assert sum(m["requests"] for m in metrics) == used.requests == metrics[-1]["spend"]["requests"]


def _config_with_price(tmp_path, model):
    cfg = tmp_path / "prices.toml"
    cfg.write_text(f'[prices."api:{model}"]\nprompt = 1000000.0\nsampled = 1000000.0\n')  # $1 a token
    return cfg


@pytest.mark.parametrize("reports_usage", [True, False])
def test_max_usd_stops_an_api_run(tmp_path, capsys, reports_usage):
    """Against a local OpenAI-compatible stand-in: with a server that reports usage the ledger is
    exactly its counts; with one that does not, tokens are counted here and ``tttd show`` says
    how. Either way a $1e-9 cap stops the run after its first step (before issue 32 an api run
    recorded $0.00 and ran every step)."""
    pytest.importorskip("openai")
    from tests.policy.openai_server import OpenAIServer, echo_generator

    out = tmp_path / "r"
    with OpenAIServer(echo_generator(), model="stand-in", reports_usage=reports_usage) as server:
        rc = main(["run", "demo", "--backend", "api", "--no-train", "--model", "stand-in",
                   "--backend-option", f"base_url={server.base_url}", "--config",
                   str(_config_with_price(tmp_path, "stand-in")), "--max-usd", "1e-9", "--steps", "3",
                   "--groups", "2", "--group-size", "2", "--max-tokens", "16", "--out", str(out), "--quiet"])
        stats = dict(server.stats)
    assert rc == 0, capsys.readouterr().err
    loop = json.loads((out / "checkpoint" / "step-000000" / "loop.json").read_text())
    assert [m["step"] for m in read_jsonl(out / "metrics.jsonl")] == [0]  # stopped by the cap
    led = loop["ledger"]
    assert led["usd"] > 1e-9 and led["requests"] == stats["requests"]
    if reports_usage:
        assert (led["prompt_tokens"], led["sampled_tokens"]) == (stats["prompt_tokens"], stats["completion_tokens"])
        assert loop["notes"] == []
    else:
        assert led["sampled_tokens"] == stats["completion_tokens"]  # one log-prob per token
        assert led["prompt_tokens"] > 0
        assert len(loop["notes"]) == 1 and "reports no token usage" in loop["notes"][0]
    capsys.readouterr()
    assert main(["show", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "max_usd 1e-09 would be crossed" in shown
    assert ("reports no token usage" in shown) is (not reports_usage)


def test_a_dropped_api_parameter_is_one_event_and_shown(tmp_path, capsys):
    pytest.importorskip("openai")
    from tests.policy.openai_server import OpenAIServer, echo_generator

    out = tmp_path / "r"
    with OpenAIServer(echo_generator(), model="stand-in", supports_n=False) as server:
        rc = main(["run", "demo", "--backend", "api", "--no-train", "--model", "stand-in",
                   "--backend-option", f"base_url={server.base_url}", "--steps", "2",
                   "--groups", "2", "--group-size", "2", "--max-tokens", "16", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 0, err
    said = [line for line in err.splitlines() if "refused n (HTTP 400)" in line]
    assert len(said) == 1, err
    assert main(["show", str(out)]) == 0
    assert "refused n (HTTP 400)" in capsys.readouterr().out


def test_a_local_run_records_the_local_policys_own_counts(tmp_path, tiny_model_dir, capsys):
    """The local backend: trained tokens are whole sequences (prompt + completion; before issue 32
    the run recorded the completions only), and ``tttd show`` prints the policy's own counts."""
    from tttd.policy.local import LocalPolicy

    pol = LocalPolicy(tiny_model_dir, device="cpu", lora_rank=4, seed=0)
    try:
        cfg = _cfg(steps=1, groups=1, group_size=4, max_tokens=12, backend="local", model=str(tiny_model_dir),
                   task=str(Path(__file__).parent / "digit_fraction_task.py"))
        run = Discovery(cfg, tmp_path / "r", policy=pol)  # digit fraction: every step trains
        run.start()
        run.run()
        used, led = pol.usage(), run.ledger
    finally:
        pol.close()
    assert (led.prompt_tokens, led.sampled_tokens, led.trained_tokens) == (
        used.prompt_tokens, used.sampled_tokens, used.trained_tokens)
    completions = sum(r["tokens"] for r in read_jsonl(tmp_path / "r" / "rollouts.jsonl"))
    assert run.summary()["steps"] == 1 and list(read_jsonl(tmp_path / "r" / "metrics.jsonl"))[0]["trained"]
    assert led.trained_tokens > completions  # whole sequences: the prompts are trained on too
    assert main(["show", str(tmp_path / "r")]) == 0
    assert f"{used.prompt_tokens} prompt, {used.sampled_tokens} sampled, {used.trained_tokens} trained" \
        in capsys.readouterr().out
