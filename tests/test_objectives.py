"""Several objectives (issue 37): rules, the Pareto front, the archive's front, runs and resume."""

import json

import numpy as np
import pytest

import tests.two_metric_task  # noqa: F401 (registers "two-metrics")
from tests.fakes import FakeDigitPolicy
from tttd.archive import Archive
from tttd.config import ConfigError, resolve_config
from tttd.loop import Discovery
from tttd.objectives import MetricSpec, bind_rule, front_mask, oriented_matrix, parse_rule
from tttd.registry import get_task
from tttd.rundir import read_jsonl
from tttd.task import TaskOptionError
from tttd.types import State

SPECS = (MetricSpec("q", "maximize", (0, 1)), MetricSpec("t", "minimize", (0, 10)), MetricSpec("n", "minimize"))


@pytest.mark.parametrize("text, fragment", [
    ("", "must be a string"), ("best", "unknown kind"), ("primary:x", "takes nothing"),
    ("metric:", "one metric name"), ("weighted:q", "NAME=WEIGHT"), ("weighted:q=0", "must be > 0"),
    ("weighted:q=1@2..1", "LO < HI"), ("weighted:q=1,q=2", "appears twice"),
    ("constrained:q", "at least one bound"), ("constrained:q,t<2", "NAME<=NUMBER"),
])
def test_bad_rules_are_refused_in_one_line(text, fragment):
    with pytest.raises(ValueError, match=fragment) as err:
        parse_rule(text)
    assert "\n" not in str(err.value)


def test_rules_bind_to_the_task_metrics():
    assert bind_rule("primary", SPECS) is None
    with pytest.raises(ValueError, match="unknown metric 'x'"):
        bind_rule("metric:x", SPECS)
    with pytest.raises(ValueError, match="'n' has no declared range"):
        bind_rule("weighted:q=1,n=1", SPECS)
    with pytest.raises(ValueError, match="declares no named metrics"):
        bind_rule("metric:q", ())
    m = bind_rule("metric:t", SPECS)
    assert m.objective[:2] == ("minimize", "reciprocal") and m.value({"t": 2.5, "q": 0}) == (2.5, None)
    w = bind_rule("weighted:q=2,t=1,n=1@0..4", SPECS)
    # q 0.5 -> 0.5 * 2; t 2.5 of 0..10, minimised -> 0.75; n 6 clipped to 4 -> 1 -> 0 (minimised)
    assert w.value({"q": 0.5, "t": 2.5, "n": 6}) == (pytest.approx(1.75), None)
    assert w.objective == ("maximize", "identity", 0.0, (0.0, 4.0))
    c = bind_rule("constrained:q,t<=3,n>=1", SPECS)
    assert c.value({"q": 0.7, "t": 3, "n": 1}) == (0.7, None)
    v, why = c.value({"q": 0.9, "t": 3.5, "n": 1})
    assert v is None and "t<=3 broken: t = 3.5" in why
    assert "missing" in c.value({"q": 0.9, "t": 1})[1]


def test_front_mask_keeps_exactly_the_non_dominated_rows():
    rng = np.random.default_rng(0)
    for pts in (rng.random((300, 3)), rng.integers(0, 4, (200, 3)).astype(float), rng.random((100, 1))):
        pts[5] = np.nan  # ties, equal rows and one metric too
        mask = front_mask(pts)
        for i in range(len(pts)):
            dominated = any(np.all(pts[j] >= pts[i]) and np.any(pts[j] > pts[i]) for j in range(len(pts)) if j != i)
            assert mask[i] == (not dominated and not np.isnan(pts[i]).any()), i
    m = oriented_matrix([{"a": 1, "b": 5}, {"a": 2, "b": 9}, None, {"a": 1}], {"a": "maximize", "b": "minimize"})
    assert m[0].tolist() == [1, -5] and np.isnan(m[2]).all() and np.isnan(m[3][1])
    assert front_mask(m).tolist() == [True, True, False, False]


def _child(v, a, b):
    return State(id="x", value=v, key=f"{v}-{a}-{b}", metrics={"objectives": {"a": a, "b": b}})


def test_archive_keeps_the_front_beyond_top_k_and_persists_it(tmp_path):
    arch = Archive(maximize=True, topk_children=1, directions={"a": "maximize", "b": "maximize"})
    arch.add_roots([State(id="r", value=None)])
    # by value only s000000 (value 3) would survive top-1; (1, 5) and (0, 9) are on the front too,
    # (0.5, 1) is dominated by (1, 5) and goes
    arch.update("r", [_child(3, 3, 1), _child(1, 1, 5), _child(0.5, 0.5, 1), _child(0, 0, 9)], step=0)
    arch.flush()
    assert [s.metrics["objectives"]["a"] for s in arch.front()] == [3, 1, 0]
    assert len(arch) == 4 and arch.stats()["front"] == 3
    arch.save(tmp_path / "a.json")
    back = Archive.load(tmp_path / "a.json")
    assert back.dumps() == arch.dumps() and [s.id for s in back.front()] == [s.id for s in arch.front()]
    old = json.loads(arch.dumps())  # an archive written before issue 37 (no directions) still loads
    del old["config"]["directions"]
    assert Archive.from_dict(old).front() == [] and "front" not in Archive.from_dict(old).stats()


def test_pareto_reuse_draws_from_the_front_first():
    dirs = {"a": "maximize", "b": "maximize"}
    with pytest.raises(ValueError, match="several declared metrics"):
        Archive(reuse="pareto")
    picks = {}
    for reuse in ("greedy", "pareto", "puct"):
        arch = Archive(maximize=True, reuse=reuse, topk_children=None, directions=dirs)
        arch.add_roots([State(id="r0", value=None), State(id="r1", value=None), State(id="r2", value=None)])
        arch.update("r0", [_child(5, 5, 0), _child(4, 4, 0)], step=0)  # (4, 0) dominated
        arch.update("r1", [_child(1, 1, 6)], step=0)
        arch.update("r2", [_child(4.5, 4.5, 0)], step=0)  # dominated by (5, 0)
        picks[reuse] = [s.key for s in arch.select(2)]
    assert picks["greedy"] == ["5-5-0", "4.5-4.5-0"]
    assert set(picks["pareto"]) == {"5-5-0", "1-1-6"}  # both front states, not the second-best value
    assert "1-1-6" not in picks["puct"]


def _cfg(tmp_path, name, **kw):
    values = dict(task="two-metrics", steps=3, groups=2, group_size=6, learning_rate=0.5, workers=1, seed=3)
    values.update(kw)
    return resolve_config(flag_values=values), tmp_path / name


def _run(cfg, out, resume=False):
    run = Discovery(cfg, out, policy=FakeDigitPolicy(length=6))
    run.restore() if resume else run.start()
    run.run()
    return run


def test_a_rule_makes_the_reward_and_the_run_keeps_the_front(tmp_path):
    cfg, out = _cfg(tmp_path, "w", rule="weighted:nines=1,zeros=1", reuse="pareto")
    run = _run(cfg, out)
    rows = list(read_jsonl(out / "rollouts.jsonl"))
    valid = [r for r in rows if r["valid"]]
    assert valid
    for r in valid:  # the value is the weighted sum of the normalised metrics, the reward equal
        text = r["completion"]
        assert r["value"] == pytest.approx((text.count("9") + text.count("0")) / 12)
        assert r["reward"] == pytest.approx(r["value"])
    front = run.archive.front()
    assert front and len(front) >= 2
    saved = json.loads((out / "archive.json").read_text())
    assert saved["config"]["directions"] == {"nines": "maximize", "sum": "minimize", "zeros": "maximize"}


def test_a_constraint_makes_breaking_samples_invalid(tmp_path):
    cfg, out = _cfg(tmp_path, "c", rule="constrained:nines,sum<=20", steps=2)
    _run(cfg, out)
    rows = list(read_jsonl(out / "rollouts.jsonl"))
    broken = [r for r in rows if "constraint sum<=20 broken" in (r.get("message") or "")]
    kept = [r for r in rows if r["valid"]]
    assert broken and kept
    assert all(sum(map(int, r["completion"])) <= 20 for r in kept)
    assert all(sum(map(int, r["completion"])) > 20 for r in broken)


def test_resume_with_a_rule_and_front_is_exact(tmp_path):
    kw = dict(rule="weighted:nines=1,zeros=2", reuse="pareto")
    cfg, ref = _cfg(tmp_path, "ref", **kw)
    _run(cfg, ref)
    cfg2, out = _cfg(tmp_path, "res", **{**kw, "steps": 1})
    _run(cfg2, out)
    cfg3, _ = _cfg(tmp_path, "res", **kw)
    _run(cfg3, out, resume=True)
    a = json.loads((ref / "archive.json").read_text())
    b = json.loads((out / "archive.json").read_text())
    assert a == b


def test_wrong_rules_fail_before_anything_is_written(tmp_path):
    with pytest.raises(ConfigError, match="unknown kind"):
        _cfg(tmp_path, "x", rule="best")
    cfg, out = _cfg(tmp_path, "y", rule="metric:ones")
    with pytest.raises(TaskOptionError, match="unknown metric 'ones'"):
        Discovery(cfg, out, policy=FakeDigitPolicy())
    assert not out.exists()
    cfg, out = _cfg(tmp_path, "z", task="demo", rule="metric:x")
    with pytest.raises(TaskOptionError, match="declares no named metrics"):
        Discovery(cfg, out, policy=FakeDigitPolicy())


def test_program_task_with_several_metrics_and_wall_time(tmp_path):
    from tttd import ProgramTask
    from tttd.types import Candidate

    task = ProgramTask(statement="Return two numbers.", returns="[a, b]", entry="solve",
                       initial_program="def solve():\n    return [1.0, 2.0]\n",
                       score=lambda d: {"a": d[0], "b": d[1]},
                       metrics={"a": ("maximize", (0, 10)), "b": "minimize", "wall_s": ("minimize", (0, 60))})
    assert task.primary_metric == "a" and task.objective.maximize
    root = task.initial_states(1, np.random.default_rng(0))[0]
    assert root.value == 1.0 and set(root.metrics["objectives"]) == {"a", "b", "wall_s"}
    assert 0 < root.metrics["objectives"]["wall_s"] < 60
    text = task.prompt(root)[0]["content"]
    assert "- b = 2 (lower is better)" in text and "measured by tttd" in text
    task.use_rule("weighted:a=1,wall_s=1")
    code = "def solve():\n    return [5.0, 2.0]\n"
    from tttd.sandbox import run as sandbox_run

    cand = Candidate(text="", code=code, program=task.program_from_code(code))
    ev = task.evaluate(cand, sandbox_run(cand.program))
    assert ev.valid and ev.value == pytest.approx(0.5 + 1 - ev.metrics["objectives"]["wall_s"] / 60)
    with pytest.raises(ValueError, match="primary must be one of"):
        ProgramTask(statement="s", returns="r", score=lambda d: d, metrics={"a": "maximize"}, primary="wall_s")
    bad = task.verify([1.0, float("nan")])
    assert not bad.valid and "b=nan" in bad.message
    assert get_task("two-metrics").metric_directions()["sum"] == "minimize"


def test_the_cli_refuses_a_rule_in_one_line_before_anything_is_written(tmp_path, monkeypatch, capsys):
    from pathlib import Path

    from tttd import cli

    monkeypatch.chdir(tmp_path)
    example = str(Path(__file__).resolve().parents[1] / "examples" / "tsp_files.py")
    for argv, fragment in ((["run", example, "--dry-run", "--rule", "metric:nope"], "unknown metric 'nope'"),
                           (["run", "demo", "--rule", "weighted:x"], "is not NAME=WEIGHT"),
                           (["run", "demo", "--rule", "metric:x"], "declares no named metrics")):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert fragment in err and "\n" not in err, err
    assert list(tmp_path.iterdir()) == []


def test_a_rule_never_judges_the_primary_value_by_the_rule_objective():
    """metric:t (minimised: reward 1/t) must not turn a primary value q = 0 into 1/0."""
    from tttd import ProgramTask
    from tttd.types import Candidate

    task = ProgramTask(statement="s", returns="r", score=lambda d: {"q": d[0], "t": d[1]},
                       metrics={"q": ("maximize", (0, 10)), "t": ("minimize", (0, 10))})
    task.use_rule("metric:t")
    assert task.primary_objective.maximize and not task.objective.maximize
    ev = task.evaluate(Candidate(text="", data=[0.0, 2.0]), None)
    assert ev.valid and ev.value == 2.0 and ev.reward == 0.5
