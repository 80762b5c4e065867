"""Scheduling without a model: run states from the directories, sizing, the progress line's ETA."""

import io
import json

from tttd.ablate.runner import Plan, ProgressLine, clock, default_jobs, run_status, worker_threads
from tttd.ablate.spec import build_spec, run_path


def fake_run(path, steps_done, steps=4):
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"steps": steps}))
    ck = path / "checkpoint"
    ck.mkdir()
    if steps_done:
        step = ck / f"step-{steps_done - 1:06d}"
        step.mkdir()
        (step / "loop.json").write_text(json.dumps({"step": steps_done - 1}))
        (ck / "LATEST").write_text(step.name)


def test_plan_reads_finished_unfinished_and_new_runs(tmp_path):
    spec = build_spec("demo", 2, 4, ["full", "mean"], None, {}, None)
    fake_run(run_path(tmp_path, "full", 0), 4)
    fake_run(run_path(tmp_path, "mean", 0), 2)
    fake_run(run_path(tmp_path, "full", 1), 0)
    plan = Plan.read(spec, tmp_path)
    assert run_status(run_path(tmp_path, "full", 0), 4) == ("finished", 4)
    assert plan.status[("mean", 0)] == ("unfinished", 2) and plan.status[("mean", 1)] == ("new", 0)
    assert plan.todo() == [("mean", 0), ("full", 1), ("mean", 1)]
    assert plan.steps_left() == 2 + 4 + 4 and plan.count("finished") == 1


def test_sizing_never_exceeds_the_runs_left():
    assert default_jobs(1) == 1
    assert 1 <= default_jobs(1000) and worker_threads(1) >= 1


def test_progress_line_eta_from_the_step_rate():
    out = io.StringIO()
    line = ProgressLine(total_runs=4, done_runs=1, steps_total=100, steps_done=20, stream=out)
    assert line.eta() is None and "ETA -" in line.text()
    line.t0 -= 30.0  # 30 s for 10 new steps: 70 left take 210 s
    line.steps_done = 30
    assert abs(line.eta() - 210.0) < 5.0
    line.show(force=True)
    assert "1/4 runs done" in out.getvalue() and "step 30/100" in out.getvalue() and "ETA 3m" in out.getvalue()
    assert clock(3725) == "1h02m" and clock(59) == "59s"


def test_a_crashing_worker_is_reported_and_nothing_is_silently_skipped(tmp_path, monkeypatch):
    """A worker that dies on its first run: that run and every run never started are errors."""
    import sys

    from tttd.ablate import runner
    from tttd.config import RunConfig

    fake = tmp_path / "fake_worker.py"
    fake.write_text("import json, os, sys\n"
                    "print(json.dumps({'event': 'ready'}), flush=True)\n"
                    "sys.stdin.readline()\n"
                    "os._exit(3)\n")
    monkeypatch.setattr(runner, "_worker_command", lambda: [sys.executable, str(fake)])
    spec = build_spec("demo", 2, 4, ["full", "mean"], None, {}, None)
    plan = Plan.read(spec, tmp_path)
    configs = {rid: RunConfig(seed=rid[1]) for rid in spec.run_ids()}
    errors = runner.execute(plan, configs, jobs=1, quiet=True)
    assert set(errors) == set(spec.run_ids())
    assert "worker ended (exit 3)" in errors[("full", 0)]
    assert all("not started" in errors[r] for r in spec.run_ids()[1:])
