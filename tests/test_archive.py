"""Tests for tttd.archive: PUCT scores, selection with lineage blocking, updates, flush, persistence."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tttd.archive import Archive, puct_scores, rank_prior, value_scale
from tttd.types import State

SQ2 = math.sqrt(2.0)


def child(value, key=None, **kw) -> State:
    return State(id="", value=value, key=key, **kw)


def small_tree(**kw) -> tuple[Archive, State, State]:
    """r0 (1.0) with children a (3.0), b (2.0); r1 empty. One group recorded on r0."""
    arch = Archive(**kw)
    arch.add_roots([State(id="r0", value=1.0, key="k0"), State(id="r1", value=None)])
    a, b = arch.update("r0", [child(3.0, "ka"), child(2.0, "kb")], step=0)
    return arch, a, b


# ------------------------------------------------------------------------------------------
# Pure functions, hand-computed
# ------------------------------------------------------------------------------------------


def test_rank_prior_hand_values():
    # values 1, NaN, 3, 2 -> ranks 2, 3, 0, 1 -> P = (4 - rank) / 10
    np.testing.assert_allclose(rank_prior(np.array([1.0, np.nan, 3.0, 2.0])), [0.2, 0.1, 0.4, 0.3])
    # ties broken stably: the earlier state gets the better rank
    np.testing.assert_allclose(rank_prior(np.array([5.0, 5.0, 5.0])), [3 / 6, 2 / 6, 1 / 6])
    assert rank_prior(np.array([])).size == 0
    p = rank_prior(np.random.default_rng(0).normal(size=50))
    assert p.sum() == pytest.approx(1.0)


def test_value_scale():
    v = np.array([1.0, np.nan, 3.0, 2.0])
    roots = np.array([True, True, False, False])
    assert value_scale(v, roots) == 1.0  # non-roots only: 3 - 2
    assert value_scale(v, np.ones(4, bool)) == 2.0  # no non-roots: all non-NaN values
    assert value_scale(np.array([4.0, 4.0]), np.array([False, False])) == 1e-6  # floored
    assert value_scale(np.array([np.nan]), np.array([True])) == 1e-6


def test_puct_scores_hand_values():
    # the small tree: r0 (1, best child 3, n=1), r1 empty (n=0), a (3), b (2); T = 1
    v = np.array([1.0, np.nan, 3.0, 2.0])
    m = np.array([3.0, np.nan, np.nan, np.nan])
    n = np.array([1.0, 0.0, 0.0, 0.0])
    roots = np.array([True, True, False, False])
    s = puct_scores(v, m, n, roots, total=1, c=1.0)
    # scale = 1; P = [0.2, 0.1, 0.4, 0.3]; sqrt(1 + T) = sqrt 2
    assert s[0] == pytest.approx(3.0 + 0.2 * SQ2 / 2)  # Q = best child 3
    assert s[2] == pytest.approx(3.0 + 0.4 * SQ2)
    assert s[3] == pytest.approx(2.0 + 0.3 * SQ2)
    # the empty root sits below every real state
    assert s[1] < s[[0, 2, 3]].min()
    # c scales the exploration term only
    s0 = puct_scores(v, m, n, roots, total=1, c=0.0)
    np.testing.assert_allclose(s0[[0, 2, 3]], [3.0, 3.0, 2.0])


def test_puct_empty_roots_order_by_exploration_and_never_outrank():
    # real state with a terrible value, many visits; two empty roots with different visits
    v = np.array([np.nan, -100.0, np.nan])
    m = np.full(3, np.nan)
    n = np.array([5.0, 50.0, 0.0])
    roots = np.array([True, True, True])
    s = puct_scores(v, m, n, roots, total=100, c=10.0)
    assert s[1] > s[0] and s[1] > s[2]
    # among empty roots, exploration decides: index 2 (n=0, P=1/6) vs index 0 (n=5, P=2/6)
    e0 = 10 * 1e-6 * (2 / 6) * math.sqrt(101) / 6  # scale floored: only one real value
    e2 = 10 * 1e-6 * (1 / 6) * math.sqrt(101) / 1
    assert (s[2] > s[0]) == (e2 > e0)
    # with no real state at all, the score is the exploration term
    s = puct_scores(np.array([np.nan, np.nan]), np.full(2, np.nan), np.array([3.0, 0.0]),
                    np.array([True, True]), total=3)
    np.testing.assert_allclose(s, [1e-6 * (2 / 3) * 2 / 4, 1e-6 * (1 / 3) * 2 / 1])


def test_puct_scores_validation():
    with pytest.raises(ValueError, match="one length"):
        puct_scores(np.zeros(2), np.zeros(3), np.zeros(2), np.zeros(2, bool), 0)
    with pytest.raises(ValueError, match="only roots"):
        puct_scores(np.array([np.nan]), np.array([np.nan]), np.zeros(1), np.zeros(1, bool), 0)


# ------------------------------------------------------------------------------------------
# Updates
# ------------------------------------------------------------------------------------------


def test_update_assigns_lineage_and_stats():
    arch, a, b = small_tree()
    assert (a.id, b.id) == ("s000000", "s000001")
    assert a.parent_id == "r0" and a.ancestors == ["r0"] and a.parent_values == [1.0] and a.step == 0
    assert arch.visits("r0") == 1 and arch.total == 1
    assert arch.best_child_value("r0") == 3.0
    (c,) = arch.update(a.id, [child(5.0, "kc"), None, None], step=1)
    assert c.ancestors == [a.id, "r0"] and c.parent_values == [3.0, 1.0] and c.step == 1
    # group counting: +1 for the parent and every ancestor, +1 for T
    assert arch.visits(a.id) == 1 and arch.visits("r0") == 2 and arch.total == 2
    assert arch.failures(a.id) == 2 and arch.stats()["failures"] == 2
    assert arch.best() is arch.get(c.id)
    # the caller's State is not mutated
    src = child(4.0, "kd")
    arch.update(c.id, [src], step=2)
    assert src.id == "" and src.parent_id is None


def test_update_from_empty_root_has_no_parent_values():
    arch, _, _ = small_tree()
    (x,) = arch.update("r1", [child(0.5)], step=0)
    assert x.parent_values == [] and x.ancestors == ["r1"]


def test_rollout_counting_matches_reference():
    arch, a, _ = small_tree(visit_counting="rollout")
    assert arch.visits("r0") == 2 and arch.total == 2  # two rollouts in the first group
    arch.update(a.id, [child(4.0), None, None], step=1)
    assert arch.visits(a.id) == 3 and arch.visits("r0") == 5 and arch.total == 5


def test_dedup_by_key_still_updates_stats():
    arch, a, _ = small_tree()
    added = arch.update("r0", [child(9.0, "ka"), child(8.0, "new"), child(7.0, "new")], step=1)
    assert [s.value for s in added] == [8.0]  # "ka" exists; second "new" duplicates the first
    assert arch.last_added == [None, added[0].id, None]
    arch.update("r0", [None, child(6.0, "newer")], step=1)
    assert arch.last_added == [None, arch.states[-1].id]
    assert arch.best_child_value("r0") == 9.0  # the duplicate still counted for m
    assert arch.visits("r0") == 3 and arch.stats()["duplicates"] == 2
    # a child equal to a root's artifact is a duplicate too
    assert arch.update(a.id, [child(1.0, "k0")], step=1) == []
    # keyless children are never deduplicated
    assert len(arch.update(a.id, [child(1.0), child(1.0)], step=1)) == 2


def test_update_errors():
    arch, _, _ = small_tree()
    with pytest.raises(KeyError, match="not in the archive"):
        arch.update("nope", [child(1.0)], step=0)
    with pytest.raises(ValueError, match="empty"):
        arch.update("r0", [], step=0)
    with pytest.raises(ValueError, match="finite value"):
        arch.update("r0", [child(None)], step=0)
    with pytest.raises(ValueError, match="finite value"):
        arch.update("r0", [child(float("nan"))], step=0)
    with pytest.raises(KeyError, match="no state"):
        arch.get("nope")


def test_add_roots_validation_and_id_collisions():
    arch = Archive()
    with pytest.raises(ValueError, match="has a parent"):
        arch.add_roots([State(id="x", value=1.0, parent_id="y")])
    with pytest.raises(ValueError, match="non-finite"):
        arch.add_roots([State(id="x", value=float("inf"))])
    arch.add_roots([State(id="s000000", value=1.0)])
    with pytest.raises(ValueError, match="already"):
        arch.add_roots([State(id="s000000", value=2.0)])
    (c,) = arch.update("s000000", [child(2.0)], step=0)
    assert c.id == "s000001"  # skips the id a root already uses


def test_constructor_validation():
    for kw in ({"reuse": "ucb"}, {"visit_counting": "token"}, {"c": -1}, {"topk_children": 0},
               {"max_size": 0}):
        with pytest.raises(ValueError):
            Archive(**kw)


def test_minimize_orients_values():
    arch = Archive(maximize=False)
    arch.add_roots([State(id="r", value=0.5)])
    arch.update("r", [child(0.4, "a"), child(0.45, "b"), child(0.6, "c")], step=0)
    assert arch.best().value == 0.4
    assert arch.best_child_value("r") == 0.4
    arch.flush()  # top-2 children by (oriented) value: 0.4 and 0.45
    assert sorted(s.value for s in arch.states if s.parent_id) == [0.4, 0.45]
    assert arch.select(1)[0].value == 0.4


# ------------------------------------------------------------------------------------------
# Selection
# ------------------------------------------------------------------------------------------


def test_select_hand_tree():
    arch, a, b = small_tree()
    # scores: a 3.566, r0 3.141, b 2.424, r1 (empty) last; picking a blocks r0
    assert arch.scores()["s000000"] == pytest.approx(3.0 + 0.4 * SQ2)
    assert [s.id for s in arch.select(1)] == [a.id]
    assert [s.id for s in arch.select(2)] == [a.id, b.id]
    assert [s.id for s in arch.select(3)] == [a.id, b.id, "r1"]
    # blocking leaves 3 distinct states: the batch is filled by cycling the picks in order
    assert [s.id for s in arch.select(5)] == [a.id, b.id, "r1", a.id, b.id]


def test_select_blocks_descendants_and_ancestors():
    arch = Archive()
    arch.add_roots([State(id="r", value=0.0)])
    (a,) = arch.update("r", [child(1.0)], step=0)
    (c,) = arch.update(a.id, [child(10.0)], step=1)
    # c is the best; it blocks a and r: the whole chain gives one distinct pick
    assert [s.id for s in arch.select(3)] == [c.id] * 3


def test_select_blocks_descendants_when_intermediate_state_was_evicted():
    arch = Archive(max_size=3, topk_children=None)
    arch.add_roots([State(id="r", value=0.0), State(id="q", value=-5.0)])
    (a,) = arch.update("r", [child(-1.0)], step=0)  # weak intermediate
    (c,) = arch.update(a.id, [child(10.0)], step=1)
    arch.flush()  # cap 3: both roots + c; a is evicted
    assert a.id not in arch and c.id in arch
    picks = arch.select(3)
    ids = [s.id for s in picks]
    assert ids[0] == c.id and "r" not in ids  # r is still an ancestor of c
    assert ids == [c.id, "q", c.id]


def test_select_greedy_and_none():
    arch, a, b = small_tree(reuse="greedy")
    assert [s.id for s in arch.select(4)] == [a.id, b.id, "r0", "r1"]
    assert [s.id for s in arch.select(6)] == [a.id, b.id, "r0", "r1", a.id, b.id]
    arch, _, _ = small_tree(reuse="none")
    assert [s.id for s in arch.select(5)] == ["r0", "r1", "r0", "r1", "r0"]


def test_select_errors():
    with pytest.raises(ValueError, match="empty"):
        Archive().select(1)
    arch, _, _ = small_tree()
    with pytest.raises(ValueError, match="k must be"):
        arch.select(0)


def test_empty_roots_never_outrank_real_states():
    arch = Archive()
    arch.add_roots([State(id=f"e{i}", value=None) for i in range(4)] + [State(id="x", value=-1e9)])
    ids = [s.id for s in arch.select(5)]
    assert ids[0] == "x" and sorted(ids[1:]) == ["e0", "e1", "e2", "e3"]
    # before any real state exists, empty roots are ordered by the exploration term (visits)
    arch = Archive()
    arch.add_roots([State(id=f"e{i}", value=None) for i in range(3)])
    arch.update("e0", [None], step=0)
    # P (ties stable) = [3, 2, 1] / 6; T = 1; n = [1, 0, 0]: E = [.354, .471, .236] * scale
    assert [s.id for s in arch.select(3)] == ["e1", "e0", "e2"]


# ------------------------------------------------------------------------------------------
# Flush: top-k children, size cap
# ------------------------------------------------------------------------------------------


def test_flush_topk_children_preserves_order():
    arch = Archive(topk_children=2)
    arch.add_roots([State(id="r", value=0.0)])
    kids = arch.update("r", [child(v) for v in (1.0, 5.0, 3.0, 5.0, 4.0)], step=0)
    arch.flush()
    kept = [s for s in arch.states if s.parent_id == "r"]
    assert [s.id for s in kept] == [kids[1].id, kids[3].id]  # the two 5.0s; ties by age
    assert arch.stats()["evicted"] == 3


def test_flush_cap_keeps_all_roots():
    arch = Archive(max_size=5, topk_children=None)
    arch.add_roots([State(id=f"r{i}", value=-10.0 - i) for i in range(3)])
    values = [1.0, 7.0, 3.0, 6.0, 2.0, 0.0]
    kids = arch.update("r0", [child(v) for v in values], step=0)
    arch.flush()
    assert [s.id for s in arch.states] == ["r0", "r1", "r2", kids[1].id, kids[3].id]
    # roots alone above the cap: all roots are still kept
    arch = Archive(max_size=2)
    arch.add_roots([State(id=f"r{i}", value=float(i)) for i in range(4)])
    arch.update("r0", [child(100.0)], step=0)
    arch.flush()
    assert [s.id for s in arch.states] == ["r0", "r1", "r2", "r3"]


def test_evicted_key_can_return():
    arch = Archive(topk_children=1)
    arch.add_roots([State(id="r", value=0.0)])
    arch.update("r", [child(2.0, "x"), child(1.0, "y")], step=0)
    arch.flush()  # "y" evicted
    assert len(arch.update("r", [child(1.5, "y")], step=1)) == 1


# ------------------------------------------------------------------------------------------
# Persistence
# ------------------------------------------------------------------------------------------


def test_save_load_roundtrip(tmp_path):
    arch, a, _ = small_tree(maximize=False, c=0.5, visit_counting="rollout", seed=7)
    arch.update(a.id, [child(0.5, "z", metrics={"m": [1, 2]}, artifact={"code": "x"}), None], 1)
    arch.rng.random(3)  # advance the rng: its state must round-trip too
    path = tmp_path / "sub" / "archive.json"
    arch.save(path)
    assert os.listdir(path.parent) == ["archive.json"]  # no temp file left behind
    loaded = Archive.load(path)
    assert loaded.dumps() == path.read_text()
    assert loaded.rng.random() == arch.rng.random()
    assert [s.to_dict() for s in loaded.states] == [s.to_dict() for s in arch.states]
    assert loaded.visits("r0") == arch.visits("r0") and loaded.total == arch.total
    assert loaded.best_child_value("r0") == arch.best_child_value("r0")
    assert [s.id for s in loaded.select(3)] == [s.id for s in arch.select(3)]


def test_from_dict_rejects_unknown_format():
    arch, _, _ = small_tree()
    d = arch.to_dict()
    d["format"] = 99
    with pytest.raises(ValueError, match="format"):
        Archive.from_dict(d)


# ------------------------------------------------------------------------------------------
# Property tests over random trees and updates
# ------------------------------------------------------------------------------------------

ops_st = st.lists(
    st.tuples(
        st.integers(1, 6),  # groups selected
        st.lists(  # per group: list of child values (None = failed rollout)
            st.lists(st.one_of(st.none(), st.integers(-5, 5).map(float)), min_size=1, max_size=4),
            min_size=1,
            max_size=6,
        ),
    ),
    min_size=1,
    max_size=8,
)


def run_ops(ops, n_roots, empty_roots, max_size, counting, reuse="puct"):
    arch = Archive(max_size=max_size, visit_counting=counting, reuse=reuse, seed=3)
    roots = [State(id=f"root{i}", value=None if i < empty_roots else float(i)) for i in range(n_roots)]
    arch.add_roots(roots)
    trace = []
    for step, (k, groups) in enumerate(ops):
        picks = arch.select(k)
        trace.append([s.id for s in picks])
        check_selection(arch, picks, k)
        for g, values in enumerate(groups):
            parent = picks[g % len(picks)]
            kids = [None if v is None else child(v, key=f"{v}:{step % 3}") for v in values]
            arch.update(parent.id, kids, step=step)
        arch.flush()
        assert {r.id for r in roots} <= {s.id for s in arch.states}
        assert len(arch) <= max(max_size, n_roots)
    return arch, trace


def check_selection(arch, picks, k):
    assert len(picks) == k
    distinct = list(dict.fromkeys(s.id for s in picks))
    states = {s.id: s for s in arch.states}
    # distinct picks form an antichain
    for i in distinct:
        for j in distinct:
            if i != j:
                assert i not in states[j].ancestors
    # the batch was filled by cycling only when blocking left no other state
    if len(distinct) < k:
        assert [s.id for s in picks] == [distinct[i % len(distinct)] for i in range(k)]
        for s in arch.states:
            blocked = s.id in distinct or any(s.id in states[p].ancestors for p in distinct) or any(
                a in distinct for a in s.ancestors
            )
            assert blocked, f"{s.id} was free but the batch was filled by reuse"


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops_st, st.integers(1, 4), st.integers(0, 2), st.integers(3, 12),
       st.sampled_from(["group", "rollout"]))
def test_random_trees_invariants(ops, n_roots, empty_roots, max_size, counting):
    run_ops(ops, n_roots, min(empty_roots, n_roots), max_size, counting)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops_st, st.integers(1, 4), st.sampled_from(["group", "rollout"]))
def test_random_trees_determinism_and_byte_stable_save(tmp_path_factory, ops, n_roots, counting):
    a1, t1 = run_ops(ops, n_roots, 1, 10, counting)
    a2, t2 = run_ops(ops, n_roots, 1, 10, counting)
    assert t1 == t2 and a1.dumps() == a2.dumps()
    path = tmp_path_factory.mktemp("arch") / "a.json"
    a1.save(path)
    first = path.read_bytes()
    loaded = Archive.load(path)
    loaded.save(path)
    assert path.read_bytes() == first
    # the loaded archive continues exactly like the original
    assert [s.id for s in loaded.select(3)] == [s.id for s in a1.select(3)]
    p = a1.select(1)[0].id
    assert [s.to_dict() for s in loaded.update(p, [child(9.0)], 99)] == [
        s.to_dict() for s in a1.update(p, [child(9.0)], 99)
    ]
    assert loaded.dumps() == a1.dumps()


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-100, 100), min_size=1, max_size=30),
       st.lists(st.integers(0, 5), min_size=30, max_size=30), st.integers(0, 50))
def test_puct_scores_properties(values, visits, total):
    v = np.array(values)
    nv = v.size
    n = np.array(visits[:nv], dtype=float)
    roots = np.zeros(nv, bool)
    roots[0] = True
    s = puct_scores(v, np.full(nv, np.nan), n, roots, total)
    # with no children, score >= own value, and the exploration bonus shrinks with visits
    assert np.all(s >= v)
    s_more = puct_scores(v, np.full(nv, np.nan), n + 1, roots, total)
    assert np.all(s_more <= s)


def test_valid_unarchivable_child_updates_statistics_and_is_not_a_failure():
    """Issue 15 / SPEC 3.3: statistics first, then the filters. A valid child over the task's
    archive limits raises its parent's best-child value, counts no failure, and is not added."""
    a = Archive(maximize=True)
    a.add_roots([State(id="r", value=1.0)])
    big = State(id="", value=5.0, metrics={"archivable": False})
    ok = State(id="", value=2.0, key="k")
    added = a.update("r", [big, ok, None], step=0)
    assert [s.value for s in added] == [2.0]
    assert a.last_added[0] is None and a.last_added[1] is not None and a.last_added[2] is None
    assert a.best_child_value("r") == 5.0
    assert a.failures("r") == 1  # only the None
    assert a.stats()["unarchivable"] == 1 and a.stats()["failures"] == 1
    assert len(a) == 2


def test_loop_passes_unarchivable_children_to_the_archive():
    from tttd.step_parts import child_state
    from tttd.types import Evaluation

    ev = Evaluation(valid=True, value=3.0, reward=3.0, metrics={"archivable": False})
    child = child_state(ev)
    assert child is not None and child.metrics["archivable"] is False
    assert child_state(Evaluation(valid=False, value=None, reward=0.0)) is None


# ------------------------------------------------------------------------------------------
# Visit counting: per group (tttd's default) vs per rollout (the authors' code, paper preset)
# ------------------------------------------------------------------------------------------


def _bonus_after(visit_counting: str, steps: int, groups: int = 8, group_size: int = 64) -> tuple[float, float]:
    """(exploration bonus of the never-expanded state u after ``steps`` steps of ``groups`` groups
    of ``group_size`` failed rollouts on other roots, the same after u's first expansion)."""
    arch = Archive(visit_counting=visit_counting)
    roots = [State(id=f"r{i}", value=1.0 + i) for i in range(groups)]
    arch.add_roots(roots + [State(id="u", value=0.5)])
    for step in range(steps):
        for r in roots:
            arch.update(r.id, [None] * group_size, step)
    before = arch.scores()["u"] - 0.5  # Q(u) = its own value while it has no valid child
    arch.update("u", [None] * group_size, steps)
    after = arch.scores()["u"] - 0.5
    return before, after


def test_rollout_visit_counting_bonus_is_8x_larger_and_falls_65x_on_expansion():
    """DESIGN.md / issue 20: with 8 groups x 64 samples per step, per-rollout counting (the
    authors' code, whose G is forced to 1) makes T 64x larger, so an unexpanded state's bonus
    sqrt(1 + T) is ~8x larger; one expansion then divides it by ~65 (n: 0 -> 64), against ~2
    (n: 0 -> 1) when visits count groups."""
    g_before, g_after = _bonus_after("group", steps=5)
    r_before, r_after = _bonus_after("rollout", steps=5)
    assert r_before / g_before == pytest.approx(8.0, rel=0.02)
    assert g_before / g_after == pytest.approx(2.0, rel=0.05)
    assert r_before / r_after == pytest.approx(65.0, rel=0.02)
    # exactly the formula: T = 40 groups vs 2560 rollouts before the expansion
    assert r_before / g_before == pytest.approx(math.sqrt(1 + 2560) / math.sqrt(1 + 40))


def test_paper_preset_counts_visits_per_rollout_and_default_per_group():
    from tttd.config import RunConfig, resolve_config

    assert RunConfig().visit_counting == "group"
    assert resolve_config(preset="paper").visit_counting == "rollout"
    from tttd.tasks.erdos import ErdosTask

    assert resolve_config(task_presets=ErdosTask.presets, preset="paper").visit_counting == "rollout"


def test_keys_of_pruned_children_are_forgotten_at_flush_as_after_a_reload():
    """prune_children keeps the keys of the children it drops until flush (a copy sampled later
    in the same step is still a duplicate); flush forgets them even when it has nothing left to
    drop, as an archive loaded from disk does, so a resumed run dedups as the uninterrupted one."""
    arch = Archive(topk_children=1)
    arch.add_roots([State(id="r", value=None)])
    arch.update("r", [child(1.0, key="a"), child(2.0, key="b")], step=0)
    arch.prune_children("r")
    assert arch.update("r", [child(1.0, key="a")], step=0) == []  # still known within the step
    arch.flush()
    reloaded = Archive.from_dict(arch.to_dict())
    assert [s.key for s in arch.update("r", [child(1.0, key="a")], step=1)] == ["a"]
    assert [s.key for s in reloaded.update("r", [child(1.0, key="a")], step=1)] == ["a"]
