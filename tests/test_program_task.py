"""tttd.ProgramTask, the objective checks, and OpenEvolve / ShinkaEvolve problem folders."""

from pathlib import Path

import numpy as np
import pytest

import tttd
from tttd.program_task import splice_evolve_block
from tttd.sandbox import run
from tttd.registry import UnknownTaskError, get_task
from tttd.task import Objective

ROOT = Path(__file__).resolve().parents[1]
PROBLEMS = ROOT / "tests" / "evolve_problems"


# ----------------------------------------------------------------------------- objectives

@pytest.mark.parametrize("kwargs, fragment", [
    (dict(direction="minimize", transform="negate"), "ranks above valid answers"),
    (dict(direction="minimize", transform="negate", bounds=(0, 10)), "ranks above valid answers"),
    (dict(direction="maximize", transform="identity", bounds=(None, None)), "unbounded below"),
    (dict(direction="maximize", transform="identity", bounds=(1.0, None), failure_reward=2.0), "ranks above"),
    (dict(direction="maximize", transform="reciprocal"), "does not fit direction"),
    (dict(direction="minimize", transform="identity"), "does not fit direction"),
    (dict(direction="minimize", transform="reciprocal", bounds=(-1, None)), "positive values"),
])
def test_objective_refuses_failure_rewards_that_outrank_valid_answers(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        Objective(**kwargs)


def test_objective_accepts_consistent_declarations():
    Objective("minimize", "negate", failure_reward=-10.0, bounds=(0, 10))
    Objective("minimize", "reciprocal")  # rewards 1/v > 0 = failure
    Objective("maximize", "identity", failure_reward=-1.0, bounds=(-1.0, None))
    assert Objective().worst_reward() == 0.0


def test_values_outside_declared_bounds_are_reported_invalid():
    task = tttd.ProgramTask(statement="x", score=lambda d: d, returns="a number", bounds=(0.0, 1.0))
    ev = task.evaluate(tttd.Candidate(text="", data=-0.5), None)
    assert not ev.valid and "outside the objective's declared bounds" in ev.message


# ----------------------------------------------------------------------------- ProgramTask

def _task(**kw):
    args = dict(statement="Return a big number.", score=float, returns="a float", initial_program=
                "def solve():\n    print('hello')\n    return 1.5\n", timeout_s=10)
    args.update(kw)
    return tttd.ProgramTask(**args)


def test_program_task_roots_prompt_parse_and_score():
    task = _task()
    roots = task.initial_states(3, np.random.default_rng(0))
    assert [r.value for r in roots] == [1.5] * 3 and roots[0].reward == 1.5
    assert roots[0].artifact["code"].startswith("def solve") and "hello" in roots[0].output_tail
    text = task.prompt(roots[0])[0]["content"]
    for piece in ("Return a big number.", "1.5", "higher is better", "def solve", "hello", "`solve()`"):
        assert piece in text
    child = tttd.State(id="c", value=2.0, artifact={"code": "x"}, parent_id="r")
    assert "1.5 -> 2" in task.prompt(child, roots[0])[0]["content"]  # parent's score shown
    assert task.parse("no code", roots[0]).error
    cand = task.parse("```python\ndef solve():\n    return 3\n```", roots[0])
    ev = task.evaluate(cand, run(cand.program), roots[0])
    assert ev.valid and ev.value == 3.0 and ev.artifact == {"result": 3, "code": cand.code}
    bad = task.parse("```python\ndef solve():\n    return 'nan'\n```", roots[0])
    ev = task.evaluate(bad, run(bad.program), roots[0])
    assert not ev.valid and "score()" in ev.message and ev.reward == 0.0
    # the re-verification of best/artifact.json: {"result": data} is unwrapped
    assert task.load_construction({"result": [1, 2]}) == [1, 2]


def test_program_task_checks_its_definition():
    with pytest.raises(ValueError, match="initial program is not valid"):
        _task(initial_program="def solve():\n    raise RuntimeError('nope')\n").initial_states(
            1, np.random.default_rng(0))
    with pytest.raises(ValueError, match="ranks above"):
        _task(direction="minimize", transform="negate")
    with pytest.raises(ValueError, match="entry"):
        _task(entry="not a name")
    empty = _task(initial_program="")
    assert empty.initial_states(1, np.random.default_rng(0))[0].value is None


def test_reverification_hands_score_the_same_types():
    import json

    def score(data):
        assert isinstance(data["a"], np.ndarray) and data["a"].dtype == np.int32, type(data["a"])
        return float(data["a"].sum())

    task = _task(score=score, initial_program="import numpy as np\ndef solve():\n"
                 "    return {'a': np.arange(4, dtype=np.int32), 'n': 4}\n")
    root = task.initial_states(1, np.random.default_rng(0))[0]
    assert root.value == 6.0
    stored = json.loads(json.dumps({"result": root.artifact["result"]}))  # as best/artifact.json
    again = task.verify(task.load_construction(stored))
    assert again.valid and again.value == 6.0


def test_minimize_defaults_to_the_reciprocal_reward():
    task = _task(direction="minimize")
    assert task.objective.transform == "reciprocal"
    assert task.verify(4.0).reward == 0.25


def test_evolve_block_splicing():
    parent = "import os\n# EVOLVE-BLOCK-START\ndef f():\n    return 1\n# EVOLVE-BLOCK-END\nx = f()\n"
    assert splice_evolve_block(parent, "def f():\n    return 2\n") == parent.replace("return 1", "return 2")
    marked = "junk\n# EVOLVE-BLOCK-START\ndef f():\n    return 3\n# EVOLVE-BLOCK-END\nos.system('x')\n"
    assert splice_evolve_block(parent, marked) == parent.replace("return 1", "return 3")
    assert splice_evolve_block("def f(): pass\n", "new\n") == "new\n"  # no block: whole program


def test_tsp_example_is_short_and_scores_tours():
    path = ROOT / "examples" / "tsp.py"
    assert len(path.read_text().splitlines()) < 40
    task = get_task(str(path))
    root = task.initial_states(1, np.random.default_rng(0))[0]
    assert task.objective.direction == "minimize" and 0 < root.value < 10
    assert task.verify(list(range(50))).valid
    assert not task.verify(list(range(49))).valid
    assert not task.verify([0.5] * 50).valid


@pytest.mark.slow
def test_tsp_example_runs_end_to_end_on_the_tiny_model(tiny_model_dir, tmp_path, monkeypatch, capsys):
    import json
    import shlex

    from tttd.cli import main

    monkeypatch.chdir(tmp_path)
    rc = main(["run", str(ROOT / "examples" / "tsp.py"), "--model", str(tiny_model_dir), "--steps", "2",
               "--groups", "2", "--group-size", "2", "--max-tokens", "48", "--workers", "1",
               "--out", "r", "--json", "-q"])
    assert rc == 0
    best = json.loads((tmp_path / "r" / "best" / "best.json").read_text())
    roots = get_task(str(ROOT / "examples" / "tsp.py")).initial_states(2, np.random.default_rng(0))
    assert best["value"] <= min(r.value for r in roots)  # never worse than where the run started
    capsys.readouterr()
    assert main([*shlex.split(best["verify"])[1:], "--json"]) == 0  # the printed command re-verifies it
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["valid"] and again["value"] == pytest.approx(best["value"], rel=1e-12)


# ----------------------------------------------------------------------------- imports

def test_openevolve_folder():
    task = get_task(str(PROBLEMS / "oe_guess"))
    root = task.initial_states(1, np.random.default_rng(0))[0]
    assert root.value == 6.0 and "guessed 3.0" in root.output_tail
    text = task.prompt(root)[0]["content"]
    assert "Guess the hidden number" in text  # config.yaml's prompt.system_message
    assert "EVOLVE-BLOCK-START" in text and "evaluator.py" in text
    cand = task.parse("```python\ndef guess():\n    return 6.5\n```", root)
    assert "def run():" in cand.code  # the code outside the block is kept
    ev = task.evaluate(cand, run(cand.program), root)
    assert ev.valid and ev.value == 9.5
    crash = task.parse("```python\ndef guess():\n    raise ValueError('x')\n```", root)
    ev = task.evaluate(crash, run(crash.program), root)
    assert not ev.valid and "reported an error" in ev.message  # {"combined_score": 0, "error": ...}


def test_shinka_folder():
    task = get_task(str(PROBLEMS / "shinka_guess"))
    root = task.initial_states(1, np.random.default_rng(0))[0]
    assert root.value == 6.0
    cand = task.parse("```python\ndef guess(seed):\n    return 7.0 + seed\n```", root)
    ev = task.evaluate(cand, run(cand.program), root)
    assert ev.valid and ev.value == 9.5  # mean guess 7.5 over seeds 0, 1
    wrong = task.parse("```python\ndef guess(seed):\n    return 'seven'\n```", root)
    ev = task.evaluate(wrong, run(wrong.program), root)
    assert not ev.valid and "incorrect" in ev.message


def test_not_a_problem_folder(tmp_path):
    with pytest.raises(UnknownTaskError, match="not a problem folder"):
        get_task(str(tmp_path))
