import json

import pytest

from tttd.rundir import NotARunError, RunDir, append_jsonl, read_jsonl, truncate_jsonl


def test_commit_protocol_and_prune(tmp_path):
    rd = RunDir(tmp_path / "run")
    rd.create({"steps": 3})
    assert rd.latest_step_dir() is None
    for step in range(4):
        tmp = rd.begin_step(step)
        (tmp / "loop.json").write_text(json.dumps({"step": step}))
        rd.commit_step(step, tmp, keep=2)
    assert rd.latest_step_dir().name == "step-000003"
    assert sorted(p.name for p in rd.checkpoints.glob("step-*")) == ["step-000002", "step-000003"]


def test_uncommitted_step_is_ignored(tmp_path):
    rd = RunDir(tmp_path / "run")
    rd.create({})
    tmp = rd.begin_step(0)
    rd.commit_step(0, tmp)
    half = rd.begin_step(1)  # a crash while writing step 1
    (half / "archive.json").write_text("{")
    assert rd.latest_step_dir().name == "step-000000"
    rd.prune()
    assert not half.exists()


def test_jsonl_torn_line_and_truncation(tmp_path):
    p = tmp_path / "m.jsonl"
    append_jsonl(p, [{"step": 0}, {"step": 1}, {"step": 2}])
    with open(p, "a") as f:
        f.write('{"step": 3, "rew')  # torn by kill -9
    assert [r["step"] for r in read_jsonl(p)] == [0, 1, 2]
    truncate_jsonl(p, 1)
    assert [r["step"] for r in read_jsonl(p)] == [0, 1]
    assert p.read_text().endswith("\n")


def test_not_a_run(tmp_path):
    with pytest.raises(NotARunError, match="does not exist"):
        RunDir(tmp_path / "missing").read_config()
    (tmp_path / "empty").mkdir()
    with pytest.raises(NotARunError, match="no config.json"):
        RunDir(tmp_path / "empty").read_config()


def test_create_refuses_existing_run(tmp_path):
    rd = RunDir(tmp_path / "run")
    rd.create({})
    with pytest.raises(FileExistsError, match="tttd resume"):
        rd.create({})


def test_resumable_step_skips_incomplete_policy_states_and_is_kept(tmp_path):
    from tttd.rundir import POLICY_INCOMPLETE

    rd = RunDir(tmp_path / "run")
    rd.create({"steps": 9})
    for step in range(6):  # complete policy state at steps 1 and 3 only
        tmp = rd.begin_step(step)
        (tmp / "policy").mkdir()
        if step not in (1, 3):
            (tmp / "policy" / POLICY_INCOMPLETE).write_text("x")
        rd.commit_step(step, tmp, keep=2)
    assert rd.latest_step_dir().name == "step-000005"
    assert rd.latest_resumable_step_dir().name == "step-000003"
    assert sorted(p.name for p in rd.checkpoints.glob("step-*")) == ["step-000003", "step-000004", "step-000005"]
    # resumed after step 3: committing step 4 again drops the newer, abandoned step 5
    rd.commit_step(4, rd.begin_step(4), keep=2)
    assert sorted(p.name for p in rd.checkpoints.glob("step-*")) == ["step-000003", "step-000004"]
    assert rd.latest_resumable_step_dir().name == "step-000004"  # no policy folder: resumable
