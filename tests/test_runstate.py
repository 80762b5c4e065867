"""Issue 32: one run state, committed and restored as a whole.

commit -> restore -> commit is byte-identical for every field on every backend's cadence (a policy
state each step, none for a frozen policy, a complete one every 2nd step as tinker's every-N); a
resume that steps back to an older complete policy state keeps the newest record (ledger, best,
scorer-guard counter): paid steps are never forgotten and the best never goes back, also before
the first complete policy state exists."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.fakes import FakeDigitPolicy
from tttd.config import resolve_config
from tttd.loop import Discovery
from tttd.rundir import POLICY_INCOMPLETE, RunDir, read_jsonl
from tttd.runstate import LOOP_VERSION, RunState, commit, restore

PER_STEP = 3 * 6


def _cfg(**kw):
    values = dict(task="demo", steps=3, groups=3, group_size=6, learning_rate=0.5, workers=1, seed=1)
    values.update(kw)
    return resolve_config(flag_values=values)


class EveryNth(FakeDigitPolicy):
    """Saves a complete state every ``n``-th step only, as the tinker backend (``save_every``)."""

    n = 2

    def __init__(self, **kw):
        super().__init__(**kw)
        self.saves = 0

    def save(self, path):
        super().save(path)
        self.saves += 1
        if self.saves % self.n:
            (Path(path) / POLICY_INCOMPLETE).write_text("x")


class Never(EveryNth):
    n = 10**6


def _latest_files(out: Path) -> dict[str, bytes]:
    d = RunDir(out).latest_step_dir()
    return {p.name: p.read_bytes() for p in (d / "archive.json", d / "loop.json")}


@pytest.mark.parametrize("cadence", ["every step", "frozen", "every 2nd"])
def test_commit_restore_commit_is_byte_identical(tmp_path, cadence):
    policy = {"every step": FakeDigitPolicy, "frozen": lambda: FakeDigitPolicy(trainable=False),
              "every 2nd": EveryNth}[cadence]
    steps = 2 if cadence == "every 2nd" else 3  # the last step's policy state complete
    out = tmp_path / "r"
    run = Discovery(_cfg(steps=steps), out, policy=policy())
    run.start()
    run.run()
    first = _latest_files(out)
    loop = json.loads(first["loop.json"])
    assert loop["version"] == LOOP_VERSION and set(loop) == {
        "version", "step", "ledger", "best", "scorer_errors", "notes", "policy"}
    again = Discovery(_cfg(steps=steps), out, policy=policy())
    again.restore()
    assert again.step == steps
    commit(again.dir, again.state, steps - 1, None if cadence == "frozen" else again.policy)
    second = _latest_files(out)
    assert second == first  # every field: archive (with its RNG), step, ledger, best, counters
    state = again.state
    assert RunState.from_loop(state.archive, state.to_loop(steps - 1, "policy")).to_loop(steps - 1, "policy") \
        == state.to_loop(steps - 1, "policy")


def test_stepping_back_keeps_every_paid_step(tmp_path):
    """A complete policy state every 2nd step: after 3 steps, a resume repeats step 2 (index 2)
    from step 1's state, and the ledger still counts the first attempt at it (before issue 32 it
    was read from step 1's checkpoint: 18 samples forgotten)."""
    out = tmp_path / "r"
    first = Discovery(_cfg(steps=3), out, policy=EveryNth())
    first.start()
    first.run()
    paid = first.ledger.samples
    assert paid == 3 * PER_STEP
    again = Discovery(_cfg(steps=4), out, policy=EveryNth())
    again.restore()
    assert again.step == 2 and again.ledger.samples == paid
    again.run()
    assert again.ledger.samples == 5 * PER_STEP  # steps 0, 1, 2, 2 again, 3: all paid
    assert [m["step"] for m in read_jsonl(out / "metrics.jsonl")] == [0, 1, 2, 3]


def test_best_and_spend_survive_a_restart_before_the_first_complete_policy_state(tmp_path):
    """No step has a complete policy state (tinker restarted before its first service save): the
    steps start over from the roots, but the best found and the spend are kept (before issue 32
    both were lost and best/ was overwritten by a worse one)."""
    out = tmp_path / "r"
    first = Discovery(_cfg(steps=2), out, policy=Never())
    first.start()
    first.run()
    best, paid = first.best.value, first.ledger.samples
    assert paid == 2 * PER_STEP and best is not None

    class Nothing(Never):  # the repeated steps find nothing
        def sample(self, prompts, n, params):
            groups = super().sample(prompts, n, params)
            for group in groups:
                for s in group:
                    s.text = "no digits"
            return groups

    again = Discovery(_cfg(steps=3), out, policy=Nothing())
    again.restore()
    assert again.step == 0 and again.best.value == best and again.ledger.samples == paid
    assert list(read_jsonl(out / "metrics.jsonl")) == []  # the steps are run again
    again.run()
    assert again.best.value == best
    assert json.loads((out / "best" / "best.json").read_text())["value"] == best
    assert again.ledger.samples == paid + 3 * PER_STEP


def test_the_scorer_guard_counter_survives_resume(tmp_path):
    from tttd.build import build_task
    from tttd.task_errors import ScorerErrorStop

    def buggy_task():
        task = build_task(_cfg())
        real = task.evaluate
        calls = []

        def evaluate(cand, result, start):
            calls.append(1)
            if len(calls) == 1:  # one scorer error per run of this task object
                raise RuntimeError("scorer bug")
            return real(cand, result, start)

        task.evaluate = evaluate
        return task

    out = tmp_path / "r"
    run = Discovery(_cfg(steps=1), out, task=buggy_task(), policy=FakeDigitPolicy())
    run.start()
    run.run()
    assert json.loads(_latest_files(out)["loop.json"])["scorer_errors"] == 1
    for steps, errors in ((2, 2), (3, None)):  # the third error (the limit) stops the run
        again = Discovery(_cfg(steps=steps), out, task=buggy_task(), policy=FakeDigitPolicy())
        again.restore()
        if errors is None:
            with pytest.raises(ScorerErrorStop, match="raised 3 times"):
                again.run()
        else:
            again.run()
            assert json.loads(_latest_files(out)["loop.json"])["scorer_errors"] == errors


def test_restore_refuses_a_damaged_newest_record(tmp_path):
    """The newest committed step is the record: a damaged one is refused, never skipped."""
    from tttd.rundir import NotARunError

    out = tmp_path / "r"
    run = Discovery(_cfg(steps=3), out, policy=EveryNth())
    run.start()
    run.run()
    latest = RunDir(out).latest_step_dir()
    (latest / "loop.json").write_text('{"step": 2}')
    with pytest.raises(NotARunError, match="damaged"):
        restore(RunDir(out), lambda: None)


def test_resume_with_fewer_steps_than_done_says_so(tmp_path):
    """Issue 32: ``tttd resume RUN --steps 1`` on a finished 3-step run said "already finished
    its 1 steps"; it says what was done."""
    from tttd.cli.resume import finished_message

    out = tmp_path / "r"
    run = Discovery(_cfg(steps=3), out, policy=FakeDigitPolicy())
    run.start()
    run.run()
    msg = finished_message(out, 1)
    assert "already done 3 steps, more than the 1 asked" in msg and "--steps N (N > 3)" in msg
    assert "already finished its 3 steps" in finished_message(out, 3)
    assert finished_message(out, 4) is None
