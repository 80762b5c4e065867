"""The progress line (failure breakdown, why no training step), prompt files, safe text, metric logs."""

import json

import pytest

from tests.fakes import FakeDigitPolicy
from tttd.cli import main
from tttd.config import resolve_config
from tttd.loop import Discovery
from tttd.progress import failure_text, step_info, why_no_train
from tttd.rundir import read_jsonl
from tttd.text import safe


def _run(tmp_path, name="r", **kw):
    values = dict(task="demo", steps=2, groups=2, group_size=6, learning_rate=0.5, workers=1, seed=1)
    values.update(kw)
    run = Discovery(resolve_config(flag_values=values), tmp_path / name, policy=FakeDigitPolicy(length=9))
    run.start()
    run.run()
    return tmp_path / name


def test_safe_escapes_control_characters_and_lone_surrogates():
    assert safe("ok\ttab\nline") == "ok\ttab\nline"
    assert safe("a\x1b[2Jb") == "a\\x1b[2Jb"
    assert safe("x\ud800y\x7f\x85") == "x\\ud800y\\x7f\\x85"
    assert safe("π ✓") == "π ✓"


def test_failure_breakdown_and_no_training_reason_in_the_line():
    m = {"step": 3, "best_value": 0.4, "reward_mean": 1.0, "reward_max": 2.0, "valid_fraction": 0.5,
         "archive_size": 9, "samples": 8, "status_counts": {"parse_error": 1, "timeout": 3},
         "train_skipped": why_no_train(True, True, 0, 2, 0)}
    line = step_info(m)
    assert "fail 4/8: timeout 3, parse_error 1" in line
    assert "no training step: all 2 groups had constant rewards" in line
    assert failure_text({}, 8) == ""
    assert "no training step" not in step_info({**m, "train_skipped": why_no_train(False, True, 0, 2, 0)})
    assert "\x1b" not in step_info({**m, "status_counts": {"evil\x1b[2J": 1}})


def test_metrics_record_failures_and_skipped_training(tmp_path):
    # 9 digits whose shift leaves [0, 1] are invalid: the fake policy produces some failures.
    out = _run(tmp_path, group_size=1)  # one sample per group: every group is constant
    rows = list(read_jsonl(out / "metrics.jsonl"))
    assert all(not r["trained"] for r in rows)
    assert all("constant rewards" in r["train_skipped"] for r in rows)
    out2 = _run(tmp_path, "t", group_size=6, steps=3)
    rows = list(read_jsonl(out2 / "metrics.jsonl"))
    assert any(r["trained"] and r["train_skipped"] is None for r in rows)
    rollouts = list(read_jsonl(out2 / "rollouts.jsonl"))
    for r in rows:
        fails = [x["status"] for x in rollouts if x["step"] == r["step"] and not x["valid"]]
        assert sum(r["status_counts"].values()) == len(fails)
    frozen = _run(tmp_path, "f", train=False)
    assert all(r["train_skipped"].startswith("frozen") for r in read_jsonl(frozen / "metrics.jsonl"))


def test_rollouts_name_a_prompt_file_with_the_prompt_text(tmp_path):
    out = _run(tmp_path)
    rollouts = list(read_jsonl(out / "rollouts.jsonl"))
    files = {r["prompt_file"] for r in rollouts}
    assert 1 <= len(files) <= 4  # one file per distinct prompt
    for r in rollouts:
        messages = json.loads((out / r["prompt_file"]).read_text())
        assert messages[0]["role"] == "user" and "step function" in messages[0]["content"]
        assert r["prompt_file"] == f"prompts/{r['prompt_hash']}.json"


def test_tensorboard_log(tmp_path):
    pytest.importorskip("tensorboardX")
    out = _run(tmp_path, log="tensorboard")
    events = list((out / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0


def test_missing_log_library_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    try:
        import wandb  # noqa: F401
        pytest.skip("wandb is installed: the missing-library path cannot be exercised")
    except ImportError:
        pass
    monkeypatch.chdir(tmp_path)
    assert main(["run", "demo", "--log", "wandb", "--out", "r"]) == 2
    assert "--log wandb needs wandb" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
    assert main(["run", "demo", "--log", "mlflow", "--out", "r"]) == 2
    assert "unknown --log 'mlflow'" in capsys.readouterr().err


def test_wandb_log_is_offline_and_gets_every_step(tmp_path, monkeypatch):
    """With a stand-in wandb module (the real one is an optional extra): offline mode, one log a step."""
    import sys
    import types

    calls = []

    class FakeRun:
        def log(self, values, step):
            calls.append(("log", step, values))

        def finish(self):
            calls.append(("finish",))

    fake = types.SimpleNamespace(init=lambda **kw: calls.append(("init", kw)) or FakeRun())
    monkeypatch.setitem(sys.modules, "wandb", fake)
    out = _run(tmp_path, log="wandb")
    assert calls[0][0] == "init" and calls[0][1]["mode"] == "offline" and calls[0][1]["dir"] == str(out)
    logs = [c for c in calls if c[0] == "log"]
    assert [c[1] for c in logs] == [0, 1] and "reward_mean" in logs[0][2] and "spend/samples" in logs[0][2]
    assert calls[-1] == ("finish",)
