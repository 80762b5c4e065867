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
