"""``--async-steps K`` (issue 35, :mod:`tttd.async_steps`) with the exact torch-free policy:
policy versions, selection lag, exact resume after a fault at every point, budgets, damage."""

import json
import signal
from pathlib import Path

import pytest

from tests.fakes import FakeDigitPolicy
from tests.fault_driver import assert_same_run, cli, metrics, one_line, run_args, spawn, wait_lines
from tttd.async_steps import INFLIGHT
from tttd.config import ConfigError, resolve_config
from tttd.faults import FaultInjected
from tttd.loop import Discovery
from tttd.rundir import NotARunError, read_jsonl

TIMING = ("seconds", "spend")


def _cfg(tmp_path, name, **kw):
    values = dict(task="demo", steps=5, groups=3, group_size=6, learning_rate=0.5, workers=1, seed=1)
    values.update(kw)
    return resolve_config(flag_values=values), tmp_path / name


class CountingPolicy(FakeDigitPolicy):
    """Records, for every sample call, how many updates the policy had seen."""

    def __init__(self):
        super().__init__()
        self.calls: list[int] = []

    def sample(self, prompts, n, params):
        self.calls.append(self.steps)
        return super().sample(prompts, n, params)


def _run(cfg, out, resume=False, policy=None):
    run = Discovery(cfg, out, policy=policy or FakeDigitPolicy())
    run.restore() if resume else run.start()
    return run.run()


def _strip(row):
    return {k: v for k, v in row.items() if not k.startswith(TIMING)}


@pytest.mark.parametrize("k", [1, 2])
def test_rollouts_record_the_stale_policy_that_sampled_them(tmp_path, k):
    cfg, out = _cfg(tmp_path, f"k{k}", async_steps=k)
    pol = CountingPolicy()
    summary = _run(cfg, out, policy=pol)
    assert summary["steps"] == 5 and summary["samples"] == 5 * 3 * 6
    rows = list(read_jsonl(out / "rollouts.jsonl"))
    want = {s: max(-1, s - 1 - k) for s in range(5)}
    assert {r["step"]: r["policy_version"] for r in rows} == want
    assert [m["policy_version"] for m in read_jsonl(out / "metrics.jsonl")] == [want[s] for s in range(5)]
    # the policy really was that old when it sampled: step s sampled after the updates of steps < s-K
    trained = [m["trained"] for m in read_jsonl(out / "metrics.jsonl")]
    assert pol.calls == [sum(trained[:max(0, s - k)]) for s in range(5)]
    assert pol.steps == sum(trained) >= 3


def test_synchronous_rollouts_are_on_policy(tmp_path):
    cfg, out = _cfg(tmp_path, "k0")
    pol = CountingPolicy()
    _run(cfg, out, policy=pol)
    assert {r["step"]: r["policy_version"] for r in read_jsonl(out / "rollouts.jsonl")} == {s: s - 1 for s in range(5)}
    trained = [m["trained"] for m in read_jsonl(out / "metrics.jsonl")]
    assert pol.calls == [sum(trained[:s]) for s in range(5)]
    assert "policy_version" not in next(read_jsonl(out / "metrics.jsonl"))  # metrics.jsonl as before
    assert INFLIGHT not in {p.name for p in (out / "checkpoint").rglob("*")}


def test_selection_uses_the_archive_of_the_last_completed_step(tmp_path):
    """Step s's parents were chosen before step s-K's children joined the archive: with K=1, no
    start of step s is a child made by step s-1."""
    cfg, out = _cfg(tmp_path, "sel", async_steps=1, reuse="greedy", steps=6)
    _run(cfg, out)
    rows = list(read_jsonl(out / "rollouts.jsonl"))
    made_at = {r["child"]: r["step"] for r in rows if r["child"]}
    parents = {(r["step"], r["parent"]) for r in rows}
    assert all(made_at.get(p, -10) <= s - 2 for s, p in parents)
    assert any(made_at.get(p, -10) == s - 2 for s, p in parents)  # greedy does pick the newest


@pytest.mark.parametrize("k", [1, 2])
@pytest.mark.parametrize("point", ["sample", "evaluate", "train", "checkpoint", "commit"])
def test_resume_after_a_fault_equals_uninterrupted(tmp_path, monkeypatch, k, point):
    cfg, ref = _cfg(tmp_path, "ref", async_steps=k)
    _run(cfg, ref)
    cfg2, out = _cfg(tmp_path, "crash", async_steps=k)
    monkeypatch.setenv("TTTD_FAULT", f"{point}:3:raise")
    with pytest.raises(FaultInjected):
        _run(cfg2, out)
    monkeypatch.delenv("TTTD_FAULT")
    _run(cfg2, out, resume=True)
    assert [_strip(r) for r in read_jsonl(out / "metrics.jsonl")] == [_strip(r) for r in read_jsonl(ref / "metrics.jsonl")]
    assert json.loads((out / "archive.json").read_text()) == json.loads((ref / "archive.json").read_text())
    assert list(read_jsonl(out / "rollouts.jsonl")) == list(read_jsonl(ref / "rollouts.jsonl"))


def test_async_differs_from_synchronous(tmp_path):
    """The option is not a no-op: the same seed gives other samples from step K+1 on."""
    cfg0, out0 = _cfg(tmp_path, "k0")
    cfg1, out1 = _cfg(tmp_path, "k1", async_steps=1)
    _run(cfg0, out0)
    _run(cfg1, out1)
    texts = [{r["step"]: [] for r in read_jsonl(o / "rollouts.jsonl")} for o in (out0, out1)]
    for t, o in zip(texts, (out0, out1)):
        for r in read_jsonl(o / "rollouts.jsonl"):
            t[r["step"]].append(r["completion"])
    assert texts[0][0] == texts[1][0]  # step 0: the same initial policy and roots
    assert any(texts[0][s] != texts[1][s] for s in range(2, 5))


@pytest.mark.parametrize("k", [1, 2])
def test_max_samples_stops_and_samples_nothing_beyond(tmp_path, k):
    per_step = 3 * 6
    cfg, out = _cfg(tmp_path, "cap", async_steps=k, steps=6, max_samples=2 * per_step + 5)
    pol = CountingPolicy()
    summary = _run(cfg, out, policy=pol)
    assert summary["samples"] == 2 * per_step and summary["stopped"].startswith("max_samples")
    assert len(pol.calls) == 2  # no step the cap stops was ever sampled (one call per step here)
    assert pol.usage().sampled_tokens == 2 * per_step * 12


@pytest.mark.parametrize("k", [1, 2])
def test_max_usd_stops_at_a_step_boundary_and_a_raised_cap_continues_exactly(tmp_path, k):
    """216 sampled tokens a step at $1000 per million: $0.216 a step's sampling. The steps sampled
    ahead are paid when sampled and kept in the checkpoint: the raised-cap resume evaluates them
    and ends as the uncapped run."""
    prices = {"local": {"sampled": 1000.0}}
    cfg, ref = _cfg(tmp_path, "ref", async_steps=k, prices=prices)
    _run(cfg, ref)
    cfg, out = _cfg(tmp_path, "usd", async_steps=k, max_usd=0.9, prices=prices)
    summary = _run(cfg, out)
    assert "max_usd 0.9" in summary["stopped"] and summary["steps"] < 5
    led = json.loads(sorted((out / "checkpoint").glob("step-*"))[-1].joinpath("loop.json").read_text())["ledger"]
    assert led["usd"] == pytest.approx(0.216 * (summary["steps"] + k))  # the steps in flight are paid
    cfg, _ = _cfg(tmp_path, "usd", async_steps=k, max_usd=50.0, prices=prices)
    _run(cfg, out, resume=True)
    assert [_strip(r) for r in read_jsonl(out / "metrics.jsonl")] == [_strip(r) for r in read_jsonl(ref / "metrics.jsonl")]
    assert list(read_jsonl(out / "rollouts.jsonl")) == list(read_jsonl(ref / "rollouts.jsonl"))


def test_missing_or_damaged_inflight_refuses_resume(tmp_path, monkeypatch):
    cfg, out = _cfg(tmp_path, "dmg", async_steps=1)
    monkeypatch.setenv("TTTD_FAULT", "train:3:raise")
    with pytest.raises(FaultInjected):
        _run(cfg, out)
    monkeypatch.delenv("TTTD_FAULT")
    files = sorted((out / "checkpoint").rglob(INFLIGHT))
    assert files
    for f in files:
        f.write_text('{"version": 1, "steps": [{"step": 3}]}')
    with pytest.raises(NotARunError, match="damaged"):
        _run(cfg, out, resume=True)
    for f in files:
        f.unlink()
    with pytest.raises(NotARunError, match=INFLIGHT):
        _run(cfg, out, resume=True)


def test_bad_value_is_refused():
    with pytest.raises(ConfigError, match="async_steps"):
        resolve_config(flag_values={"async_steps": -1})


# ------------------------------------------------------------------ the real CLI, real signals


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("async") / "ref"
    done = cli(*run_args(out, 5), "--async-steps", "2")
    assert done.returncode == 0, done.stderr
    return out


@pytest.mark.parametrize("point", ["sample", "train", "commit"])
def test_kill_9_then_resume_equals_uninterrupted(tmp_path, reference, point):
    out = tmp_path / "run"
    killed = cli(*run_args(out, 5), "--async-steps", "2", TTTD_FAULT=f"{point}:3")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = cli("resume", str(out), "--quiet", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_run(out, reference)


def test_ctrl_c_commits_the_step_and_the_steps_in_flight(tmp_path, reference):
    out, marker = tmp_path / "run", tmp_path / "marker"
    proc = spawn(*run_args(out, 5), "--async-steps", "2", TTTD_TEST_SAMPLE_DELAY="0.6",
                 TTTD_TEST_STEP_MARKER=str(marker))
    wait_lines(marker, 4, proc)  # step 3 is sampling while step 1 is processed
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGINT, err
    assert "stopped by SIGINT after step 2 (committed)" in one_line(err)
    assert [m["step"] for m in metrics(out)] == [0, 1]
    inflight = json.loads(sorted((out / "checkpoint").rglob(INFLIGHT))[-1].read_text())
    assert [s["step"] for s in inflight["steps"]] == [2, 3]  # sampled ahead, kept
    resumed = cli("resume", str(out), "--quiet", "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert_same_run(out, reference)


def test_the_slow_verifier_toy_scores_the_text_its_program_returns():
    import numpy as np

    from tttd.registry import get_task

    example = str(Path(__file__).resolve().parents[1] / "examples" / "slow_verifier.py")
    task = get_task(example, sleep_s=0.0)
    root = task.initial_states(1, np.random.default_rng(0))[0]
    cand = task.parse("12ab", root)
    assert cand.program is not None and cand.program.args == {"text": "12ab", "sleep": 0.0}
    assert task.verify({"text": "12ab"}).value == 0.5
    assert not task.verify({"text": ""}).valid and not task.verify("12").valid
    with pytest.raises(ValueError):
        get_task(example, sleep_s=-1)


def test_a_parent_gone_from_the_archive_still_scores_but_adds_no_children(tmp_path):
    """With K >= 1 a start state can be pruned between its selection and its group's evaluation:
    the group is scored (and trains), its children do not join the archive, nothing raises."""
    from tttd.policy import SamplingParams
    from tttd.step_parts import launch_group
    from tttd.types import State

    cfg, out = _cfg(tmp_path, "gone", async_steps=1)
    run = Discovery(cfg, out, policy=FakeDigitPolicy())
    run.start()
    try:
        ghost = State(id="gone", value=0.5, artifact={"digits": "5555555555"})
        group = run.policy.sample([run.task.prompt(ghost)], 4, SamplingParams(max_tokens=12, seed=3))[0]
        size = len(run.archive)
        evaluations, child_ids, _, _ = run._evaluate_and_archive(0, [ghost], [group],
                                                                 [launch_group(run.task, run.submit, ghost, group)])
        assert len(evaluations[0]) == 4 and any(ev.valid for ev in evaluations[0])
        assert child_ids == [[None] * 4] and len(run.archive) == size
    finally:
        run._close(False)
