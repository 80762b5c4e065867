"""``--async-steps`` 1 and 2 end to end on the tiny local model (the hf engine, real training):
the rollouts' policy versions, and a run killed with SIGKILL then resumed equals an
uninterrupted one (issue 35)."""

import json
import signal

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from tests.test_e2e import run_args, strip, tttd  # noqa: E402
from tttd.rundir import read_jsonl  # noqa: E402

STEPS = 4


@pytest.mark.slow
@pytest.mark.parametrize("k", [1, 2])
def test_async_kill_9_and_resume_equals_uninterrupted(tiny_model_dir, tmp_path, k):
    ref, out = tmp_path / "ref", tmp_path / "run"
    done = tttd(*run_args(tiny_model_dir, ref, steps=STEPS), "--async-steps", str(k), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["steps"] == STEPS and summary["samples"] == STEPS * 2 * 4
    assert all(r["trained"] for r in read_jsonl(ref / "metrics.jsonl")), "every step must train"
    versions = {r["step"]: r["policy_version"] for r in read_jsonl(ref / "rollouts.jsonl")}
    assert versions == {s: max(-1, s - 1 - k) for s in range(STEPS)}
    killed = tttd(*run_args(tiny_model_dir, out, steps=STEPS), "--async-steps", str(k),
                  env_extra={"TTTD_FAULT": "train:2"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = tttd("resume", str(out), "--json", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    assert [strip(r) for r in read_jsonl(out / "metrics.jsonl")] == [strip(r) for r in read_jsonl(ref / "metrics.jsonl")]
    assert json.loads((out / "archive.json").read_text()) == json.loads((ref / "archive.json").read_text())
    assert list(read_jsonl(out / "rollouts.jsonl")) == list(read_jsonl(ref / "rollouts.jsonl"))
