"""Problem folders of our own in each upstream format (tests/evolve_problems), run through the
sandbox: metric choice, cascades, timeouts, validity, feedback in the prompt, statements,
non-Python programs, re-scoring, and the CLI taking the folder as '.'."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tttd.executor import LocalExecutor
from tttd.sandbox import run
from tttd.registry import get_task
from tttd.task import TaskOptionError

PROBLEMS = Path(__file__).resolve().parents[1] / "evolve_problems"


def root_of(task):
    return task.initial_states(1, np.random.default_rng(0))[0]


def score(task, root, answer):
    cand = task.parse(answer, root)
    assert cand.error is None, cand.error
    return task.evaluate(cand, run(cand.program), root)


def test_metric_choice_default_fallback_and_declared_option():
    task = get_task(str(PROBLEMS / "oe_metrics"))
    root = root_of(task)
    # OpenEvolve's fallback: the mean of overall_score (1/3), slope_changes (20) and validity (1),
    # complexity being a MAP-Elites feature dimension
    assert root.value == pytest.approx((1 / 3 + 20 + 1) / 3)
    assert task.value_label == "score" and any("overall_score, slope_changes, validity" in n
                                               for n in task.dry_run_notes())
    chosen = get_task(str(PROBLEMS / "oe_metrics"), metric="overall_score")
    r = root_of(chosen)
    assert r.value == pytest.approx(1 / 3)
    better = score(chosen, r, "```python\ndef width():\n    return 5\n```")
    worse = score(chosen, r, "```python\ndef width():\n    return 1\n```")
    assert better.value == 1.0 and worse.value == 0.2  # the fallback mean would rank them the other way
    with pytest.raises(TaskOptionError, match="its options: .*metric.*rescore"):
        get_task(str(PROBLEMS / "oe_metrics"), metrc="x")
    with pytest.raises(TaskOptionError, match="no metric 'nope'; its numeric metrics: complexity, overall_score"):
        root_of(get_task(str(PROBLEMS / "oe_metrics"), metric="nope"))


def test_validity_zero_is_invalid():
    task = get_task(str(PROBLEMS / "oe_metrics"), metric="overall_score")
    ev = score(task, root_of(task), "```python\ndef width():\n    return -2\n```")
    assert not ev.valid and ev.message == "the evaluator marked the program invalid (validity 0)"


def test_cascade_stops_below_threshold_and_merges_above():
    task = get_task(str(PROBLEMS / "oe_cascade"))
    root = root_of(task)
    assert root.value == 5.0  # stage 1: 0.5 passes the threshold 0.5; stage 2: 10 - |2 - 7|
    far = score(task, root, "<<<<<<< SEARCH\n    return 2.0\n=======\n    return 20.0\n>>>>>>> REPLACE\n")
    assert far.valid and far.value == 0.0  # stage 1 only: max(0, 1 - 13/10)
    fb = far.metrics["evaluator"]
    assert "below the cascade threshold 0.5" in fb["cascade"] and "validation_report" not in fb["artifacts"]
    near = score(task, root, "```python\ndef guess():\n    return 7.0\n```")
    assert near.value == 10.0 and near.metrics["evaluator"]["metrics"]["exact"] == 1.0
    assert set(near.metrics["evaluator"]["artifacts"]) == {"stage1_report", "validation_report"}
    # cascade off: evaluate() itself
    plain = get_task(str(PROBLEMS / "oe_cascade"), cascade="false")
    assert root_of(plain).value == 95.0
    crash = score(task, root, "```python\ndef guess():\n    return float('x')\n```")
    assert not crash.valid and "stage 1 of the cascade raised ValueError" in crash.message


def test_feedback_reaches_the_prompt_and_the_state():
    task = get_task(str(PROBLEMS / "oe_cascade"))
    root = root_of(task)
    text = task.prompt(root)[0]["content"]
    assert "## Evaluator feedback on this program" in text and "Metrics: stage1_passed=1, exact=0" in text
    assert "### stage1_report\n```\nguess 2.0 is 5.0 away'''\n```" in text  # no ANSI, no fence break
    assert "### validation_report" in text and "Time limit 3 s per evaluation stage" in text
    assert root.metrics["evaluator"]["artifacts"]["validation_report"] == "stage 2 checked 2.0"
    shinka = get_task(str(PROBLEMS / "shinka_feedback"))
    text = shinka.prompt(root_of(shinka))[0]["content"]
    assert text.startswith("Approximate x squared on [-1, 1] with approximate(x).")
    assert "max_error=2" in text and "worst error 2.000; try a polynomial" in text
    assert "secret" not in text and "Time limit 9 s" in text


def test_shinka_incorrect_is_invalid_and_metric_choice():
    task = get_task(str(PROBLEMS / "shinka_feedback"))
    root = root_of(task)
    ev = score(task, root, "```python\ndef approximate(x):\n    return 100\n```")
    assert not ev.valid and "judged the program incorrect: error 100" in ev.message
    assert ev.metrics["evaluator"]["artifacts"]["error"].startswith("error 100")
    by_public = get_task(str(PROBLEMS / "shinka_feedback"), metric="max_error")
    assert root_of(by_public).value == 2.0


def test_timeout_comes_from_the_config(tmp_path):
    folder = tmp_path / "slow"
    shutil.copytree(PROBLEMS / "oe_cascade", folder)
    task = get_task(str(folder), cascade=False)
    assert task.limits.wall_s == 3.0
    ev = score(task, root_of(task), "```python\nimport time\ndef guess():\n    time.sleep(30)\n    return 7.0\n```")
    assert not ev.valid and ev.status == "timeout"


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_cpp_program_with_a_python_evaluator(tmp_path, capsys, monkeypatch):
    from tttd.cli import main

    task = get_task(str(PROBLEMS / "oe_cpp"))
    root = root_of(task)
    assert root.value == 6.0 and task.program_suffixes == (".cpp",) and task.code_language == "cpp"
    text = task.prompt(root)[0]["content"]
    assert "```cpp\n// Toy OpenEvolve-style problem" in text and "```cpp code block" in text
    ev = score(task, root, "<<<<<<< SEARCH\ndouble guess() { return 3.0; }\n=======\n"
                           "double guess() { return 6.5; }\n>>>>>>> REPLACE")
    assert ev.valid and ev.value == 9.5
    broken = score(task, root, "```cpp\ndouble guess() { return }\n```")
    assert not broken.valid and "compilation failed" in broken.message
    # tttd verify . prog.cpp and tttd run . --dry-run, from inside the folder
    prog = tmp_path / "prog.cpp"
    prog.write_text(root.artifact["code"].replace("return 3.0", "return 7.0"))
    monkeypatch.chdir(PROBLEMS / "oe_cpp")
    assert main(["verify", ".", str(prog), "--json"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["value"] == 10.0
    assert main(["run", ".", "--dry-run", "--json"]) == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert info["example"]["evaluation"]["valid"] and info["example"]["answer"].startswith("```cpp")
    assert any(n.startswith("OpenEvolve folder: initial_program.cpp (cpp)") for n in info["task_notes"])


def test_prompt_and_verify_accept_the_folder_as_dot(tmp_path, capsys, monkeypatch):
    from tttd.cli import main

    monkeypatch.chdir(PROBLEMS / "shinka_feedback")
    assert main(["prompt", ".", "--json"]) == 0
    info = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert info["task"] == "shinka_feedback" and "try a polynomial" in info["prompt"][0]["content"]
    assert any(n.startswith("used: task_sys_msg") for n in info["task_notes"])
    prog = tmp_path / "p.py"
    prog.write_text("def approximate(x):\n    return x * x\n")
    assert main(["verify", ".", str(prog)]) == 0
    assert "VALID  value 1.0" in capsys.readouterr().out
    monkeypatch.chdir(PROBLEMS)
    assert main(["prompt", "shinka_feedback", "--json", "--task-option", "metric=score"]) == 0  # relative
    capsys.readouterr()
    assert main(["prompt", "shinka_feedback", "--task-option", "metric=nope"]) == 2  # one line, no traceback
    err = capsys.readouterr().err
    assert err.startswith("tttd: error: task shinka_feedback: the initial program is not valid") and "nope" in err


def test_noisy_evaluator_is_rescored_and_the_mean_kept():
    task = get_task(str(PROBLEMS / "oe_noisy"), rescore=4, rescore_top=2)
    root = root_of(task)
    stats = root.metrics["evaluator"]["rescore"]
    assert stats["runs"] == 4 and root.value == pytest.approx(np.mean(stats["values"]))
    assert len(set(stats["values"])) > 1 and stats["std"] > 0  # it is noisy: the spread is reported
    assert "Re-scored 4 times: mean" in task.prompt(root)[0]["content"]
    cand = task.parse("```python\ndef level():\n    return 3.0\n```", root)
    with LocalExecutor(workers=1) as pool:
        ev = task.evaluate(cand, task.launch(cand, pool.submit, root).result(), root)
        assert ev.valid and ev.metrics["evaluator"]["rescore"]["runs"] == 4 and 3 <= ev.value < 4
        assert "mean of 4 evaluations" in ev.message
        # the top-2 are now 3.x and 1.x: a level-0 program (below both) keeps one evaluation
        low = task.parse("```python\ndef level():\n    return 0.0\n```", root)
        ev = task.evaluate(low, task.launch(low, pool.submit, root).result(), root)
        assert ev.valid and "rescore" not in ev.metrics["evaluator"] and 0 <= ev.value < 1


def test_no_statement_in_the_config_uses_the_readme_opening(tmp_path):
    folder = tmp_path / "bare"
    shutil.copytree(PROBLEMS / "shinka_guess", folder)
    (folder / "README.md").write_text("# Guessing\n\nGuess the hidden number.\n\n```bash\nshinka_run ...\n```\n")
    task = get_task(str(folder))
    text = task.prompt(root_of(task))[0]["content"]
    assert "README.md begins:\n# Guessing\n\nGuess the hidden number.\n\n## Current solution" in text
    assert "shinka_run" not in text
    assert any("generic one with README.md's opening" in n for n in task.dry_run_notes())


def test_an_invalid_initial_program_writes_no_run_directory(tmp_path):
    from tests.test_reverify_best import AnswerPolicy
    from tttd.config import resolve_config
    from tttd.loop import Discovery

    cfg = resolve_config(flag_values=dict(task=str(PROBLEMS / "oe_metrics"), task_options={"metric": "nope"},
                                          steps=1, groups=1, group_size=1, workers=1))
    run = Discovery(cfg, tmp_path / "run", policy=AnswerPolicy("x"))
    with pytest.raises(TaskOptionError, match="no metric 'nope'"):
        run.start()
    assert not (tmp_path / "run").exists()


def test_rescored_run_keeps_means_in_the_archive_and_best_json(tmp_path):
    from tests.test_reverify_best import AnswerPolicy
    from tttd.config import resolve_config
    from tttd.loop import Discovery

    cfg = resolve_config(flag_values=dict(task=str(PROBLEMS / "oe_noisy"), task_options={"rescore": 3},
                                          steps=1, groups=1, group_size=2, workers=2))
    run = Discovery(cfg, tmp_path / "run", policy=AnswerPolicy("```python\ndef level():\n    return 5.0\n```"))
    run.start()
    run.run()
    best = json.loads((tmp_path / "run" / "best" / "best.json").read_text())
    assert 5 <= best["value"] < 6 and "mean of 3 evaluations; sd" in best["message"]
    assert "--task-option rescore=3" in best["verify"]
    states = json.loads((tmp_path / "run" / "archive.json").read_text())
    children = [n["state"] for n in states["states"] if n["state"].get("parent_id")]
    assert children
    for s in children:
        stats = s["metrics"]["evaluator"]["rescore"]
        assert stats["runs"] == 3 and s["value"] == pytest.approx(sum(stats["values"]) / 3)


def test_negative_scores_need_min_score(tmp_path):
    folder = tmp_path / "neg"
    shutil.copytree(PROBLEMS / "oe_guess", folder)
    ev_file = folder / "evaluator.py"
    ev_file.write_text(ev_file.read_text().replace("max(0.0, 10.0 - abs(g - TARGET))", "10.0 - abs(g - TARGET)"))
    task = get_task(str(folder))
    root = root_of(task)
    ev = score(task, root, "```python\ndef guess():\n    return 30.0\n```")  # 10 - 23 < 0
    assert not ev.valid and "below min_score 0" in ev.message and "--task-option min_score" in ev.message
    lenient = get_task(str(folder), min_score=-100)
    assert score(lenient, root_of(lenient), "```python\ndef guess():\n    return 30.0\n```").value == -13.0
