"""The first hour of a new user (issue 14): presets that fit the tiny model, the demo's messages and
verdict, resume of a finished run, `show | head`, config keys = flag names, versions, new-task."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import tttd.cli as cli
from tttd.cli import common
from tests.fakes import FakeDigitPolicy
from tttd.config import ConfigError, load_config_file, resolve_config
from tttd.loop import Discovery

ROOT = Path(__file__).resolve().parents[1]


def _capture_execute(monkeypatch):
    seen = []

    def fake_execute(cfg, out, label, quiet, resume=False, **kw):
        seen.append(cfg)
        n = cfg.steps * cfg.groups * cfg.group_size
        valid = n * 3 // 4 if cfg.train else n // 8
        return {"task": cfg.task, "best_value": 0.41234567891 if cfg.train else 0.43312345678,
                "best_reward": 2.4, "best_step": 3, "steps": cfg.steps, "samples": n, "valid": valid,
                "seconds": 1.0, "run_dir": str(out)}

    monkeypatch.setattr(common, "execute", fake_execute)
    return seen


def test_run_on_the_tiny_model_takes_the_demo_preset_and_says_so(monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    seen = _capture_execute(monkeypatch)
    assert cli.main(["run", "demo"]) == 0
    cfg = seen[-1]
    assert cfg.preset == "demo" and cfg.group_size * cfg.groups <= 64 and cfg.max_tokens <= 64
    assert "using 'demo'" in capsys.readouterr().err
    assert cli.main(["run", "demo", "--preset", "paper", "--out", "p"]) == 0
    assert seen[-1].preset == "paper" and seen[-1].group_size == 64
    # a real model keeps the defaults (the paper's settings)
    assert cli.main(["run", "demo", "--backend", "api", "--model", "some-model", "--no-train",
                     "--backend-option", "base_url=http://127.0.0.1:9/v1", "--out", "q"]) == 0
    assert seen[-1].preset is None and seen[-1].group_size == 64


def test_demo_is_run_demo_plus_a_frozen_baseline(monkeypatch, tmp_path, capsys):
    import tttd.policy.tiny as tiny

    monkeypatch.chdir(tmp_path)
    seen = _capture_execute(monkeypatch)
    monkeypatch.setattr(tiny, "build_tiny_model", lambda *a, **k: tmp_path)
    assert cli.main(["run", "demo", "--seed", "3"]) == 0
    run_cfg = seen[-1].to_dict()
    capsys.readouterr()
    assert cli.main(["demo", "--seed", "3", "--out", "d"]) == 0
    trained, frozen = seen[-2].to_dict(), seen[-1].to_dict()
    for d in (run_cfg, trained, frozen):
        d.pop("out")
    assert trained == run_cfg  # the demo's trained phase is exactly `tttd run demo`
    assert frozen == {**run_cfg, "train": False}
    captured = capsys.readouterr()
    err, out = captured.err, captured.out
    assert err.index("expected: about") < err.index("now the frozen baseline")
    assert "0.4123 " in out and "0.4331 " in out  # rounded, not 17 digits
    assert "75%" in out and "12%" in out  # valid samples, trained vs frozen
    assert "total time" in out and "0.41234567891" not in out


def test_demo_json_reports_valid_rates_and_times(monkeypatch, tmp_path, capsys):
    import tttd.policy.tiny as tiny

    monkeypatch.chdir(tmp_path)
    _capture_execute(monkeypatch)
    monkeypatch.setattr(tiny, "build_tiny_model", lambda *a, **k: tmp_path)
    assert cli.main(["demo", "--steps", "2", "--json", "--quiet", "--out", "d"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["valid_fraction"] == 0.75 and result["frozen_valid_fraction"] == 0.125
    assert result["frozen_best_value"] == 0.43312345678 and "seconds_total" in result


def _finished_run(tmp_path):
    cfg = resolve_config(flag_values=dict(task="demo", steps=2, groups=2, group_size=3, workers=1))
    run = Discovery(cfg, tmp_path / "r", policy=FakeDigitPolicy())
    run.start()
    run.run()
    return tmp_path / "r"


def test_resume_of_a_finished_run_says_so_without_loading_a_model(tmp_path, monkeypatch, capsys):
    import tttd.loop

    out = _finished_run(tmp_path)
    monkeypatch.setattr(tttd.loop, "build_policy", lambda cfg: pytest.fail("loaded a model"))
    assert cli.main(["resume", str(out)]) == 0
    assert "already finished its 2 steps" in capsys.readouterr().err


def test_config_json_records_versions(tmp_path):
    from importlib.metadata import PackageNotFoundError, version

    out = _finished_run(tmp_path)
    versions = json.loads((out / "config.json").read_text())["_versions"]
    for name in ("torch", "transformers", "peft"):
        try:
            assert versions[name] == version(name)
        except PackageNotFoundError:
            assert name not in versions


def test_show_into_a_closed_pipe_is_quiet(tmp_path):
    out = _finished_run(tmp_path)
    r, w = os.pipe()
    os.close(r)  # the reader (`head`) is gone before tttd writes
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "tttd.cli", "show", str(out)], stdout=w,
                          stderr=subprocess.PIPE, text=True, env=env, timeout=60)
    os.close(w)
    assert "Broken" not in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 0


def test_config_keys_match_flag_names(tmp_path, monkeypatch):
    f = tmp_path / "c.yaml"
    f.write_text("lr: 0.01\ngroup-size: 3\nno-train: true\ntemperature: 0.7\nkl_coef: 0.2\n")
    values = load_config_file(f)
    assert values == {"learning_rate": 0.01, "group_size": 3, "train": False, "temperature": 0.7, "kl_coef": 0.2}
    cfg = resolve_config(file_values=values)
    assert (cfg.learning_rate, cfg.group_size, cfg.train, cfg.temperature) == (0.01, 3, False, 0.7)
    (tmp_path / "dup.toml").write_text("lr = 0.1\nlearning_rate = 0.2\n")
    with pytest.raises(ConfigError, match="give it once"):
        load_config_file(tmp_path / "dup.toml")
    # the flags: --learning-rate (and --lr) and --temperature
    monkeypatch.chdir(tmp_path)
    seen = _capture_execute(monkeypatch)
    assert cli.main(["run", "demo", "--learning-rate", "0.02", "--temperature", "0.5"]) == 0
    assert (seen[-1].learning_rate, seen[-1].temperature) == (0.02, 0.5)
    assert cli.main(["run", "demo", "--lr", "0.03", "--out", "b"]) == 0
    assert seen[-1].learning_rate == 0.03


def test_new_task_writes_a_runnable_template_and_its_check(tmp_path, capsys):
    assert cli.main(["new-task", "my-problem", "--dir", str(tmp_path)]) == 0
    task_file, check_file = tmp_path / "my_problem.py", tmp_path / "check_my_problem.py"
    assert task_file.exists() and check_file.exists()
    out = capsys.readouterr().out
    assert "tttd run" in out and f"python {check_file}" in out and "-m pytest" not in out
    spec = importlib.util.spec_from_file_location("check_my_problem_generated", check_file)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main() == 0  # the contract holds for the template as written
    assert cli.main(["new-task", "my-problem", "--dir", str(tmp_path)]) == 2  # never overwrites
    assert "already exists" in capsys.readouterr().err
    assert cli.main(["new-task", "9bad name", "--dir", str(tmp_path)]) == 2
