"""Every run option a user can set has an observable effect (issue 25).

Each test here fails when its option is ignored anywhere between the config and the component
that uses it; ``tools/mutate_switches.py`` proves that by disabling one option at a time. The
expected values are computed here from the logs, independently of tttd's own modules: the
advantages from the rewards in rollouts.jsonl, the start states from a snapshot of the archive
taken just before each selection (PUCT, greedy and best-of-N re-implemented from DESIGN.md),
visit counts from the lineage the rollouts record.

The torch-free :class:`~tests.fakes.FakeDigitPolicy` keeps every test under a few seconds;
the trainer's own options (clip, KL, learning rate, LoRA rank, ...) are in
``tests/policy/test_local_options.py``.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest
from scipy.optimize import brentq

from tests.fakes import FakeDigitPolicy
from tttd.config import resolve_config
from tttd.build import build_executor, build_policy, build_task
from tttd.loop import Discovery
from tttd.rundir import read_jsonl


def _cfg(**kw):
    values = dict(task="demo", steps=3, groups=3, group_size=6, learning_rate=0.5, workers=1, seed=1)
    values.update(kw)
    return resolve_config(flag_values=values)


class Recorder(FakeDigitPolicy):
    """The fake policy, recording every sampling call and training config it is given."""

    def __init__(self):
        super().__init__()
        self.sampled: list[tuple[int, int, object]] = []  # (prompts, n, SamplingParams)
        self.trained: list[object] = []  # TrainConfig

    def sample(self, prompts, n, params):
        self.sampled.append((len(prompts), n, params))
        return super().sample(prompts, n, params)

    def train_step(self, batch, config):
        self.trained.append(config)
        return super().train_step(batch, config)


def _run(tmp_path, name="run", policy=None, snapshots=None, **kw):
    """Run a short demo-task loop; ``snapshots`` collects (archive before select, picked ids)."""
    cfg = _cfg(**kw)
    policy = policy or Recorder()
    run = Discovery(cfg, tmp_path / name, policy=policy)
    run.start()
    if snapshots is not None:
        select = run.archive.select

        def recording_select(k):
            before = run.archive.to_dict()
            picked = select(k)
            snapshots.append((before, [s.id for s in picked]))
            return picked

        run.archive.select = recording_select
    summary = run.run()
    return cfg, tmp_path / name, policy, summary


def _groups(out):
    """Rollouts grouped by (step, group), in order."""
    groups = defaultdict(list)
    for row in read_jsonl(out / "rollouts.jsonl"):
        groups[(row["step"], row["group"])].append(row)
    return groups


# ------------------------------------------------------------------------ objective and beta


def _entropic(r, beta):
    """SPEC.md 2.1: e_i = exp(beta (r_i - max r)); A_i = e_i / (mean of the others' e + 1e-12) - 1."""
    e = np.exp(beta * (r - r.max()))
    others = (e.sum() - e) / (len(r) - 1)
    return e / (others + 1e-12) - 1.0


def _kl_to_uniform(r, beta):
    z = beta * (r - r.max())
    q = np.exp(z - np.log(np.exp(z).sum()))
    return float(np.sum(np.where(q > 0, q * np.log(np.where(q > 0, q, 1.0) * len(r)), 0.0)))


@pytest.mark.parametrize("objective", ["entropic", "entropic-fixed", "mean"])
def test_objective_and_beta_set_the_logged_advantages(tmp_path, objective):
    cfg, out, _, _ = _run(tmp_path, steps=2, objective=objective, beta=3.5)
    checked, betas_by_step = 0, defaultdict(list)
    for (step, _g), rows in _groups(out).items():
        r = np.array([row["reward"] for row in rows], dtype=float)
        adv = [row["advantage"] for row in rows]
        if np.all(r == r[0]):  # constant groups carry no signal: dropped
            assert adv == [None] * len(rows)
            continue
        if objective == "mean":
            want, beta = r - r.mean(), None
        elif objective == "entropic-fixed":
            want, beta = _entropic(r, 3.5), 3.5
        else:  # the beta where KL(softmax(beta r) || uniform) = ln 2, solved by a root finder
            if _kl_to_uniform(r, 1e6) < math.log(2):
                continue  # tied maxima: the reference's best-effort beta, not a root
            beta = brentq(lambda b: _kl_to_uniform(r, b) - math.log(2), 0.0, 1e6, xtol=1e-12, rtol=1e-12)
            want = _entropic(r, beta)
        assert np.allclose(adv, want, rtol=1e-6, atol=1e-9), (objective, step, adv, want)
        if beta is not None:
            betas_by_step[step].append(beta)
        checked += 1
    assert checked >= 3  # enough groups carried a signal for the comparison to mean something
    for m in read_jsonl(out / "metrics.jsonl"):
        if objective == "mean":
            assert m["beta_mean"] is None
        elif betas_by_step[m["step"]]:
            assert m["beta_mean"] == pytest.approx(np.mean(betas_by_step[m["step"]]), rel=1e-6)


# ------------------------------------------------------------------------ what reaches the policy


def test_training_options_reach_the_trainer(tmp_path):
    _, out, pol, _ = _run(tmp_path, learning_rate=0.25, kl_coef=0.3, clip=0.15)
    assert len(pol.trained) == 3
    for tc in pol.trained:
        assert (tc.learning_rate, tc.kl_coef, tc.clip) == (0.25, 0.3, 0.15)
    assert all(m["trained"] for m in read_jsonl(out / "metrics.jsonl"))


def test_no_train_never_trains(tmp_path):
    _, out, pol, _ = _run(tmp_path, train=False)
    assert pol.trained == [] and pol.steps == 0
    assert not any(m["trained"] for m in read_jsonl(out / "metrics.jsonl"))


def test_sampling_options_reach_the_sampler(tmp_path):
    _, out, pol, summary = _run(tmp_path, steps=2, groups=5, group_size=4, temperature=0.7, max_tokens=33,
                                sample_chunk_groups=2)
    # 5 groups in chunks of 2: calls of 2, 2, 1 groups per step
    assert [k for k, _, _ in pol.sampled] == [2, 2, 1, 2, 2, 1]
    for _, n, params in pol.sampled:
        assert n == 4 and params.temperature == 0.7 and params.max_tokens == 33
    assert summary["samples"] == 2 * 5 * 4
    assert len(_groups(out)) == 2 * 5


def test_the_seed_sets_the_roots_and_the_sampling(tmp_path):
    runs = {}
    for name, seed in (("a", 1), ("b", 2), ("c", 1)):
        _, out, pol, _ = _run(tmp_path, name=name, steps=1, seed=seed)
        roots = [s for s in __import__("json").loads((out / "archive.json").read_text())["states"]
                 if s["state"]["parent_id"] is None]
        runs[name] = ([r["state"]["artifact"]["digits"] for r in roots],
                      [s for _, _, p in pol.sampled for s in [p.seed, *p.seeds]],
                      [row["completion"] for row in read_jsonl(out / "rollouts.jsonl")])
    assert runs["a"] == runs["c"]  # the same seed repeats the run
    roots_a, seeds_a, text_a = runs["a"]
    roots_b, seeds_b, text_b = runs["b"]
    assert not set(roots_a) & set(roots_b)
    assert not set(seeds_a) & set(seeds_b)
    assert text_a != text_b


# ------------------------------------------------------------------------ reuse, PUCT, visits


def _expected_selection(snap, k, reuse, c, maximize):
    """Start states from an archive snapshot, re-implemented from DESIGN.md (not tttd.archive)."""
    entries = snap["states"]
    n = len(entries)
    ids = [e["state"]["id"] for e in entries]
    sign = 1.0 if maximize else -1.0
    val = [None if e["state"]["value"] is None else sign * e["state"]["value"] for e in entries]
    root = [e["state"]["parent_id"] is None for e in entries]
    anc = [set(e["state"]["ancestors"]) for e in entries]

    def cycle(picks):
        return [picks[i % len(picks)] for i in range(k)]

    if reuse == "none":
        return cycle([ids[i] for i in range(n) if root[i]])
    by_value = sorted(range(n), key=lambda i: (val[i] is None, -(val[i] or 0.0), i))
    if reuse == "greedy":
        return cycle([ids[i] for i in by_value[:k]])
    pool = [val[i] for i in range(n) if not root[i] and val[i] is not None] or [v for v in val if v is not None]
    scale = max(max(pool) - min(pool), 1e-6) if pool else 1e-6
    rank = {i: r for r, i in enumerate(by_value)}
    score, explore = {}, {}
    for i, e in enumerate(entries):
        prior = (n - rank[i]) / (n * (n + 1) / 2.0)
        explore[i] = c * scale * prior * math.sqrt(1.0 + float(snap["T"])) / (1.0 + e["visits"])
        bc = e["best_child_value"]
        q = sign * bc if bc is not None else val[i]
        if q is not None:
            score[i] = q + explore[i]
    real = sorted(score, key=lambda i: (-score[i], -val[i], i))
    empty = sorted((i for i in range(n) if val[i] is None), key=lambda i: (-explore[i], i))
    picked, blocked, picks = set(), set(), []
    for i in real + empty:
        if ids[i] in blocked or anc[i] & picked:
            continue
        picks.append(ids[i])
        picked.add(ids[i])
        blocked |= {ids[i]} | anc[i]
        if len(picks) == k:
            break
    return cycle(picks)


@pytest.mark.parametrize("reuse, c", [("puct", 1.0), ("puct", 0.0), ("puct", 40.0), ("greedy", 1.0),
                                      ("none", 1.0)])
def test_reuse_mode_and_puct_c_pick_the_start_states(tmp_path, reuse, c):
    snapshots = []
    cfg, out, _, _ = _run(tmp_path, steps=4, groups=3, group_size=6, reuse=reuse, puct_c=c,
                          snapshots=snapshots)
    assert len(snapshots) == 4
    groups = _groups(out)
    differs_from_roots = False
    for step, (snap, picked) in enumerate(snapshots):
        want = _expected_selection(snap, cfg.groups, reuse, c, maximize=False)  # demo: lower is better
        assert picked == want, (step, picked, want)
        assert [groups[(step, g)][0]["parent"] for g in range(cfg.groups)] == want  # what the logs say
        differs_from_roots |= any(not p.startswith("root") for p in want)
    assert differs_from_roots == (reuse != "none")  # the archive's children were reachable


def _ancestry(out):
    """parent of every child ever archived (from the rollouts: child id -> start state id)."""
    return {row["child"]: row["parent"] for row in read_jsonl(out / "rollouts.jsonl") if row["child"]}


@pytest.mark.parametrize("counting", ["group", "rollout"])
def test_visit_counting(tmp_path, counting):
    import json

    cfg, out, _, _ = _run(tmp_path, steps=4, visit_counting=counting)
    arch = json.loads((out / "archive.json").read_text())
    per_group = 1 if counting == "group" else cfg.group_size
    assert arch["T"] == 4 * cfg.groups * per_group
    parent_of = _ancestry(out)

    def lineage(sid):
        while sid is not None:
            yield sid
            sid = parent_of.get(sid)

    visits = defaultdict(int)
    for (_step, _g), rows in _groups(out).items():
        for sid in lineage(rows[0]["parent"]):
            visits[sid] += per_group
    for e in arch["states"]:
        assert e["visits"] == visits[e["state"]["id"]], e["state"]["id"]


# ------------------------------------------------------------------------ child filter, archive size


def test_topk_children_bounds_the_children_kept_and_their_artifacts(tmp_path):
    """topk_children=1: after every step a parent has at most one child in the archive, and the
    loop hands the archive at most one child artifact per group (the rest are dropped as they are
    evaluated: the memory bound of Archive.child_filter)."""
    import json

    from tttd.archive import Archive

    seen = []
    real_update = Archive.update

    def update(self, parent_id, children, step):
        seen.append(([c is not None for c in children], [bool(c and c.artifact) for c in children]))
        return real_update(self, parent_id, children, step)

    mp = pytest.MonkeyPatch()
    mp.setattr(Archive, "update", update)
    try:
        cfg, out, _, _ = _run(tmp_path, steps=3, group_size=8, topk_children=1)
    finally:
        mp.undo()
    assert max(sum(valid) for valid, _ in seen) > 1  # groups had several valid children
    assert all(sum(kept) <= 1 for _, kept in seen)
    arch = json.loads((out / "archive.json").read_text())
    per_parent = defaultdict(int)
    for e in arch["states"]:
        if e["state"]["parent_id"] is not None:
            per_parent[e["state"]["parent_id"]] += 1
    assert per_parent and max(per_parent.values()) == 1


def test_archive_size_caps_the_archive(tmp_path):
    import json

    _, out, _, _ = _run(tmp_path, steps=4, groups=3, archive_size=4)
    arch = json.loads((out / "archive.json").read_text())
    assert arch["totals"]["added"] > 4  # the cap had something to cut
    assert len(arch["states"]) == 4
    assert all(m["archive_size"] <= 4 for m in read_jsonl(out / "metrics.jsonl"))


# ------------------------------------------------------------------------ backend, executor, task


def test_policy_options_reach_the_backend(monkeypatch):
    """Each run setting a backend declares (tttd.policy.backends) reaches its constructor, the
    user's backend options too; settings it does not declare are not passed."""
    seen = {}

    class Backend:
        def __init__(self, **kwargs):
            seen.update(kwargs)

    monkeypatch.setattr("tttd.build.backend_class", lambda name: seen.setdefault("backend", name) and Backend)
    cfg = resolve_config(flag_values=dict(
        task="demo", backend="local", model="some/model", lora_rank=5, full_finetune=True, seed=9,
        learning_rate=0.01, steps=7, engine="hf", chat_template_kwargs={"reasoning_effort": "low"},
        backend_options={"device": "cpu", "flavour": 3}))
    build_policy(cfg)
    assert seen == dict(backend="local", model="some/model", lora_rank=5, full_finetune=True, seed=9,
                        learning_rate=0.01, engine="hf",
                        chat_template_kwargs={"reasoning_effort": "low"}, device="cpu", flavour=3)
    seen.clear()
    build_policy(resolve_config(flag_values=dict(task="demo", backend="tinker", model="m", lora_rank=4, steps=3,
                                                 seed=2)))
    assert seen == dict(backend="tinker", model="m", lora_rank=4, seed=2, total_steps=3, chat_template_kwargs=None)
    seen.clear()
    build_policy(resolve_config(flag_values=dict(task="demo", backend="api", model="m", lora_rank=4)))
    assert seen == dict(backend="api", model="m", chat_template_kwargs=None)  # no LoRA rank for an API model


def test_executor_options_reach_the_executor(monkeypatch):
    seen = []
    monkeypatch.setattr("tttd.executor.make_executor", lambda kind, **kw: seen.append((kind, kw)))
    build_executor(_cfg(executor="ray", workers=3, cpus_per_eval=2))
    assert seen == [("ray", {"workers": 3, "cpus_per_eval": 2})]


def test_local_executor_runs_the_configured_number_of_workers():
    """workers=3: three evaluations run at once (they meet at a barrier for three); one more
    would be a fourth at once, which the pool must not start."""
    import threading

    from tttd.executor import make_executor
    from tttd.types import Program, SandboxResult

    barrier, running, most = threading.Barrier(3, timeout=30), [0], [0]
    lock = threading.Lock()

    def run(program, cpus=None, **kw):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            barrier.wait()  # BrokenBarrierError (a failed result) unless 3 run at once
            return SandboxResult(status="ok", value=1)
        finally:
            with lock:
                running[0] -= 1

    ex = make_executor("local", workers=3, cpus_per_eval=1, run_fn=run)
    try:
        results = [f.result() for f in [ex.submit(Program(source="")) for _ in range(6)]]
    finally:
        ex.close()
    assert [r.status for r in results] == ["ok"] * 6 and most[0] == 3


def test_evaluation_limits_and_task_options_reach_the_task():
    from tttd.types import Limits

    task = build_task(_cfg(task="erdos", eval_timeout_s=7.5, cpus_per_eval=3, eval_memory_mb=700))
    assert task.limits == Limits(wall_s=7.5, memory_mb=700, threads=3)
    default = build_task(_cfg(task="erdos", eval_timeout_s=None)).limits
    for field in ("wall_s", "memory_mb", "threads"):  # none of them the task's default by chance
        assert getattr(default, field) != getattr(task.limits, field), field
    demo = build_task(_cfg(task_options={"root_digits": 9}))
    roots = demo.initial_states(3, np.random.default_rng(0))
    assert {len(r.artifact["digits"]) for r in roots} == {9}


def test_require_isolation_refuses_without_full_isolation(monkeypatch, tmp_path, capsys):
    """--require-isolation: exit 2 with one line and nothing written when the jail is not full;
    without it the run goes on (after a warning)."""
    from tttd import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("tttd.sandbox.isolation_report",
                        lambda *a, **k: {"full": False, "missing": ["bwrap"], "notes": ["test"], "active": []})
    ran = []
    monkeypatch.setattr("tttd.loop.Discovery.start", lambda self: ran.append("start"))
    monkeypatch.setattr("tttd.loop.Discovery.run", lambda self: ran.append("run") or _summary())
    assert cli.main(["run", "demo", "--require-isolation", "--out", "r", "--quiet"]) == 2
    assert "require_isolation" in capsys.readouterr().err and ran == []
    assert cli.main(["run", "demo", "--out", "r", "--quiet", "--json"]) == 0
    assert ran == ["start", "run"]


def _summary():
    return {"best_value": 1.0, "best_reward": 1.0, "best_step": 0, "steps": 1, "samples": 1, "seconds": 0.0,
            "run_dir": "r", "stopped": None}


def test_checkpoints_hold_the_policy_state(tmp_path):
    """A resume loads the policy saved with the last step (else it would restart from scratch)."""
    cfg, out, pol, _ = _run(tmp_path, steps=2)
    again = Discovery(_cfg(steps=3), out, policy=FakeDigitPolicy())
    again.restore()
    assert again.policy.steps == pol.steps == 2
    assert np.array_equal(again.policy.logits, pol.logits)
