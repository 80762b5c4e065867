"""The ablation spec: variants, extra variants, and refusing a changed second invocation."""

import pytest

from tttd.ablate.spec import FULL, build_spec, difference, load_spec, open_spec, parse_variant, run_config, run_path
from tttd.config import ConfigError
from tttd.registry import get_task


def spec(**kw):
    args = dict(task="demo", seeds=2, steps=4, variants=None, extra=None, base={"groups": 2}, threshold=None)
    args.update(kw)
    return build_spec(**args)


def test_default_variants_change_one_part_each():
    s = spec()
    assert list(s.variants) == ["full", "constant-beta", "mean", "no-reuse", "no-train", "best-of-n"]
    assert s.variants["full"] == FULL
    assert s.variants["best-of-n"] == {**FULL, "train": False, "reuse": "none"}
    assert s.run_ids()[:2] == [("full", 0), ("constant-beta", 0)]  # seed-major


def test_run_configs_share_the_budget_and_pair_by_seed(tmp_path):
    s = spec(extra=["per-rollout:visit_counting=rollout"])
    cfgs = {rid: run_config(s, tmp_path, *rid, get_task("demo").presets, "demo") for rid in s.run_ids()}
    budgets = {(c.steps, c.groups, c.group_size) for c in cfgs.values()}
    assert budgets == {(4, 2, 8)}
    assert cfgs[("per-rollout", 1)].visit_counting == "rollout" and cfgs[("per-rollout", 1)].seed == 1
    assert cfgs[("mean", 0)].objective == "mean" and cfgs[("no-train", 0)].train is False
    assert cfgs[("full", 1)].out == str(run_path(tmp_path, "full", 1))


@pytest.mark.parametrize("text, msg", [
    ("x", "NAME:KEY=VALUE"), ("full:reuse=none", "built-in"), ("v:nonsense=1", "unknown setting"),
    ("v:steps=3", "set by tttd ablate"), ("v:groups=many", "bad value"), ("a b:reuse=none", "letters"),
])
def test_bad_extra_variants_are_one_line_errors(text, msg):
    with pytest.raises(ConfigError, match=msg):
        parse_variant(text)


def test_full_is_required_and_names_are_checked():
    with pytest.raises(ConfigError, match="must include 'full'"):
        spec(variants=["mean"])
    with pytest.raises(ConfigError, match="unknown variant"):
        spec(variants=["full", "nope"])


def test_changed_arguments_are_refused_and_nothing_is_written(tmp_path):
    root = tmp_path / "abl"
    open_spec(root, spec(), write=True)
    assert open_spec(root, spec(), write=True) == spec()
    before = (root / "ablation.json").read_bytes()
    with pytest.raises(ConfigError, match="--seeds 3"):
        open_spec(root, spec(seeds=3), write=True)
    with pytest.raises(ConfigError, match="steps 5"):
        open_spec(root, spec(steps=5), write=True)
    assert (root / "ablation.json").read_bytes() == before
    assert list(load_spec(root).variants)[:2] == ["full", "constant-beta"]  # not the file's sorted order
    assert "base groups" in difference(spec(), spec(base={"groups": 3}))
    other = tmp_path / "other"
    other.mkdir()
    (other / "x").write_text("")
    with pytest.raises(ConfigError, match="not an ablation directory"):
        open_spec(other, spec(), write=True)


def test_async_variants_are_asked_for_by_name():
    """Issue 35: async1/async2 are full with --async-steps 1/2, and not part of the default set."""
    s = build_spec("demo", 2, 3, None, None, {}, None)
    assert not any(v.startswith("async") for v in s.variants)
    s = build_spec("demo", 2, 3, ["full", "async1", "async2"], None, {}, None)
    assert s.variants["async1"] == {**FULL, "async_steps": 1}
    assert s.variants["async2"] == {**FULL, "async_steps": 2}
    assert s.variants["full"] == FULL
