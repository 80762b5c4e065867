"""AC1 and AC2: exact verifiers (FFT vs direct), validation, roots, prompt, parse, sandbox runs."""

from __future__ import annotations


import numpy as np
import pytest

from tttd.registry import get_task
from tttd.tasks._math import MAX_SEQUENCE_LEN, convolve, fft_convolve, max_convolution
from tttd.types import State

from ._helpers import data_params, load, run_code


def ac1_reference(a):
    """SPEC 5.2 written out with numpy's direct convolution."""
    a = np.clip(np.asarray(a, dtype=float), 0, 1000)
    return float(2 * len(a) * np.max(np.convolve(a, a)) / np.sum(a) ** 2)


def ac2_reference(a):
    """SPEC 5.3 as the paper's loop: piecewise-linear L2 on linspace(-0.5, 0.5, M + 2)."""
    a = np.clip(np.asarray(a, dtype=float), 0, 1000)
    c = np.convolve(a, a)
    x = np.linspace(-0.5, 0.5, len(c) + 2)
    y = np.concatenate(([0], c, [0]))
    l2 = 0.0
    for i in range(len(c) + 1):
        h = x[i + 1] - x[i]
        l2 += (h / 3) * (y[i] ** 2 + y[i] * y[i + 1] + y[i + 1] ** 2)
    l1 = np.sum(np.abs(c)) / (len(c) + 1)
    return float(l2 / (l1 * np.max(np.abs(c))))


@pytest.fixture(params=["ac1", "ac2"])
def task(request):
    return get_task(request.param, eval_timeout_s=50)


# ---- FFT vs direct ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_fft_convolution_agrees_with_direct_to_1e12(seed):
    rng = np.random.default_rng(seed)
    n, m = rng.integers(1, 6000, size=2)
    a = rng.uniform(0, 1, n) ** rng.uniform(0.5, 4)  # non-negative, varied shapes
    b = rng.uniform(0, 1, m)
    direct = np.convolve(a, b)
    fft = fft_convolve(a, b)
    assert fft.shape == direct.shape
    assert np.max(np.abs(fft - direct)) <= 1e-12 * np.max(np.abs(direct))
    top, _ = max_convolution(a, b)
    assert abs(top - direct.max()) <= 1e-12 * direct.max()
    assert np.allclose(convolve(a, b), direct, rtol=0, atol=1e-12 * direct.max())


def test_fft_maximum_is_refined_to_the_direct_one():
    rng = np.random.default_rng(11)
    a = rng.uniform(0, 1, 9000)  # 8.1e7 multiply-adds: the FFT path
    top, c = max_convolution(a, a)
    exact = np.convolve(a, a).max()
    assert abs(top - exact) <= 4 * np.finfo(float).eps * exact
    assert abs(c.max() - exact) <= 1e-12 * exact


# ---- published constructions -----------------------------------------------------------------


@pytest.mark.parametrize("path", data_params("ac1"))
def test_ac1_published_constructions(path):
    _check_file(get_task("ac1"), path)


@pytest.mark.parametrize("path", data_params("ac2"))
def test_ac2_published_constructions(path):
    _check_file(get_task("ac2"), path)


def _check_file(task, path):
    obj = load(path)
    data = task.load_construction(obj)
    ev = task.verify(data)  # its speed: benchmarks/verify_bench.py
    assert ev.valid, ev.message
    assert ev.value == pytest.approx(obj["value"], rel=1e-9, abs=0)
    assert ev.metrics["n"] == obj["n"]
    assert ev.reward == pytest.approx(task.objective.reward(obj["value"]), rel=1e-9)


# ---- formulas, validation --------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 50, 1500])
def test_values_match_the_paper_formulas(n):
    a = np.random.default_rng(n).uniform(0, 3, n).tolist()
    assert get_task("ac1").verify(a).value == pytest.approx(ac1_reference(a), rel=1e-12)
    assert get_task("ac2").verify(a).value == pytest.approx(ac2_reference(a), rel=1e-12)


@pytest.mark.parametrize(
    "data, why",
    [
        ([1.0, float("nan")], "non-finite"),
        ([1.0, float("-inf")], "non-finite"),
        ([], "empty"),
        ([1.0, True], "bool"),
        ([1.0, "2"], "real numbers"),
        ([1.0, None], "real numbers"),
        ([[1.0, 2.0], [3.0, 4.0]], "nested"),
        ((1.0, 2.0), "list of floats"),
        ({"a": [1.0]}, "list of floats"),
        (3.0, "list of floats"),
        ([0.001, 0.002], "at least 0.01"),
        ([-1.0, -2.0, 0.0], "at least 0.01"),  # clipped to zeros
        ([1.0] * (MAX_SEQUENCE_LEN + 1), "limit"),
        (np.ones((3, 3)), "flat"),
    ],
)
def test_bad_sequences_are_rejected_with_a_reason(task, data, why):
    ev = task.verify(data)
    assert not ev.valid and ev.reward == 0.0 and ev.value is None
    assert why in ev.message, ev.message


def test_entries_are_clipped_and_the_clipped_sequence_is_stored(task):
    ev = task.verify([-5.0, 1.0, 2000.0, 3.0])
    assert ev.valid and ev.metrics["clipped"] == 2 and "clipped" in ev.message
    assert ev.artifact["construction"] == [0.0, 1.0, 1000.0, 3.0]
    assert task.verify(ev.artifact["construction"]).value == ev.value


def test_archivable_range(task):
    assert task.verify([1.0] * 999).metrics["archivable"] is False
    assert task.verify([1.0] * 1000).metrics["archivable"] is True
    assert task.verify(np.ones(100_001)).metrics["archivable"] is False


def test_random_roots_are_constant_sequences(task):
    roots = task.initial_states(4, np.random.default_rng(5))
    assert [r.artifact for r in roots] == [r.artifact for r in task.initial_states(4, np.random.default_rng(5))]
    expected = 2.0 if task.name == "ac1" else 2.0 / 3.0
    for r in roots:
        a = r.artifact["construction"]
        assert 1000 <= len(a) <= 7999 and len(set(a)) == 1 and 0 < a[0] < 1
        assert r.value == pytest.approx(expected, rel=1e-9)
        assert r.artifact["code"] == "" and r.key


# ---- prompt and parse ------------------------------------------------------------------------


def test_prompt_and_parse(task):
    state = State(
        id="s", value=1.51, artifact={"code": "x = 1", "construction": [0.5] * 1200},
        parent_id="p", parent_values=[1.6], output_tail="done",
    )
    text = task.prompt(state, State(id="p", value=1.6))[0]["content"]
    assert "1.6000000000 -> 1.5100000000" in text and "height_sequence_1" in text
    assert "Construction length: 1200" in text and "done" in text and "x = 1" in text
    assert task.entry in text and "```python" in text
    cand = task.parse("```python\ndef f():\n    return [1.0]\n```", state)
    prog = cand.program
    assert prog.entry == ("propose_candidate" if task.name == "ac1" else "construct_function")
    assert prog.args == ({"budget_s": 45} if task.name == "ac1" else {})
    assert prog.source == "def f():\n    return [1.0]"
    np.testing.assert_array_equal(prog.inject["height_sequence_1"], np.full(1200, 0.5))
    assert task.parse("no code here", state).error == "no python code block"


# ---- programs in the sandbox -----------------------------------------------------------------


def test_injected_sequence_is_visible_to_the_program(task, sandbox_run):
    state = task.initial_states(1, np.random.default_rng(2))[0]
    signature = "propose_candidate(seed=42, budget_s=1000, **kw)" if task.name == "ac1" else "construct_function()"
    code = (
        "import numpy as np\n"
        f"def {signature}:\n"
        "    a = np.asarray(height_sequence_1, dtype=float).copy()\n"
        "    a[: len(a) // 2] *= 2.0\n"
        "    return a.tolist()\n"
    )
    ev, result = run_code(task, code, state, sandbox_run)
    assert result.ok, result.message + result.stderr
    expected = np.array(state.artifact["construction"])
    expected[: expected.size // 2] *= 2.0
    assert ev.valid, ev.message
    assert ev.artifact["construction"] == pytest.approx(expected.tolist(), rel=1e-15)
    ref = ac1_reference if task.name == "ac1" else ac2_reference
    assert ev.value == pytest.approx(ref(expected), rel=1e-12)
    assert ev.value != pytest.approx(state.value, rel=1e-6)


def test_a_program_returning_garbage_is_invalid(task, sandbox_run):
    state = task.initial_states(1, np.random.default_rng(2))[0]
    entry = "propose_candidate(**kw)" if task.name == "ac1" else "construct_function()"
    code = f"def {entry}:\n    return [float('nan')] * 2000\n"
    ev, _ = run_code(task, code, state, sandbox_run)
    assert not ev.valid and "non-finite" in ev.message


def test_sequence_keys_identify_constructions(task):
    a = np.random.default_rng(9).uniform(0, 1, 2000)
    ev = task.verify(a.tolist())
    assert task.verify(list(ev.artifact["construction"])).key == ev.key
    b = a.copy()
    b[17] += 1e-6
    assert task.verify(b.tolist()).key != ev.key
    assert task.verify(a[:-1].tolist()).key != ev.key
