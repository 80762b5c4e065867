"""Streaming evaluation (issue 35, :mod:`tttd.streaming`): verdicts as programs finish, a group's
advantages when its last candidate is judged, the archive in group order whatever the timing."""

import concurrent.futures as cf
import dataclasses
import threading
import time

import numpy as np
import pytest

from tests.fakes import FakeDigitPolicy
from tttd.config import resolve_config
from tttd.loop import Discovery
from tttd.objective import combine_groups, group_advantages, one_group_advantages
from tttd.rundir import read_jsonl
from tttd.streaming import InOrder, finished_first
from tttd.tasks.demo import DigitOverlapTask

GROUPS, SIZE = 3, 4


def _done_later(delay: float, value) -> cf.Future:
    fut: cf.Future = cf.Future()
    threading.Timer(delay, fut.set_result, args=[value]).start()
    return fut


def test_finished_first_yields_in_completion_order_and_frees_entries():
    slow, fast = _done_later(0.4, "slow"), _done_later(0.05, "fast")
    pending = [[("a", slow), ("b", None)], [("c", fast)]]
    got = list(finished_first(pending, lambda f: None if f is None else f.result()))
    assert [(g, i, c, r) for g, i, c, r in got] == [(0, 1, "b", None), (1, 0, "c", "fast"), (0, 0, "a", "slow")]
    assert pending == [[None, None], [None]]


def test_finished_first_waits_for_other_objects_last_in_order():
    class Handle:  # not a concurrent.futures.Future: read in order, after the rest
        def __init__(self, v):
            self.v = v

    pending = [[("x", Handle(1))], [("y", _done_later(0.01, 2)), ("z", Handle(3))]]
    got = [(g, i, r) for g, i, _, r in finished_first(pending, lambda f: f.v if isinstance(f, Handle) else f.result())]
    assert got == [(1, 0, 2), (0, 0, 1), (1, 1, 3)]


def test_in_order_releases_a_group_only_after_the_groups_before_it():
    order = InOrder([2, 1, 0, 1])
    assert order.done(1) and list(order.release()) == []  # group 0 still running
    assert not order.done(0) and list(order.release()) == []
    assert order.done(0) and list(order.release()) == [0, 1, 2]  # 2 is empty: released with 1
    assert order.done(3) and list(order.release()) == [3] and list(order.release()) == []


def test_one_group_at_a_time_equals_all_groups_at_once():
    rng = np.random.default_rng(0)
    groups = [list(rng.normal(size=6)), [1.0, 1.0, 1.0], list(rng.normal(size=5))]
    exclude = [[2], [], [0, 4]]
    for est in ("entropic", "entropic-fixed", "mean"):
        whole = group_advantages(groups, estimator=est, beta=0.7, exclude=exclude)
        parts = combine_groups([one_group_advantages(g, r, est, 0.7, exclude[g]) for g, r in enumerate(groups)])
        assert parts.kept == whole.kept == 2 and parts.dropped == whole.dropped == [1]
        assert parts.betas == whole.betas and parts.excluded == whole.excluded
        for a, b in zip(parts.advantages, whole.advantages):
            assert (a is None and b is None) or np.array_equal(a, b)
    with pytest.raises(ValueError, match="group 2"):
        one_group_advantages(2, [float("nan"), 1.0])


class TimedDemo(DigitOverlapTask):
    """The demo task whose candidates "run" on a timer: every candidate of group ``slow`` takes
    ``slow_s``, the others ``fast_s``. Records when each group's verdicts were made."""

    def __init__(self, slow: int, slow_s: float = 0.8, fast_s: float = 0.02):
        super().__init__()
        self.slow, self.slow_s, self.fast_s = slow, slow_s, fast_s
        self.launched = 0
        self.judged: list[tuple[float, int]] = []  # (time, group)
        self.finished: dict[int, float] = {}  # group -> when its last timer fired

    def parse(self, completion, state):
        cand = super().parse(completion, state)
        if cand.error is None:
            cand.program = "timer"  # so the loop launches it
        return cand

    def launch(self, candidate, submit, state=None):
        g = (self.launched // SIZE) % GROUPS
        self.launched += 1
        fut: cf.Future = cf.Future()

        def fire():
            self.finished[g] = time.monotonic()
            fut.set_result(g)

        threading.Timer(self.slow_s if g == self.slow else self.fast_s, fire).start()
        return fut

    def evaluate(self, candidate, result, state=None):
        if result is not None:
            self.judged.append((time.monotonic(), result))
        return super().evaluate(dataclasses.replace(candidate, program=None), None, state)


def _run(tmp_path, name, task):
    cfg = resolve_config(flag_values=dict(task="demo", steps=2, groups=GROUPS, group_size=SIZE, learning_rate=0.5,
                                          workers=1, seed=4))
    run = Discovery(cfg, tmp_path / name, task=task, policy=FakeDigitPolicy())
    run.start()
    run.run()
    return run


def test_a_slow_group_holds_back_neither_the_others_verdicts_nor_their_advantages(tmp_path):
    task = TimedDemo(slow=0)
    _run(tmp_path, "slow0", task)
    first_step = [(t, g) for t, g in task.judged][:GROUPS * SIZE]
    when = {g: [t for t, h in first_step if h == g] for g in range(GROUPS)}
    assert len(when[0]) == SIZE and len(when[1]) == SIZE
    # groups 1 and 2 were judged while group 0's programs were still running
    assert max(when[1] + when[2]) < min(when[0])
    assert [g for _, g in first_step[-SIZE:]] == [0] * SIZE


def test_the_archive_and_the_logs_do_not_depend_on_which_group_is_slow(tmp_path):
    """Same seed, same samples: with group 0, then group 2 the slow one, every archive id, value,
    parent, the best and the rollouts are the same (only the timing differs)."""
    runs = [_run(tmp_path, f"slow{g}", TimedDemo(slow=g, slow_s=0.3)) for g in (0, 2)]
    a, b = (r.archive for r in runs)
    assert [(s.id, s.value, s.parent_id) for s in a] == [(s.id, s.value, s.parent_id) for s in b]
    assert len(a) > GROUPS  # children joined
    assert runs[0].best.value == runs[1].best.value and runs[0].best.step == runs[1].best.step
    rows = [[{k: v for k, v in r.items() if not k.startswith("seconds")}
             for r in read_jsonl(run.dir.rollouts)] for run in runs]
    assert rows[0] == rows[1]
    # and group 2's verdicts really came last in the second run
    assert [g for _, g in runs[1].task.judged[:GROUPS * SIZE]][-SIZE:] == [2] * SIZE
