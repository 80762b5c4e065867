"""The command line: help, task listing, and one-line errors (no model needed)."""

import json
import subprocess
import sys

import pytest

from tttd.cli import main


def run_cli(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "tttd.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_help_explains_commands():
    out = run_cli("--help")
    assert out.returncode == 0
    for word in ("demo", "run", "resume", "show", "tasks", "verify", "tttd demo"):
        assert word in out.stdout
    run_help = run_cli("run", "--help").stdout
    for flag in ("--backend", "--model", "--preset", "--steps", "--groups", "--group-size", "--out",
                 "--seed", "--no-train", "--reuse", "--objective", "--config"):
        assert flag in run_help


def test_tasks_lists_builtins(capsys):
    assert main(["tasks"]) == 0
    out = capsys.readouterr().out
    for name in ("demo", "erdos", "ac1", "ac2", "circle_packing_26", "circle_packing_32"):
        assert name in out


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["run", "no-such-task"], "unknown task 'no-such-task'"),
        (["run", "./missing_task.py"], "task file not found"),
        (["run", "demo", "--steps", "0"], "steps must be >= 1"),
        (["run", "demo", "--preset", "warp"], "unknown preset 'warp'"),
        (["run", "demo", "--task-option", "oops"], "KEY=VALUE"),
        (["resume", "/nonexistent/run"], "not a run directory"),
        (["show", "/nonexistent/run"], "not a run directory"),
        (["run", "demo", "--model", "/nonexistent/model", "--steps", "1"], "/nonexistent/model"),
    ],
)
def test_one_line_errors(args, fragment, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    err = [line for line in capsys.readouterr().err.strip().splitlines() if "error" in line]
    assert len(err) == 1 and err[0].startswith("tttd: error:") and fragment in err[0], err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_bad_config_file_value(tmp_path, capsys):
    cfg = tmp_path / "c.toml"
    cfg.write_text('reuse = "sometimes"\n')
    assert main(["run", "demo", "--config", str(cfg)]) == 2
    assert "reuse must be one of" in capsys.readouterr().err


def test_show_on_a_run(tmp_path, capsys):
    from tests.fakes import FakeDigitPolicy
    from tttd.config import resolve_config
    from tttd.loop import Discovery

    cfg = resolve_config(flag_values=dict(task="demo", steps=3, groups=2, group_size=4))
    run = Discovery(cfg, tmp_path / "r", policy=FakeDigitPolicy())
    run.start()
    run.cfg.steps = 2  # stop early: the run is resumable
    run.run()
    assert main(["show", str(tmp_path / "r"), "--json"]) == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert info["steps_done"] == 2 and info["status"] == "resumable" and info["best_value"] is not None
    assert main(["show", str(tmp_path / "r")]) == 0
    text = capsys.readouterr().out
    assert "tttd resume" in text and "tttd verify demo" in text


@pytest.mark.slow
def test_demo_end_to_end_json(tmp_path):
    """The README's main job, shortened: builds the default tiny model in a fresh cache, trains,
    runs the frozen baseline on the same budget, and ends with one JSON line."""
    import os

    env = {**os.environ, "TTTD_CACHE": str(tmp_path / "cache")}
    out = tmp_path / "demo"
    done = run_cli("demo", "--steps", "3", "--seed", "1", "--out", str(out), "--json", env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for key in ("best_value", "best_reward", "steps", "samples", "seconds", "run_dir", "frozen_best_value"):
        assert key in result
    assert result["steps"] == 3 and result["samples"] == 3 * 4 * 8 and result["run_dir"] == str(out)
    assert result["best_reward"] == pytest.approx(1 / result["best_value"])
    best = json.loads((out / "best" / "best.json").read_text())
    assert best["value"] == result["best_value"]
    # the best artifact re-verifies through the CLI to the same value
    check = run_cli("verify", "demo", str(out / "best" / "artifact.json"), "--json")
    assert check.returncode == 0, check.stderr
    assert json.loads(check.stdout)["value"] == pytest.approx(result["best_value"], rel=1e-12)
    assert (out / "baseline-frozen" / "metrics.jsonl").exists()
    # --no-train runs the frozen policy only
    frozen = run_cli("demo", "--steps", "3", "--seed", "1", "--no-train", "--out", str(tmp_path / "f"),
                     "--json", "--quiet", env=env, timeout=900)
    assert frozen.returncode == 0, frozen.stderr[-3000:]
    f = json.loads(frozen.stdout.strip().splitlines()[-1])
    assert f["mode"] == "frozen" and f["best_value"] == result["frozen_best_value"]
