import numpy as np
import pytest

from tttd.registry import get_task
from tttd.tasks.demo import digit_overlap


def overlap_by_hand(digits):
    h = [(int(c) + 0.5) / 10 for c in digits]
    m = sum(h) / len(h)
    h = [x - m + 0.5 for x in h]
    n = len(h)
    best = -1.0
    for k in range(-(n - 1), n):  # all shifts of the full cross-correlation
        s = sum(h[i] * (1 - h[i - k]) for i in range(n) if 0 <= i - k < n)
        best = max(best, s)
    return best * 2 / n


def test_constant_function_scores_one_half():
    assert digit_overlap("55555555") == pytest.approx(0.5, abs=1e-15)
    assert digit_overlap("44444444") == pytest.approx(0.5, abs=1e-15)  # shifted to mean 1/2


@pytest.mark.parametrize("digits", ["01234567", "9081726354", "5544332211667788", "31415926535897932384"])
def test_matches_direct_formula(digits):
    assert digit_overlap(digits) == pytest.approx(overlap_by_hand(digits), rel=1e-12)


@pytest.mark.parametrize("digits, msg", [("1234", "need 8 to 48"), ("9" * 49, "need 8"),
                                         ("00000009", "leaves"), ("12a45678", "digits")])
def test_invalid_answers(digits, msg):
    with pytest.raises(ValueError, match=msg):
        digit_overlap(digits)


def test_parse_and_verify_path():
    task = get_task("demo")
    roots = task.initial_states(3, np.random.default_rng(0))
    assert len(roots) == 3 and all(r.value is not None for r in roots)
    cand = task.parse("answer: 4 6 5 3 7 5 4 6 5 and a claim that the overlap is zero", roots[0])
    ev = task.evaluate(cand, None, roots[0])
    assert ev.valid and ev.value == pytest.approx(digit_overlap("465375465"))  # 0.0 claim ignored
    assert ev.reward == pytest.approx(1 / ev.value)
    bad = task.evaluate(task.parse("no digits", roots[0]), None, roots[0])
    assert not bad.valid and bad.status == "parse_error" and bad.reward == 0.0
    msgs = task.prompt(roots[0])
    assert msgs[0]["role"] == "user" and f"{roots[0].value:.4f}" in msgs[0]["content"]
