"""Runs that cannot be silently damaged (issue 9): a damaged checkpoint, a changed task or a bad
option makes the CLI refuse with one line and exit 2, and every file stays byte-identical."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.fakes import FakeDigitPolicy
from tttd.cli import main
from tttd.config import resolve_config
from tttd.loop import Discovery
from tttd.rundir import NotARunError

TASK_FILE = Path(__file__).parent / "digit_fraction_task.py"


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def make_run(tmp_path: Path, steps_done: int = 2, task: str = "demo") -> Path:
    """A resumable run of ``steps_done`` committed steps (fake policy, no model)."""
    cfg = resolve_config(flag_values=dict(task=task, steps=steps_done + 2, groups=2, group_size=4))
    run = Discovery(cfg, tmp_path / "run", policy=FakeDigitPolicy())
    run.start()
    run.cfg.steps = steps_done
    run.run()
    return tmp_path / "run"


def refuse(args: list[str], run: Path, fragment: str, capsys) -> None:
    before = snapshot(run)
    assert main(args) == 2
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("tttd: error:") and fragment in err[0], err
    assert snapshot(run) == before  # nothing changed, not even config.json's steps


def test_missing_pointer_is_refused(tmp_path, capsys):
    run = make_run(tmp_path)
    (run / "checkpoint" / "LATEST").unlink()
    refuse(["resume", str(run), "--steps", "9"], run, "LATEST is missing", capsys)


def test_missing_pointer_and_step_dirs_still_refused(tmp_path, capsys):
    run = make_run(tmp_path)
    shutil.rmtree(run / "checkpoint")
    (run / "checkpoint").mkdir()
    refuse(["resume", str(run)], run, "damaged", capsys)


def test_garbled_pointer_is_refused(tmp_path, capsys):
    run = make_run(tmp_path)
    (run / "checkpoint" / "LATEST").write_text("../../etc\n")
    refuse(["resume", str(run)], run, "not a step name", capsys)


@pytest.mark.parametrize("name", ["archive.json", "loop.json"])
def test_truncated_checkpoint_file_is_refused(tmp_path, capsys, name):
    run = make_run(tmp_path)
    latest = run / "checkpoint" / (run / "checkpoint" / "LATEST").read_text().strip()
    f = latest / name
    f.write_bytes(f.read_bytes()[: len(f.read_bytes()) // 2])
    refuse(["resume", str(run), "--steps", "7"], run, f"{name} is damaged", capsys)


def test_loop_state_without_keys_is_refused(tmp_path, capsys):
    run = make_run(tmp_path)
    latest = run / "checkpoint" / (run / "checkpoint" / "LATEST").read_text().strip()
    (latest / "loop.json").write_text('{"step": 1}')
    refuse(["resume", str(run)], run, "damaged", capsys)


def test_edited_task_file_is_refused_then_accepted(tmp_path, capsys):
    task_file = tmp_path / "task.py"  # a copy under its own name (the registry is per process)
    task_file.write_text(TASK_FILE.read_text().replace('"digit-fraction"', '"digit-fraction-edited"'))
    run = make_run(tmp_path, task=str(task_file))
    config = json.loads((run / "config.json").read_text())
    task_path = Path(config["task"])
    assert task_path.is_absolute() or config["task"] == str(tmp_path / "task.py")
    task_path.write_text(task_path.read_text() + "\n# an edit that could change the scoring\n")
    refuse(["resume", str(run), "--steps", "5"], run, "changed since this run started", capsys)
    # The explicit flag accepts it (in-process, fake policy) and records the new fingerprint.
    cfg = resolve_config(flag_values=dict(task=str(task_path), steps=3, groups=2, group_size=4))
    d = Discovery(cfg, run, policy=FakeDigitPolicy())
    d.restore(accept_task_change=True)
    assert d.step == 2
    assert json.loads((run / "config.json").read_text())["_task"]["fingerprint"] == d.task_fingerprint()
    d2 = Discovery(cfg, run, policy=FakeDigitPolicy())
    d2.restore()  # now unchanged


def test_changed_task_options_are_refused(tmp_path, capsys):
    run = make_run(tmp_path, task="demo")
    cfg_file = run / "config.json"
    config = json.loads(cfg_file.read_text())
    config["task_options"] = {"root_digits": 9}
    cfg_file.write_text(json.dumps(config))
    with pytest.raises(NotARunError, match="changed since"):
        cfg = resolve_config(flag_values=dict(task="demo", steps=4, groups=2, group_size=4,
                                              task_options={"root_digits": 9}))
        Discovery(cfg, run, policy=FakeDigitPolicy()).restore()


def test_task_path_is_stored_absolute(tmp_path, monkeypatch, capsys):
    """`tttd run ./task.py` records the absolute path, so resume works from anywhere."""
    from tttd.registry import absolute_task_spec

    (tmp_path / "t.py").write_text("# a task file\n")
    monkeypatch.chdir(tmp_path)
    assert absolute_task_spec("t.py") == str(tmp_path / "t.py")
    assert absolute_task_spec("t.py:digit-fraction") == f"{tmp_path / 't.py'}:digit-fraction"
    assert absolute_task_spec("erdos") == "erdos"


def test_failed_resume_persists_no_new_step_total(tmp_path, capsys):
    run = make_run(tmp_path)
    (run / "checkpoint" / "LATEST").unlink()
    before = json.loads((run / "config.json").read_text())["steps"]
    assert main(["resume", str(run), "--steps", "50"]) == 2
    assert json.loads((run / "config.json").read_text())["steps"] == before


def test_died_before_first_commit_still_restarts(tmp_path):
    """No committed step and no traces of one: resume starts the steps over (not damage)."""
    cfg = resolve_config(flag_values=dict(task="demo", steps=2, groups=2, group_size=4))
    run = Discovery(cfg, tmp_path / "r", policy=FakeDigitPolicy())
    run.start()
    d = Discovery(cfg, tmp_path / "r", policy=FakeDigitPolicy())
    d.restore()
    assert d.step == 0 and len(d.archive) > 0


# ------------------------------------------------------------------ options checked up front


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["run", "demo", "--task-option", "bogus=1"], "unknown option 'bogus' for task 'demo'"),
        (["run", "demo", "--workers", "0"], "workers must be >= 1"),
        (["run", "demo", "--backend", "api", "--model", "m", "--no-train"], "needs an endpoint"),
        (["run", "demo", "--backend", "api", "--model", "m",
          "--backend-option", "base_url=http://127.0.0.1:9/v1"], "frozen"),
        (["run", "demo", "--backend", "api", "--model", "m", "--no-train",
          "--backend-option", "base_uri=http://127.0.0.1:9/v1"], "unknown backend option 'base_uri'"),
        (["run", "demo", "--backend", "api", "--model", "m", "--no-train",
          "--backend-option", "base_url=http://127.0.0.1:9/v1"], "cannot reach"),
    ],
)
def test_bad_options_fail_before_anything_is_written(args, fragment, capsys, tmp_path, monkeypatch):
    pytest.importorskip("openai")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    assert main(args) == 2
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if "error" in ln]
    assert len(err) == 1 and err[0].startswith("tttd: error:") and fragment in err[0], err
    assert not (tmp_path / "runs").exists()
