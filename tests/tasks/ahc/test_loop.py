"""The AHC tasks through the discovery loop: scripted C++ answers (parallel cases on the local
pool, archive, per-case scores kept for racing) and `tttd run ahc039 --model tiny` end to end."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tttd.config import resolve_config
from tttd.loop import Discovery
from tttd.policy import TokenUsage
from tttd.rundir import read_jsonl
from tttd.types import Sample

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
REPO = Path(__file__).resolve().parents[3]
GREEDY = (REPO / "examples" / "ahc" / "ahc058_greedy.cpp").read_text()


class ScriptedCpp:
    trainable = False

    def __init__(self):
        self.answers = [
            "My plan:\n```cpp\n" + GREEDY + "```",
            "```cpp\nint main( {\n```",
            "I have no program.",
            "```cpp\n#include <cstdio>\nint main(){ std::puts(\"0 9\"); }\n```",
        ]

    def sample(self, prompts, n, params):
        assert "AHC058" in prompts[0][0]["content"] and "no program yet" in prompts[0][0]["content"]
        return [[Sample([1], [2], [-0.1], self.answers[i % len(self.answers)]) for i in range(n)] for _ in prompts]

    def usage(self):
        return TokenUsage()


def test_scripted_cpp_answers_through_the_loop(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cfg = resolve_config(flag_values=dict(task="ahc058", steps=1, groups=1, group_size=4, workers=2,
                                          max_tokens=16, seed=0, out=str(tmp_path / "run"),
                                          task_options={"cases": "0-2"}))
    run = Discovery(cfg, tmp_path / "run", policy=ScriptedCpp())
    run.start()
    summary = run.run()
    rows = list(read_jsonl(tmp_path / "run" / "rollouts.jsonl"))
    assert [r["status"] for r in rows] == ["ok", "compile_error", "parse_error", "wrong_answer"]
    assert rows[0]["valid"] and rows[0]["value"] > 0
    assert rows[0]["reward"] == pytest.approx(rows[0]["value"] / 3e6)
    assert all(r["reward"] == 0 for r in rows[1:])
    assert summary["valid"] == 1
    archive = json.loads((tmp_path / "run" / "archive.json").read_text())
    kept = [e["state"] for e in archive["states"] if e["state"]["value"] is not None]
    assert len(kept) == 1 and len(kept[0]["metrics"]["case_scores"]) == 3  # what racing compares to
    assert kept[0]["artifact"]["code"].strip() == GREEDY.strip()


@pytest.mark.slow
def test_tttd_run_ahc039_with_the_tiny_model(tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    done = subprocess.run(
        [sys.executable, "-m", "tttd.cli", "run", "ahc039", "--model", str(tiny_model_dir), "--steps", "2",
         "--groups", "1", "--group-size", "2", "--max-tokens", "16", "--task-option", "cases=0-1",
         "--out", str(out), "--quiet", "--json", "--backend-option", "lora_rank=4"],
        capture_output=True, text=True, timeout=600, env=env, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 2 and summary["samples"] == 4
    rows = list(read_jsonl(out / "rollouts.jsonl"))
    assert len(rows) == 4 and all(r["status"] == "parse_error" for r in rows)  # no ```cpp from a 1M model
    assert json.loads((out / "config.json").read_text())["task_options"] == {"cases": "0-1"}
