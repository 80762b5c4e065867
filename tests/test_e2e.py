"""End to end on the tiny local model: real runs through the CLI, killed with SIGKILL and resumed."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from tttd.rundir import read_jsonl  # noqa: E402

HERE = Path(__file__).resolve().parent
TASK = str(HERE / "digit_fraction_task.py")
TIMING = ("seconds", "spend")


def tttd(*args, env_extra=None, timeout=300):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "tttd.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def run_args(model, out, steps=3):
    return ["run", TASK, "--model", str(model), "--steps", str(steps), "--groups", "2",
            "--group-size", "4", "--max-tokens", "16", "--lr", "0.003", "--kl-coef", "0.05",
            "--seed", "5", "--out", str(out), "--quiet", "--backend-option", "lora_rank=4"]


def strip(row):
    return {k: v for k, v in row.items() if not k.startswith(TIMING)}


@pytest.fixture(scope="module")
def reference(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("e2e") / "ref"
    done = tttd(*run_args(tiny_model_dir, out), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 3 and summary["samples"] == 3 * 2 * 4
    rows = list(read_jsonl(out / "metrics.jsonl"))
    assert all(r["trained"] for r in rows), "every step must train for this test to mean anything"
    return out


@pytest.mark.slow
@pytest.mark.parametrize("point", ["sample", "evaluate", "train", "checkpoint", "commit"])
def test_kill_and_resume_equals_uninterrupted(tiny_model_dir, reference, tmp_path, point):
    out = tmp_path / "run"
    killed = tttd(*run_args(tiny_model_dir, out), env_extra={"TTTD_FAULT": f"{point}:1"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = tttd("resume", str(out), "--json", "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 3 and summary["run_dir"] == str(out)
    got = [strip(r) for r in read_jsonl(out / "metrics.jsonl")]
    want = [strip(r) for r in read_jsonl(reference / "metrics.jsonl")]
    assert got == want
    assert json.loads((out / "archive.json").read_text()) == json.loads((reference / "archive.json").read_text())
    assert list(read_jsonl(out / "rollouts.jsonl")) == list(read_jsonl(reference / "rollouts.jsonl"))


@pytest.mark.slow
def test_show_and_extend_a_finished_run(tiny_model_dir, reference, tmp_path):
    shown = tttd("show", str(reference), "--json")
    info = json.loads(shown.stdout)
    assert info["status"] == "finished" and info["steps_done"] == 3
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(reference, copy)
    more = tttd("resume", str(copy), "--steps", "4", "--json", "--quiet")
    assert more.returncode == 0, more.stderr
    assert [r["step"] for r in read_jsonl(copy / "metrics.jsonl")] == [0, 1, 2, 3]
