"""The max-cut toy: the exact verifier, the known optimum, parsing and the task protocol."""

import itertools

import numpy as np
import pytest

from tttd.registry import get_task
from tttd.tasks.maxcut import BEST_CUT, NODES, canonical, cut_fraction, graph


def cut_by_hand(digits):
    w = graph()
    side = [int(c) % 2 for c in digits[:NODES]]
    total = sum(w[i][j] for i, j in itertools.combinations(range(NODES), 2))
    crossing = sum(w[i][j] for i, j in itertools.combinations(range(NODES), 2) if side[i] != side[j])
    return crossing / total


def test_graph_is_fixed_and_symmetric():
    w = graph()
    assert w.shape == (NODES, NODES) and (w == w.T).all() and not w.diagonal().any()
    assert 60 <= (w > 0).sum() // 2 <= 130 and w.max() <= 9  # about half of the 190 pairs
    assert (graph() == w).all()


@pytest.mark.parametrize("digits", ["0" * 20, "01" * 10, "31415926535897932384", "00011100101111001001777"])
def test_matches_direct_formula(digits):
    assert cut_fraction(digits) == pytest.approx(cut_by_hand(digits), rel=1e-12)


def test_one_side_cuts_nothing_and_mirror_is_the_same_cut():
    assert cut_fraction("2" * 20) == 0.0
    d = "31415926535897932384"
    mirror = "".join(str((int(c) + 1) % 10) for c in d)
    assert cut_fraction(mirror) == pytest.approx(cut_fraction(d))
    assert canonical(mirror) == canonical(d) and canonical(d)[0] == "0"


def test_best_cut_is_the_optimum():
    """Exhaustive search over the 2^19 splits with node 0 on side 0 finds BEST_CUT, no more."""
    w = graph().astype(np.float64)
    total = w.sum() / 2
    best = -1.0
    for hi in range(2 ** 7):  # nodes 13..19 fixed per chunk, nodes 1..12 enumerated
        low = np.arange(2 ** 12)[:, None] >> np.arange(12) & 1
        high = np.broadcast_to((hi >> np.arange(7)) & 1, (2 ** 12, 7))
        s = np.concatenate([np.zeros((2 ** 12, 1), dtype=np.int64), low, high], axis=1)
        x = 1.0 - 2.0 * s
        q = np.einsum("ki,ij,kj->k", x, w, x)
        best = max(best, float(((total - q / 2) / 2).max()))
    assert best / total == pytest.approx(BEST_CUT, abs=1e-12)


@pytest.mark.parametrize("text, msg", [("123", "need 20"), ("", "need 20")])
def test_too_short_answers_are_invalid(text, msg):
    task = get_task("maxcut")
    root = task.initial_states(1, np.random.default_rng(0))[0]
    cand = task.parse(text, root)
    assert cand.error and msg in cand.error


def test_parse_verify_and_roots():
    task = get_task("maxcut")
    roots = task.initial_states(4, np.random.default_rng(0))
    assert len(roots) == 4 and all(0.0 < r.value < BEST_CUT for r in roots)
    cand = task.parse("answer: 0001110010 1111001001 trailing 55", roots[0])
    ev = task.evaluate(cand, None, roots[0])
    assert ev.valid and ev.value == pytest.approx(BEST_CUT) and ev.artifact == {"digits": "00011100101111001001"}
    assert not task.verify("x" * 20).valid
    assert "cut" in task.prompt(roots[0])[0]["content"]
