"""The first hour after ``tttd demo`` (issue 23), as the user meets it on the command line:
one-line errors for flags and task-file mistakes, the tiny model's limits said up front, the
generated contract check, one step numbering, show/runs wording, verify's refusals, and a real
(stand-in) model served over the OpenAI API running a ``new-task`` task end to end."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import tttd.cli as cli
from tttd.cli import common
from tttd.cli.common import Progress, print_summary
from tests.fakes import FakeDigitPolicy
from tttd.config import resolve_config
from tttd.loop import Discovery

ROOT = Path(__file__).resolve().parents[1]


def _err_lines(capsys) -> list[str]:
    return [line for line in capsys.readouterr().err.strip().splitlines() if line.strip()]


# ------------------------------------------------------------------ 6. bad flag values


@pytest.mark.parametrize("args, fragment", [
    (["run", "demo", "--lr", "abc"], "invalid float value: 'abc'"),
    (["run", "demo", "--backend", "foo"], "invalid choice: 'foo'"),
    (["run", "demo", "--steps", "two"], "invalid int value: 'two'"),
    (["verify"], "the following arguments are required"),
])
def test_bad_flag_values_are_one_line_not_the_usage(args, fragment, capsys):
    with pytest.raises(SystemExit) as done:
        cli.main(args)
    assert done.value.code == 2
    lines = _err_lines(capsys)
    assert len(lines) == 1 and fragment in lines[0] and "usage:" not in lines[0], lines
    assert lines[0].startswith("tttd ") and "--help" in lines[0]


# ------------------------------------------------------------------ 2. task-file mistakes


def _new_task(tmp_path, name="my_task") -> Path:
    assert cli.main(["new-task", name, "--dir", str(tmp_path)]) == 0
    return tmp_path / f"{name}.py"


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_syntax_error_in_the_task_file_is_one_line_with_file_and_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    task = _new_task(tmp_path, "broken_syntax")
    text = task.read_text().replace("import math\n", "import math(\n", 1)
    task.write_text(text)
    capsys.readouterr()
    assert cli.main(["run", str(task), "--out", "r"]) == 2
    lines = _err_lines(capsys)
    assert len(lines) == 1 and lines[0].startswith("tttd: error:"), lines
    assert f"{task}:{_line_of(task, 'import math(')}: SyntaxError" in lines[0]
    assert not (tmp_path / "r").exists()


def test_initial_program_its_score_rejects_is_one_line_and_no_run_dir(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    task = _new_task(tmp_path, "bad_root")
    task.write_text(task.read_text().replace("for i in range(10)]", "for i in range(9)]", 1))
    capsys.readouterr()
    assert cli.main(["run", str(task), "--out", "r", "--steps", "1"]) == 2
    err = [line for line in _err_lines(capsys) if not line.startswith(("warning:", "no --preset", "isolation:"))]
    assert len(err) == 1, err
    where = f"{task}:{_line_of(task, 'expected 10 numbers')}"
    assert where in err[0] and "the initial program is not valid" in err[0]
    assert "expected 10 numbers, got 9" in err[0]  # the scorer's own message
    assert not (tmp_path / "r").exists() and not (tmp_path / "runs").exists()
    assert cli.main(["run", str(task), "--dry-run"]) == 2  # the dry run says the same line
    assert where in _err_lines(capsys)[-1]


def test_scorer_bug_is_scorer_error_and_a_bad_answer_is_invalid(tmp_path):
    from tttd.registry import get_task

    task_file = _new_task(tmp_path, "buggy")
    task_file.write_text(task_file.read_text().replace(
        "    xs.sort()\n", "    if xs[0] > 0.5:\n        return undefined_name\n    xs.sort()\n", 1))
    task = get_task(str(task_file))
    assert task.verify([i / 10 for i in range(10)]).valid
    bad = task.verify([0.5] * 9)
    assert not bad.valid and bad.status == "invalid"  # a verdict on the candidate
    bug = task.verify([0.6 + i / 100 for i in range(10)])
    assert not bug.valid and bug.status == "scorer_error" and "NameError" in bug.message
    assert f"{task_file}:{_line_of(task_file, 'undefined_name')}" in bug.message


def test_scorer_error_samples_carry_no_signal():
    """Issue 32: a scorer error is removed before the advantages are computed: seven equal rewards
    plus one scorer error are a constant group (dropped); in a mixed group it moves nothing."""
    from tttd.objective import group_advantages
    from tttd.task_errors import scorer_errors
    from tttd.types import Evaluation

    def ev(status, reward=0.5):
        return Evaluation(valid=status == "ok", value=reward if status == "ok" else None, reward=reward, status=status)

    evs = [[ev("ok")] * 7 + [ev("scorer_error", 0.0)], [ev("ok", 1.0), ev("scorer_error", 0.0), ev("ok", 0.2)]]
    assert scorer_errors(evs) == [[7], [1]]
    adv = group_advantages([[e.reward for e in g] for g in evs], exclude=scorer_errors(evs))
    assert adv.advantages[0] is None and adv.dropped == [0] and adv.kept == 1
    alone = group_advantages([[1.0, 0.2]])
    assert adv.advantages[1].tolist() == [alone.advantages[0][0], 0.0, alone.advantages[0][1]]
    assert adv.betas[1] == alone.betas[0]
    assert not adv.in_batch(1, 1) and adv.in_batch(1, 0) and not adv.in_batch(0, 0)


def test_a_scorer_error_in_a_constant_group_trains_nothing(tmp_path):
    """Seven equal rewards and one scorer error: nothing trains (today's code gave the seven
    +0.167 each and trained on them), and the rollouts carry no advantage."""
    from tests.fakes import FakeDigitPolicy
    from tttd.build import build_task
    from tttd.config import resolve_config
    from tttd.loop import Discovery
    from tttd.rundir import read_jsonl
    from tttd.types import Evaluation

    cfg = resolve_config(flag_values=dict(task="demo", steps=1, groups=1, group_size=8, workers=1, seed=1))
    task = build_task(cfg)
    calls = []

    def evaluate(cand, result, start):
        calls.append(1)
        if len(calls) == 8:
            raise RuntimeError("a bug in the scorer")
        return Evaluation(valid=True, value=2.0, reward=0.5, artifact={"text": "same"})

    task.evaluate = evaluate
    pol = FakeDigitPolicy()
    run = Discovery(cfg, tmp_path / "r", task=task, policy=pol)
    run.start()
    run.run()
    rows = list(read_jsonl(tmp_path / "r" / "rollouts.jsonl"))
    assert [r["status"] for r in rows].count("scorer_error") == 1
    assert all(r["advantage"] is None for r in rows)
    assert pol.steps == 0
    assert [m["trained"] for m in read_jsonl(tmp_path / "r" / "metrics.jsonl")] == [False]

    # a group with a signal: the scorer error is left out of the batch (KL term included)
    class Recorder(FakeDigitPolicy):
        def train_step(self, batch, config):
            self.batch = batch
            return super().train_step(batch, config)

    calls.clear()

    def varied(cand, result, start):
        calls.append(1)
        if len(calls) == 8:
            raise RuntimeError("a bug in the scorer")
        return Evaluation(valid=True, value=float(len(calls)), reward=0.1 * len(calls), artifact={"n": len(calls)})

    task.evaluate = varied
    rec = Recorder()
    run = Discovery(resolve_config(flag_values=dict(task="demo", steps=1, groups=1, group_size=8, workers=1,
                                                    seed=1, kl_coef=0.1)), tmp_path / "r2", task=task, policy=rec)
    run.start()
    run.run()
    assert len(rec.batch) == 7
    rows = list(read_jsonl(tmp_path / "r2" / "rollouts.jsonl"))
    assert [r["advantage"] is None for r in rows] == [False] * 7 + [True]


# ------------------------------------------------------------------ 1 and 2: a served model


def _program_server(values_fn):
    """A stand-in for a real model behind an OpenAI-compatible server: every completion is a
    complete program returning ``values_fn(i)`` for sample i."""
    from tests.policy.openai_server import Completion, OpenAIServer

    def generate(messages, n, max_tokens, temperature, stop):
        out = []
        for i in range(n):
            text = f"```python\ndef solve():\n    return {values_fn(i)!r}\n```\n"
            ids = list(range(100, 100 + len(text.split())))
            out.append(Completion(text, "stop", ids, [-0.5] * len(ids)))
        return out

    return OpenAIServer(generate, model="stand-in")


def test_new_task_with_a_served_model_is_what_the_docs_say(tmp_path, capsys, monkeypatch):
    """docs/own-problem.md's shortest path: an OpenAI-compatible server on this machine, with
    ``--backend api --no-train``; the answers are valid and improve on the root, and no
    tiny-model warning is given."""
    pytest.importorskip("openai")
    monkeypatch.chdir(tmp_path)
    task = _new_task(tmp_path, "spread")
    capsys.readouterr()
    with _program_server(lambda i: [j / 9 for j in range(10)]) as server:
        rc = cli.main(["run", str(task), "--backend", "api", "--no-train", "--model", "stand-in",
                       "--backend-option", f"base_url={server.base_url}", "--steps", "2",
                       "--groups", "1", "--group-size", "2", "--max-tokens", "64", "--out", "r", "--json"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "toy" not in captured.err
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["best_value"] == pytest.approx(1 / 9) and summary["best_step"] == 1  # found in step 1
    docs = (ROOT / "docs" / "own-problem.md").read_text()
    assert "--backend api --no-train" in docs and "--backend local --model" in docs
    # tttd runs names the task by its name, not its file's path
    assert cli.main(["runs", str(tmp_path), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["task"] for r in rows] == ["spread"]


def test_scorer_raising_during_a_run_stops_it_with_one_line(tmp_path, capsys, monkeypatch):
    pytest.importorskip("openai")
    monkeypatch.chdir(tmp_path)
    task = _new_task(tmp_path, "buggy_run")
    task.write_text(task.read_text().replace(
        "    xs.sort()\n", "    if xs[0] > 0.5:\n        return undefined_name\n    xs.sort()\n", 1))
    capsys.readouterr()
    with _program_server(lambda i: [0.6 + j / 100 for j in range(10)]) as server:
        rc = cli.main(["run", str(task), "--backend", "api", "--no-train", "--model", "stand-in",
                       "--backend-option", f"base_url={server.base_url}", "--steps", "2",
                       "--groups", "1", "--group-size", "2", "--max-tokens", "64", "--out", "r"])
    assert rc == 2
    lines = _err_lines(capsys)
    err = [line for line in lines if line.startswith("tttd: error:")]
    assert len(err) == 1 and "scorer raised 4 times" in err[0] and "NameError" in err[0], lines
    assert "not in the candidates" in err[0] and "tttd resume" in err[0]
    # step 1 (2 scorer errors, under the limit of 3) is said apart from invalid candidates
    assert any("TASK SCORER ERROR" in line and "undefined_name" in line for line in lines), lines
    step1 = [line for line in lines if "step 1/2" in line]
    assert len(step1) == 1 and "TASK SCORER ERROR 2" in step1[0] and "fail " not in step1[0], step1
    # step 2 reached the limit: stopped before its checkpoint (only step 1 is committed)
    from tttd.rundir import read_jsonl

    assert [m["step"] for m in read_jsonl(tmp_path / "r" / "metrics.jsonl")] == [0]
    assert cli.main(["show", str(tmp_path / "r")]) == 0
    assert "status: resumable (1/2 steps" in capsys.readouterr().out


# ------------------------------------------------------------------ 1. the tiny model's limits


def test_run_with_the_tiny_model_on_a_task_says_it_cannot_write_programs(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    seen = []
    monkeypatch.setattr(common, "execute", lambda cfg, out, label, quiet, **kw: seen.append(cfg) or {
        "task": "t", "best_value": None, "best_reward": None, "best_step": None, "steps": 0, "samples": 0,
        "valid": 0, "seconds": 0.0, "run_dir": out})
    task = _new_task(tmp_path, "toy_check")
    out = capsys.readouterr().out
    assert "tiny demo model" in out and "docs/own-problem.md" in out  # new-task sets the expectation
    assert cli.main(["run", str(task), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "cannot write toy_check programs" in err and "docs/own-problem.md" in err
    assert cli.main(["run", "demo", "--quiet"]) == 0  # the demo task is what the toy is for
    assert "cannot write" not in capsys.readouterr().err


# ------------------------------------------------------------------ 5. the generated check


def _check(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=300,
                          cwd=path.parent)


def test_generated_check_tests_the_contract_not_the_placeholder(tmp_path):
    task = _new_task(tmp_path, "contract")
    check = tmp_path / "check_contract.py"
    done = _check(check)
    assert done.returncode == 0 and "all checks passed" in done.stdout, done.stdout + done.stderr
    # a different problem (the user's edit): the check still passes
    text = task.read_text()
    text = text.replace("return [i / 10 for i in range(10)]", "return [0.3, 0.1, 0.2]")
    text = text.replace('    xs = [float(x) for x in data]\n    if len(xs) != 10:\n'
                        '        raise ValueError(f"expected 10 numbers, got {len(xs)}")\n',
                        '    xs = [float(x) for x in data]\n    if len(xs) != 3:\n'
                        '        raise ValueError("expected 3 numbers")\n')
    task.write_text(text)
    done = _check(check)
    assert done.returncode == 0, done.stdout + done.stderr
    # a non-deterministic score fails the check
    task.write_text(text.replace("    return min(b - a", "    import random\n    return random.random() / 100 + min(b - a", 1))
    done = _check(check)
    assert done.returncode == 1 and "FAIL  score is deterministic" in done.stdout, done.stdout + done.stderr
    # a scorer that accepts garbage fails it too
    task.write_text(text.replace("    xs = [float(x) for x in data]\n", "    if data is None:\n        return 1.0\n"
                                 "    xs = [float(x) for x in data]\n", 1))
    done = _check(check)
    assert done.returncode == 1 and "FAIL  bad answers are invalid" in done.stdout, done.stdout


# ------------------------------------------------------------------ 4 and 8: numbering and wording


def _fake_run(path, **kw):
    values = dict(task="demo", steps=3, groups=2, group_size=4, workers=1, seed=1)
    values.update(kw)
    events = []
    run = Discovery(resolve_config(flag_values=values), path, policy=FakeDigitPolicy(), on_event=events.append)
    run.start()
    return run, events


def test_one_step_numbering_and_one_set_of_status_words(tmp_path, capsys):
    run, _ = _fake_run(tmp_path / "r")
    summary = run.run()
    print_summary(summary, as_json=False)
    stored = json.loads((tmp_path / "r" / "best" / "best.json").read_text())["step"]
    shown = stored + 1  # steps count from 1 (the progress line's step 1/3), initial states are 0
    assert f"step {shown})" in capsys.readouterr().out
    assert cli.main(["show", str(tmp_path / "r")]) == 0
    show = capsys.readouterr().out
    assert f"(step {shown})" in show and "status: finished (3/3 steps" in show
    assert cli.main(["runs", str(tmp_path), "--json"]) == 0
    row = json.loads(capsys.readouterr().out)[0]
    assert row["best_step"] == shown and row["status"] == "finished"
    assert cli.main(["show", str(tmp_path / "r"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["best_step"] == shown


def test_budget_stop_names_the_flag_and_a_value(tmp_path, capsys):
    run, events = _fake_run(tmp_path / "r", max_samples=12)  # 8 per step: one step fits
    run.run()
    stop = [e for e in events if e.startswith("stopped")]
    assert len(stop) == 1 and "--max-..." not in stop[0], events
    assert "stopped before step 2 of 3" in stop[0]
    assert re.search(r"tttd resume \S+ --max-samples 24\b", stop[0]), stop[0]  # enough to finish
    assert cli.main(["show", str(tmp_path / "r")]) == 0
    show = capsys.readouterr().out
    assert "status: stopped (budget)" in show and "--max-samples 24" in show and "--max-..." not in show


def test_show_on_a_run_with_no_step_is_sane(tmp_path, capsys):
    _fake_run(tmp_path / "r")  # started: config and roots, no step yet
    assert cli.main(["show", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    assert "None" not in out and "status: resumable (0/3 steps" in out
    for line in out.splitlines():
        if line.startswith("files:"):
            for f in line.split()[1:]:
                assert Path(f.rstrip("/")).exists(), f


def test_verify_help_and_refusals(tmp_path, capsys, monkeypatch):
    with pytest.raises(SystemExit):
        cli.main(["verify", "--help"])
    assert "path/to/task.py" in capsys.readouterr().out
    task = _new_task(tmp_path, "some_task")
    capsys.readouterr()
    assert cli.main(["verify", "demo", str(task)]) == 2
    assert "is a task file, not a demo answer" in capsys.readouterr().err
    prog = tmp_path / "prog.py"
    prog.write_text("def main():\n    return [1, 2]\n")
    assert cli.main(["verify", "demo", str(prog)]) == 2
    assert "is not a demo answer" in capsys.readouterr().err
    monkeypatch.chdir(ROOT)
    assert cli.main(["run", "tsp"]) == 2
    assert "tttd run examples/tsp.py" in capsys.readouterr().err


# ------------------------------------------------------------------ 3. time estimates


def test_every_progress_line_has_an_eta_measured_from_the_run(capsys):
    progress = Progress(4, "t", then=("frozen baseline", 4, 0.5))
    base = dict(best_value=0.5, reward_mean=1.0, reward_max=2.0, valid_fraction=1.0, archive_size=3,
                samples=8, status_counts={})
    progress.step({**base, "step": 0, "seconds_sample": 3.0, "seconds_evaluate": 1.0})
    progress.step({**base, "step": 1, "seconds_sample": 5.0, "seconds_evaluate": 1.0})
    lines = _err_lines(capsys)
    assert "step 1/4" in lines[0] and "ETA 12 s + ~8 s for the frozen baseline" in lines[0], lines
    assert "step 2/4" in lines[1] and "ETA 10 s" in lines[1]  # (4 + 6) / 2 s a step, 2 steps left
    progress.step({**base, "step": 3, "seconds_sample": 2.0})  # the last step: only the later phase
    last = _err_lines(capsys)[0]
    assert "step 4/4" in last and "ETA ~8 s for the frozen baseline" in last, last  # (4+6+2)/3 s x 0.5 x 4 steps


def test_demo_estimate_says_when_this_machine_is_busy(monkeypatch, tmp_path, capsys):
    import os

    import tttd.policy.tiny as tiny

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(common, "execute", lambda cfg, out, label, quiet, **kw: {
        "task": "demo", "best_value": 0.4, "best_reward": 2.5, "best_step": 0, "steps": cfg.steps,
        "samples": 4, "valid": 2, "seconds": 1.0, "run_dir": out})
    monkeypatch.setattr(tiny, "build_tiny_model", lambda *a, **k: tmp_path)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (15.0, 12.0, 6.0))
    assert cli.main(["demo", "--steps", "2", "--out", "d"]) == 0
    err = " ".join(capsys.readouterr().err.split())  # rich wraps long lines
    assert "busy now (load average 15.0 on 2 cores): roughly" in err and "measured" in err
    monkeypatch.setattr(os, "getloadavg", lambda: (0.1, 0.1, 0.1))
    assert cli.main(["demo", "--steps", "2", "--out", "e"]) == 0
    assert "busy" not in capsys.readouterr().err


@pytest.mark.slow
def test_local_backend_with_a_model_folder(tiny_model_dir, tmp_path, capsys, monkeypatch):
    """docs/own-problem.md's second path: ``--backend local --model DIR`` with a Hugging Face
    folder on disk (here the tiny model copied as a plain HF folder, which tttd does not
    recognise as its toy): the run goes through, without the toy-model warning."""
    import shutil

    monkeypatch.chdir(tmp_path)
    model = tmp_path / "hf-model"
    shutil.copytree(tiny_model_dir, model)
    (model / "tttd_build.json").unlink(missing_ok=True)
    task = _new_task(tmp_path, "local_path")
    capsys.readouterr()
    rc = cli.main(["run", str(task), "--backend", "local", "--model", str(model), "--steps", "1",
                   "--groups", "1", "--group-size", "2", "--max-tokens", "16", "--out", "r", "--json", "--quiet"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "toy" not in captured.err
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["steps"] == 1 and summary["samples"] == 2
