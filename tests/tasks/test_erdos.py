"""The Erdős minimum overlap task: exact verifier, roots, prompt, parse, and programs in the sandbox."""

from __future__ import annotations


import numpy as np
import pytest

from tttd.registry import get_task
from tttd.tasks._math import MAX_SEQUENCE_LEN
from tttd.types import State

from ._helpers import data_params, load, run_code


@pytest.fixture
def task():
    return get_task("erdos", eval_timeout_s=100)


def reference_c5(h):
    """SPEC 5.1 written out independently: rescale to sum n/2, max correlate(h, 1-h) * 2/n."""
    h = np.asarray(h, dtype=float)
    n = len(h)
    if h.sum() != n / 2:
        h = h * (n / 2) / h.sum()
    return float(np.max(np.correlate(h, 1 - h, mode="full")) * 2 / n)


@pytest.mark.parametrize("path", data_params("erdos"))
def test_published_constructions_verify_to_their_recorded_value(task, path):
    obj = load(path)
    ev = task.verify(task.load_construction(obj))  # its speed: benchmarks/verify_bench.py
    assert ev.valid, ev.message
    assert ev.value == pytest.approx(obj["value"], rel=1e-9, abs=0)
    assert ev.reward == pytest.approx(1 / obj["value"], rel=1e-9)
    # the stored construction re-verifies to the same value
    again = task.verify(ev.artifact["construction"])
    assert again.value == pytest.approx(ev.value, rel=1e-12) and again.key == ev.key


@pytest.mark.parametrize("n", [7, 100, 5000])  # 5000 takes the FFT path
def test_value_matches_the_formula_on_random_h(task, n):
    rng = np.random.default_rng(n)
    h = rng.uniform(0.05, 0.95, n)
    h = h * (n / 2) / h.sum()
    h = np.clip(h, 0, 1)
    ev = task.verify(h.tolist())
    assert ev.valid, ev.message
    assert ev.value == pytest.approx(reference_c5(h), rel=1e-12)


@pytest.mark.parametrize(
    "data, why",
    [
        ([0.5, float("nan"), 0.5], "non-finite"),
        ([0.5, float("inf"), 0.5], "non-finite"),
        ([0.5, -0.1, 0.6], "[0, 1]"),
        ([0.5, 1.2, 0.3], "[0, 1]"),
        ([], "empty"),
        ([[0.5, 0.5], [0.5, 0.5]], "nested"),
        ("0.5 0.5", "list of numbers"),
        ([0.5, "0.5"], "real numbers"),
        ([0.5, True], "bool"),
        ([0.5, None], "real numbers"),
        ({"x": [0.5]}, "keys"),
        ([0.0, 0.0, 0.0], "sum to 0"),
        ([1.0, 0.0, 0.0, 0.0], "exceeds 1"),  # sum 1 != 2: rescaled by 2, max becomes 2
        (([0.5, 0.5], 0.3, 3), "n_points"),
        ([0.5] * (MAX_SEQUENCE_LEN + 1), "limit"),
        (np.full(MAX_SEQUENCE_LEN + 1, 0.5), "limit"),
        (np.full((4, 4), 0.5), "1-D"),
    ],
)
def test_bad_constructions_are_rejected_with_a_reason(task, data, why):
    ev = task.verify(data)
    assert not ev.valid and ev.status == "invalid"
    assert ev.reward == 0.0 and ev.value is None
    assert why in ev.message, ev.message


def test_rescaled_h_is_stored_normalised(task):
    ev = task.verify([0.2] * 10)  # sum 2, not n/2 = 5: rescaled to 0.5 each
    assert ev.valid and ev.metrics["rescaled"]
    assert ev.artifact["construction"] == pytest.approx([0.5] * 10)
    assert ev.value == pytest.approx(reference_c5([0.5] * 10))


def test_the_claimed_c5_is_reported_but_never_used(task):
    h = [0.5] * 20
    real = reference_c5(h)
    for form in [(h, 0.1, 20), [h, 0.1, 20], {"h_values": h, "c5_bound": 0.1, "n_points": 20}]:
        ev = task.verify(form)
        assert ev.valid
        assert ev.value == pytest.approx(real, rel=1e-12)
        assert ev.metrics["claimed"] == 0.1
        assert "claimed" in ev.message


def test_long_constructions_are_valid_but_not_archivable(task):
    ev = task.verify([0.5] * 1001)
    assert ev.valid and ev.metrics["archivable"] is False
    assert task.verify([0.5] * 1000).metrics["archivable"] is True


def test_random_roots_follow_the_paper_and_the_seed(task):
    roots = task.initial_states(6, np.random.default_rng(7))
    again = task.initial_states(6, np.random.default_rng(7))
    assert [r.artifact for r in roots] == [r.artifact for r in again]
    assert len({r.id for r in roots}) == 6
    for r in roots:
        h = np.array(r.artifact["construction"])
        assert 40 <= h.size <= 99
        assert h.min() >= 0.0 and h.max() <= 1.0 and h.std() > 0.1  # 0.5 + (u - mean u)
        assert h.sum() == pytest.approx(h.size / 2, rel=1e-12)
        assert r.value == pytest.approx(reference_c5(h), rel=1e-12)
        assert r.reward == pytest.approx(1 / r.value) and r.key and r.artifact["code"] == ""


def test_best_start_from_a_file(tmp_path):
    import json

    f = tmp_path / "h.json"
    f.write_text(json.dumps({"h": [0.0, 0.5, 1.0, 0.5]}))
    task = get_task("erdos", start_file=str(f))
    roots = task.initial_states(3, np.random.default_rng(0))
    assert all(r.artifact["construction"] == [0.0, 0.5, 1.0, 0.5] for r in roots)
    assert roots[0].value == pytest.approx(reference_c5([0.0, 0.5, 1.0, 0.5]))
    with pytest.raises(ValueError, match="start_file"):
        get_task("erdos", start="best")


def test_prompt_shows_values_rules_and_output_tail(task):
    parent = State(id="p", value=0.3812345678)
    state = State(
        id="s",
        value=0.3809876543,
        artifact={"code": "def run(**kw):\n    return [0.5], 0.5, 1", "construction": [0.5] * 600},
        parent_id="p",
        output_tail="x" * 1000 + "LAST-LINE",
    )
    msgs = task.prompt(state, parent)
    assert len(msgs) == 1 and msgs[0]["role"] == "user"
    text = msgs[0]["content"]
    assert "0.3812345678 -> 0.3809876543" in text
    assert "def run(**kw)" in text
    assert "initial_h_values" in text and "run(seed=42, budget_s=1000, **kwargs)" in text
    assert "run(budget_s=90)" in text and "```python" in text
    assert "LAST-LINE" in text and "truncated" in text and "x" * 501 not in text
    assert "Construction length: 600" in text
    assert task.prompt(state, parent) == msgs  # deterministic
    # the parent's value also comes from state.parent_values
    state.parent_values = [0.39]
    assert "0.3900000000 -> 0.3809876543" in task.prompt(state)[0]["content"]


def test_parse_builds_the_program_with_the_injected_construction(task):
    state = task.initial_states(1, np.random.default_rng(1))[0]
    none = task.parse("I have no idea.", state)
    assert none.error == "no python code block" and none.program is None
    cut = task.parse("```python\ndef run(**kw):\n    return [0.5], 0.5, 1\n", state)  # unterminated
    assert cut.error is None and cut.code.startswith("def run")
    two = task.parse("```python\nfirst = 1\n```\ntext\n```python\nsecond = 2\n```", state)
    assert two.code == "second = 2"
    prog = two.program
    assert prog.entry == "run" and prog.args == {"budget_s": 90}
    assert "second = 2" == prog.source  # nothing else goes into the candidate's process
    assert prog.limits.wall_s == 100 and prog.limits.threads == 2
    np.testing.assert_array_equal(prog.inject["initial_h_values"], state.artifact["construction"])
    empty = State(id="e", value=None, artifact={"code": "", "construction": None})
    assert task.parse("```python\nx = 1\n```", empty).program.inject == {}


def test_injected_construction_is_visible_to_the_program(task, sandbox_run):
    state = task.initial_states(1, np.random.default_rng(3))[0]
    code = (
        "import numpy as np\n"
        "def run(seed=42, budget_s=1000, **kwargs):\n"
        "    h = np.asarray(initial_h_values)[::-1]\n"
        "    return h.tolist(), 0.1, len(h)\n"
    )
    ev, result = run_code(task, code, state, sandbox_run)
    assert result.ok, result.message + result.stderr
    assert ev.valid, ev.message
    assert ev.artifact["construction"] == pytest.approx(state.artifact["construction"][::-1])
    assert ev.value == pytest.approx(reference_c5(state.artifact["construction"][::-1]), rel=1e-12)
    assert ev.metrics["claimed"] == 0.1  # the lie is reported, not used


def test_a_program_that_lies_about_its_score_is_not_believed(task, sandbox_run):
    state = task.initial_states(1, np.random.default_rng(4))[0]
    lie_invalid = "def run(seed=42, budget_s=1000, **kwargs):\n    return [2.0] * 50, 0.2, 50\n"
    ev, _ = run_code(task, lie_invalid, state, sandbox_run)
    assert not ev.valid and "[0, 1]" in ev.message and ev.reward == 0.0
    lie_value = "def run(seed=42, budget_s=1000, **kwargs):\n    return [0.5] * 50, 0.2, 50\n"
    ev, _ = run_code(task, lie_value, state, sandbox_run)
    assert ev.valid and ev.value == pytest.approx(reference_c5([0.5] * 50), rel=1e-12)
    assert ev.value > 0.45 and ev.metrics["claimed"] == 0.2
