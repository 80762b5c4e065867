"""Spend and budgets: each cap stops a run at the right step boundary with nothing lost, and a
resume with the cap raised continues exactly as an uncapped run."""

import json
import types

import pytest

from tests.fakes import FakeDigitPolicy
from tttd.cli import main
from tttd.config import ConfigError, resolve_config
from tttd.ledger import Ledger, budget_stop, price_for, spend_lines
from tttd.loop import Discovery
from tttd.rundir import read_jsonl

SAMPLES_PER_STEP = 3 * 6


def _cfg(**kw):
    values = dict(task="demo", steps=4, groups=3, group_size=6, learning_rate=0.5, workers=1, seed=1)
    values.update(kw)
    return resolve_config(flag_values=values)


def _run(cfg, out, resume=False):
    run = Discovery(cfg, out, policy=FakeDigitPolicy())
    run.restore() if resume else run.start()
    return run.run()


def _strip(row):
    return {k: v for k, v in row.items() if not k.startswith(("seconds", "spend"))}


def _same_run(out, ref):
    assert [_strip(r) for r in read_jsonl(out / "metrics.jsonl")] == [_strip(r) for r in read_jsonl(ref / "metrics.jsonl")]
    assert json.loads((out / "archive.json").read_text()) == json.loads((ref / "archive.json").read_text())
    assert list(read_jsonl(out / "rollouts.jsonl")) == list(read_jsonl(ref / "rollouts.jsonl"))
    best = [json.loads((d / "best" / "best.json").read_text()) for d in (out, ref)]
    for b in best:
        b.pop("verify")
    assert best[0] == best[1]


def _stopped_after(out, steps):
    """The run kept exactly ``steps`` completed steps, all logged and checkpointed."""
    rows = list(read_jsonl(out / "metrics.jsonl"))
    assert [r["step"] for r in rows] == list(range(steps))
    loop = json.loads((out / "checkpoint" / (out / "checkpoint" / "LATEST").read_text().strip() / "loop.json").read_text())
    assert loop["step"] == steps - 1
    assert len(list(read_jsonl(out / "rollouts.jsonl"))) == steps * SAMPLES_PER_STEP
    assert (out / "best" / "best.json").is_file()
    return loop


@pytest.fixture
def reference(tmp_path):
    out = tmp_path / "ref"
    _run(_cfg(), out)
    return out


def test_max_samples_stops_before_crossing_and_resume_continues_exactly(tmp_path, reference):
    # 18 samples a step: 36 after two steps; a third would make 54 > 50.
    out = tmp_path / "capped"
    summary = _run(_cfg(max_samples=50), out)
    assert summary["steps"] == 2 and "max_samples 50" in summary["stopped"]
    loop = _stopped_after(out, 2)
    assert loop["ledger"]["samples"] == 36
    _run(_cfg(max_samples=1000), out, resume=True)
    _same_run(out, reference)


def test_max_samples_exactly_reachable(tmp_path):
    out = tmp_path / "exact"
    summary = _run(_cfg(max_samples=36), out)
    assert summary["steps"] == 2 and summary["samples"] == 36


def test_max_usd_stops_on_the_last_steps_estimate(tmp_path, reference):
    # 216 sampled tokens a step (18 samples x 12 tokens) at $1000 per million: $0.216 a step.
    prices = {"local": {"sampled": 1000.0}}
    out = tmp_path / "usd"
    summary = _run(_cfg(max_usd=0.5, prices=prices), out)
    assert summary["steps"] == 2 and "max_usd 0.5" in summary["stopped"]
    loop = _stopped_after(out, 2)
    assert loop["ledger"]["usd"] == pytest.approx(0.432)
    assert loop["ledger"]["last_step"]["usd"] == pytest.approx(0.216)
    _run(_cfg(max_usd=5.0, prices=prices), out, resume=True)
    _same_run(out, reference)
    assert json.loads((out / "checkpoint" / "step-000003" / "loop.json").read_text())["ledger"]["usd"] == pytest.approx(0.864)


def _fake_clock(monkeypatch, tick=10.0):
    """The loop's clock advances ``tick`` seconds per reading: step times are deterministic."""
    import time as real_time

    import tttd.loop

    now = [0.0]

    def perf_counter():
        now[0] += tick
        return now[0]

    monkeypatch.setattr(tttd.loop, "time", types.SimpleNamespace(perf_counter=perf_counter, time=real_time.time))


def test_max_hours_stops_before_crossing_and_resume_continues_exactly(tmp_path, monkeypatch):
    _fake_clock(monkeypatch)
    ref = tmp_path / "ref"
    _run(_cfg(), ref)
    step_s = list(read_jsonl(ref / "metrics.jsonl"))[0]["spend"]["seconds"]
    assert step_s > 0
    out = tmp_path / "hours"
    cap = 2.5 * step_s / 3600  # two steps fit; the third (estimated as long as the second) would not
    summary = _run(_cfg(max_hours=cap), out)
    assert summary["steps"] == 2 and "max_hours" in summary["stopped"]
    _stopped_after(out, 2)
    _run(_cfg(max_hours=100.0), out, resume=True)
    _same_run(out, ref)


def test_a_cap_below_one_step_runs_nothing(tmp_path):
    out = tmp_path / "none"
    summary = _run(_cfg(max_samples=10), out)
    assert summary["steps"] == 0 and summary["stopped"]
    assert not list(read_jsonl(out / "metrics.jsonl"))


def test_max_usd_needs_a_price(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert price_for(_cfg(backend="api", model="m")) is None
    assert main(["run", "demo", "--backend", "api", "--model", "m", "--no-train", "--backend-option",
                 "base_url=http://127.0.0.1:9/v1", "--max-usd", "1", "--out", "r"]) == 2
    err = capsys.readouterr().err
    assert "--max-usd needs a price for api:m" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("flag", ["--max-samples=0", "--max-usd=-1", "--max-hours=0"])
def test_bad_caps_are_one_line_errors(flag, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "demo", flag]) == 2
    assert "must be > 0" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_bad_price_table():
    from tttd.ledger import check_budget

    with pytest.raises(ConfigError, match="prices"):
        check_budget(_cfg(prices={"local": {"sampled": "cheap"}}))


def test_cli_resume_raises_a_cap_and_show_prints_spend(tmp_path, capsys, monkeypatch):
    import tttd.loop

    monkeypatch.setattr(tttd.loop, "build_policy", lambda cfg: FakeDigitPolicy())
    out = tmp_path / "r"
    _run(_cfg(max_samples=40), out)
    assert main(["show", str(out)]) == 0
    text = capsys.readouterr().out
    assert "spend: 36 samples" in text and "budget left: 4 of 40 samples" in text
    assert "stopped by a budget cap" in text
    assert main(["show", str(out), "--json"]) == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert info["spend"]["samples"] == 36 and info["budget"]["max_samples"] == 40
    assert "max_samples 40 would be crossed" in info["stopped"]
    assert main(["resume", str(out), "--max-samples", "72", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["steps"] == 4 and summary["samples"] == 72 and summary["stopped"] is None
    assert json.loads((out / "config.json").read_text())["max_samples"] == 72


def test_ledger_round_trip_and_old_checkpoints():
    old = {"samples": 5, "prompt_tokens": 1, "sampled_tokens": 2, "trained_tokens": 3, "seconds": 1.0,
           "evaluations": 5, "valid": 4}
    led = Ledger.from_dict(old)
    assert led.usd == 0.0 and led.eval_cpu_seconds == 0.0
    assert Ledger.from_dict(led.to_dict()) == led
    assert budget_stop(led, _cfg()) is None
    assert any("5 samples" in line for line in spend_lines(led, _cfg()))
