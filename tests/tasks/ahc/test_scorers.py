"""The trusted scorers against hand-made outputs, one test per tester rule (AHC.md 1.4-1.5, 2.3-2.5)."""

import math

import pytest

from tttd.tasks.ahc import generate, score_case
from tttd.tasks.ahc.scorers import split_tokens


def fish(mackerels, sardines):
    """A small AHC039 input (the scorer reads N from the first line)."""
    assert len(mackerels) == len(sardines)
    pts = list(mackerels) + list(sardines)
    return f"{len(mackerels)}\n" + "".join(f"{x} {y}\n" for x, y in pts)


def poly(*pts):
    return f"{len(pts)}\n" + "".join(f"{x} {y}\n" for x, y in pts)


SQUARE = poly((0, 0), (10, 0), (10, 10), (0, 10))
IN1 = fish([(5, 5)], [(50, 50)])


def s39(out, inp=IN1):
    return score_case("ahc039", inp, out)


# ------------------------------------------------------------------ AHC039: tokens and parsing

def test_unicode_whitespace_separates_but_not_information_separators():
    assert split_tokens("1\u30002\u00a03\u20294\x0b5") == ["1", "2", "3", "4", "5"]
    assert split_tokens("1\x1c2") == ["1\x1c2"]
    out = SQUARE.replace("\n", "\u3000")
    assert s39(out).score == 2
    assert s39("4\x1c0 0 10 0 10 10 0 10").error == "Parse error: 4\x1c0"


@pytest.mark.parametrize("out, msg", [
    ("4.0 0 0 1 0 1 1 0 1", "Parse error: 4.0"),
    ("0x0", "Parse error: 0x0"),
    ("99999999999 0 0", "Parse error: 99999999999"),
    ("3 0 0 1 0 1 1", "Out of range: 3"),
    ("1001 0 0", "Out of range: 1001"),
    ("4 0 0 -1 0 1 1 0 1", "Out of range: -1"),
    ("4 0 0 100001 0 1 1 0 1", "Out of range: 100001"),
    ("4 0 0 99999999999999999999 0 1 1 0 1", "Parse error: 99999999999999999999"),
    ("4 0 0 1 0 1 1 0", "Unexpected EOF"),
    ("4 0 0 1 0 1 x", "Parse error: x"),
    (SQUARE + "4 0 0", "Unexpected EOF"),
])
def test_parse_errors(out, msg):
    got = s39(out)
    assert got.error == msg and got.score == 0


def test_signs_and_leading_zeros_parse():
    assert s39("+4 000 0 +10 0 10 010 0 10").score == 2


def test_empty_output_scores_one():
    assert s39("").score == 1 and s39("").ok
    assert s39(" \n\t\u3000").score == 1


def test_not_utf8():
    assert s39(b"4 0 0 \xff").error == "not utf-8"
    assert s39(SQUARE.encode()).score == 2


# ------------------------------------------------------------------ AHC039: geometry

def test_consecutive_duplicate_vertex():
    out = poly((0, 0), (10, 0), (10, 0), (10, 10), (0, 10))
    assert s39(out).error == "Two consecutive vertices share the same coordinates."


def test_doubling_back_is_self_intersecting():
    out = poly((0, 0), (10, 0), (5, 0), (5, 10), (0, 10))
    assert s39(out).error == "The polygon is self-intersecting."
    out = poly((0, 0), (0, 10), (0, 5), (5, 5), (5, 0))
    assert s39(out).error == "The polygon is self-intersecting."


def test_edge_not_parallel_to_axes():
    out = poly((0, 0), (10, 0), (11, 10), (0, 10))
    assert s39(out).error == "The 1-th edge is not parallel to the axes. ((10, 0) - (11, 10))"


def test_non_adjacent_edges_may_not_touch():
    # a figure eight through a shared corner, and a notch whose tip touches the opposite edge
    eight = poly((0, 0), (10, 0), (10, 10), (20, 10), (20, 20), (10, 20), (10, 10), (0, 10))
    assert s39(eight).error == "The polygon is self-intersecting."
    touch = poly((0, 0), (10, 0), (10, 10), (6, 10), (6, 0 + 0), (4, 0), (4, 10), (0, 10))
    assert s39(touch).error == "The polygon is self-intersecting."


def test_collinear_consecutive_vertices_are_allowed():
    out = poly((0, 0), (5, 0), (10, 0), (10, 10), (0, 10))
    assert s39(out).score == 2


def test_length_limit():
    full = poly((0, 0), (100000, 0), (100000, 100000), (0, 100000))
    assert s39(full).ok  # exactly 400000
    notch = poly((0, 0), (100000, 0), (100000, 100000), (60000, 100000), (60000, 10), (40000, 10),
                 (40000, 100000), (0, 100000))
    assert s39(notch).error == "The length is too long: 599980."


def test_edge_checks_come_before_the_pair_check_and_length():
    out = poly((0, 0), (100000, 0), (100000, 100000), (60000, 100000), (60000, 10), (40000, 10),
               (40000, 100000), (1, 100000))
    assert s39(out).error.startswith("The 7-th edge is not parallel")


def test_only_the_last_polygon_is_scored():
    bad_shape = poly((0, 0), (10, 0), (11, 10), (0, 10))  # parses, geometry never checked
    away = poly((40, 40), (60, 40), (60, 60), (40, 60))
    assert s39(bad_shape + SQUARE).score == 2
    assert s39(SQUARE + away).score == 0  # 0 mackerels, 1 sardine: max(0, -1 + 1)


# ------------------------------------------------------------------ AHC039: score

def test_inside_boundary_and_half_open_rule():
    sq = poly((10, 10), (20, 10), (20, 20), (10, 20))
    inside = [(15, 15), (10, 15), (20, 15), (15, 10), (15, 20), (10, 10), (20, 20)]  # interior, edges, corners
    outside = [(9, 15), (21, 15), (15, 9), (15, 21), (0, 0), (100000, 100000), (25, 25)]
    inp = fish(inside, outside)
    assert s39(sq, inp).score == len(inside) + 1
    inp = fish(outside, inside)
    assert s39(sq, inp).score == 0  # max(0, 0 - 7 + 1)


def test_l_shape_and_concave_region():
    # an L: the notch (15..20, 15..20) is outside, its boundary inside
    ell = poly((10, 10), (20, 10), (20, 15), (15, 15), (15, 20), (10, 20))
    mack = [(12, 12), (18, 12), (12, 18), (15, 17), (17, 15), (15, 15)]
    sard = [(18, 18), (17, 17), (19, 16), (16, 19), (30, 30), (0, 0)]
    assert s39(ell, fish(mack, sard)).score == 6 - 0 + 1


def test_generated_case_full_square_counts_everything():
    inp = generate("ahc039", 0)
    full = poly((0, 0), (100000, 0), (100000, 100000), (0, 100000))
    assert s39(full, inp).score == 1  # 5000 - 5000 + 1


# ------------------------------------------------------------------ AHC058

def input58(a=None, c=None):
    a = a or [1, 1, 2, 2, 3, 3, 10, 53, 62, 92]
    c = c or [[1] + [10] * 9, [100] * 10, [10**6] * 10, [10**9] * 10]
    return "10 4 500 1\n" + " ".join(map(str, a)) + "\n" + "".join(" ".join(map(str, r)) + "\n" for r in c)


IN58 = input58()


def s58(lines, inp=IN58):
    text = lines if isinstance(lines, (str, bytes)) else "\n".join(lines) + "\n"
    return score_case("ahc058", inp, text)


def test_all_nothing_scores_zero():
    got = s58(["-1"] * 500)
    assert got.ok and got.score == 0


def test_one_machine_score():
    # buy (0,0) at turn 0 for 1 apple; it then yields A0 * B * P = 1 apple per turn: S = 500
    got = s58(["0 0"] + ["-1"] * 499)
    assert got.ok and got.score == math.floor(100000 * math.log2(500) + 0.5)


def test_comments_blank_lines_and_carriage_returns_are_skipped():
    lines = ["# plan", "", "  0 0\r"] + ["-1 \r"] * 499
    assert s58(lines).score == s58(["0 0"] + ["-1"] * 499).score


def test_reading_stops_after_t_actions():
    assert s58(["-1"] * 500 + ["garbage here", "0 99"]).ok


@pytest.mark.parametrize("line, msg", [
    ("x", "Parse error: x"),
    ("4 0", "Out of range: 4"),
    ("-2", "Out of range: -2"),
    ("0 10", "Out of range: 10"),
    ("0 -1", "Parse error: -1"),
    ("0 -0", "Parse error: -0"),
    ("0", "Unexpected EOF"),
    ("0 1 2", "Too many tokens: 0 1 2"),
    ("-1 5", "Too many tokens: -1 5"),
    ("99999999999", "Parse error: 99999999999"),
    ("0 1.0", "Parse error: 1.0"),
])
def test_parse_errors_58(line, msg):
    got = s58([line] + ["-1"] * 499)
    assert got.error == msg and got.score == 0


def test_signed_level_and_plus_id():
    assert s58(["-0 +0"] + ["-1"] * 499).score == s58(["0 0"] + ["-1"] * 499).score


def test_not_enough_actions():
    assert s58(["-1"] * 499).error == "Not enough actions: expected 500, got 499"
    assert s58("").error == "Not enough actions: expected 500, got 0"


def test_not_enough_apples():
    got = s58(["-1", "0 1"] + ["-1"] * 498)
    assert got.error == "Not enough apples at turn 1: have 1, need 10"


def test_parse_errors_win_over_simulation_errors():
    got = s58(["0 1"] + ["-1"] * 498 + ["bad"])
    assert got.error == "Parse error: bad"


def test_non_positive_apples_at_the_end():
    inp = input58(c=[[1] + [10] * 9, [1] + [100] * 9, [10**6] * 10, [10**9] * 10])
    got = s58(["1 0"] + ["-1"] * 499, inp)  # spends the only apple on a machine that never pays
    assert got.error == "Non-positive apples at the end: 0"


def test_higher_levels_feed_the_level_below_one_turn_later():
    inp = input58(c=[[1] + [10] * 9, [1] + [100] * 9, [10**6] * 10, [10**9] * 10])
    # turn 0: buy (0,0) (cost 1, apples 0); +1 -> 1.  turn 1: buy (1,0) (cost 1, apples 0); level 0
    # produces with B[0][0] = 1 first (+1), then level 1 raises B[0][0] to 2.  turn t >= 2: +B, B += 1.
    apples, b = 1, 2
    for _ in range(2, 500):
        apples += b
        b += 1
    got = s58(["0 0", "1 0"] + ["-1"] * 498, inp)
    assert got.ok and got.score == math.floor(100000 * math.log2(apples) + 0.5)


def test_not_utf8_58():
    assert s58(b"-1\n\xfe\n").error == "not utf-8"


def test_unknown_problem():
    with pytest.raises(ValueError, match="unknown AHC problem"):
        score_case("ahc000", "", "")


def test_fast_inside_equals_the_brute_force_rule():
    """Random closed rectilinear paths on fish coordinates (many points on edges and vertices)."""
    import numpy as np

    from tttd.tasks.ahc.scorers import _fish039, _inside, _inside_reference

    mack, sard = _fish039(generate("ahc039", 5))
    pts = np.concatenate([mack, sard])
    rng = np.random.default_rng(0)
    for _ in range(40):
        k = int(rng.integers(2, 60))
        picks = pts[rng.integers(0, len(pts), size=2 * k)]
        xs, ys = picks[:k, 0], picks[k:, 1]
        verts = []
        for i in range(k):
            verts.append((xs[i], ys[i]))
            verts.append((xs[(i + 1) % k] if i + 1 < k else xs[0], ys[i]))
        poly = np.array(verts, dtype=np.int64)
        assert (_inside(pts, poly) == _inside_reference(pts, poly)).all()
