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
GREEDY = (REPO / "tttd" / "tasks" / "ahc" / "baselines" / "ahc058_greedy.cpp").read_text()


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
    # issue 32: the executor's measured time of every program (compile + cases), as for any task
    assert run.ledger.eval_cpu_seconds > 0
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


class BrokenThenRecord:
    """Step 0: answers that do not compile; later steps: record the prompts."""

    trainable = False

    def __init__(self):
        self.prompts = []

    def sample(self, prompts, n, params):
        self.prompts.append([p[0]["content"] for p in prompts])
        answer = "```cpp\nint main() { undeclared_name_xyz = 1; }\n```"
        return [[Sample([1], [2], [-0.1], answer) for _ in range(n)] for _ in prompts]

    def usage(self):
        return TokenUsage()


def test_compile_errors_reach_the_next_prompt(tmp_path, monkeypatch):
    """Issue 20: the compiler's message tail of a failed attempt is shown (escaped) in the next
    prompt for the state it was sampled from."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cfg = resolve_config(flag_values=dict(task="ahc058", steps=2, groups=1, group_size=2, workers=2,
                                          max_tokens=16, seed=0, task_options={"cases": "0-1"}))
    policy = BrokenThenRecord()
    run = Discovery(cfg, tmp_path / "run", policy=policy)
    run.start()
    run.run()
    first, second = policy.prompts[0][0], policy.prompts[1][0]
    assert "did not compile" not in first
    assert "did not compile" in second and "undeclared_name_xyz" in second and "error" in second
    archive = json.loads((tmp_path / "run" / "archive.json").read_text())
    root = archive["states"][0]["state"]
    assert "undeclared_name_xyz" in root["metrics"]["compile_error"]  # persisted for resume


def test_compile_error_in_prompt_is_escaped_and_cannot_close_the_fence():
    from tttd.tasks.ahc.tasks import Ahc058Task
    from tttd.types import Evaluation, State

    task = Ahc058Task(cases="0-1")
    state = State(id="s", value=None, artifact={"code": ""})
    bad = Evaluation(valid=False, status="compile_error",
                     message="compilation failed:\nMain.cpp:1: error: ``` \x1b[2J\u202e evil")
    task.note_attempts(state, [Evaluation(valid=False, status="parse_error", message="x"), bad])
    text = task.prompt(state)[0]["content"]
    section = text.split("did not compile", 1)[1].split("## Rules")[0]
    assert "\x1b" not in section and "\u202e" not in section and "\\x1b[2J" in section
    assert section.count("```") == 2  # the section's own fence only
    # an attempt group that compiles clears it; a group of unparsable answers leaves it
    task.note_attempts(state, [Evaluation(valid=False, status="parse_error", message="x")])
    assert "did not compile" in task.prompt(state)[0]["content"]
    task.note_attempts(state, [Evaluation(valid=False, status="wrong_answer", message="x")])
    assert "did not compile" not in task.prompt(state)[0]["content"]


def test_ahc_statements_carry_no_result_derived_hints_and_paper_preset_gives_cases_2_cpus():
    import re

    from tttd.tasks.ahc.statements import STATEMENTS
    from tttd.tasks.ahc.tasks import Ahc039Task, Ahc058Task

    for text in STATEMENTS.values():
        assert not re.search(r"strong solutions|top solutions|reach about|5\.6e6", text, re.I)
    for cls in (Ahc039Task, Ahc058Task):
        cfg = resolve_config(task_presets=cls.presets, preset="paper")
        assert cfg.cpus_per_eval == 2 and cfg.visit_counting == "rollout"
    assert resolve_config(task_presets=Ahc058Task.presets).cpus_per_eval == 1
    task = Ahc058Task(cases="0-1", cpus_per_eval=2)
    assert task.case_cpus == 2 and task.parallel == max(1, (os.cpu_count() or 1) // 2)


class RacingScript:
    """Step 0 (from the empty root): the greedy baseline and the same program with a comment (two
    equal children: the root's top 2). Step 1 (from the root again, best-of-N reuse): a program
    that buys nothing (far worse on every case) and the greedy program with another comment
    (equal to the rival on every case, a different key and a different case order)."""

    trainable = False

    def __init__(self):
        self.calls = 0

    def sample(self, prompts, n, params):
        worse = "```cpp\n#include <cstdio>\nint main(){int N,L,T;long long K;scanf(\"%d %d %d %lld\",&N,&L,&T,&K);" \
                "for(int t=0;t<T;t++)puts(\"-1\");}\n```"
        def same(note):
            return "```cpp\n// the same program, " + note + "\n" + GREEDY + "```"

        first = ["```cpp\n" + GREEDY + "```", same("once")]
        answers = (first if self.calls == 0 else [worse, same("twice")])[:n]
        self.calls += 1
        return [[Sample([1], [2], [-0.1], a) for a in answers] for _ in prompts]

    def usage(self):
        return TokenUsage()


def test_racing_through_the_loop_drops_a_worse_child_and_keeps_an_equal_one(tmp_path, monkeypatch):
    """Issue 35: racing end to end (real compiles and cases in the jail). The bar is the archive's:
    the root is empty (no value, so the old parent bar never raced its children), but after step
    0 it keeps 2 children (topk_children 2), so step 1's children race against the 2nd of them,
    taken from the archive: the worse child is raced out after the first stage; the child equal
    to the rival runs every case (it cannot be shown worse) and is valid."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cfg = resolve_config(flag_values=dict(task="ahc058", steps=2, groups=1, group_size=2, workers=2,
                                          max_tokens=16, seed=0, out=str(tmp_path / "run"), reuse="none",
                                          task_options={"cases": "0-19", "race": "8", "race_alpha": 0.01}))
    run = Discovery(cfg, tmp_path / "run", policy=RacingScript())
    run.start()
    run.run()
    rows = list(read_jsonl(tmp_path / "run" / "rollouts.jsonl"))
    assert [r["status"] for r in rows] == ["ok", "ok", "raced_out", "ok"]
    assert rows[2]["parent"] == rows[0]["parent"]  # the same (empty) root, expanded twice
    rival_value = rows[1]["value"]
    assert rows[0]["value"] == pytest.approx(rival_value)
    assert rows[2]["valid"] is False and rows[2]["reward"] < rival_value / 3e6
    assert "raced out after 8/20 cases" in rows[2]["message"] and "top-k under its parent" in rows[2]["message"]
    assert rows[3]["valid"] and rows[3]["value"] == pytest.approx(rival_value)
    archive = json.loads((tmp_path / "run" / "archive.json").read_text())
    kept = [e["state"] for e in archive["states"] if e["state"]["value"] is not None]
    assert len(kept) == 2 and all(len(s["metrics"]["case_scores"]) == 20 for s in kept)


@pytest.mark.parametrize("fail_step", [1, 2])
def test_async_racing_takes_the_rival_at_selection_and_resumes_with_it(tmp_path, monkeypatch, fail_step):
    """--async-steps 1 (real compiles and cases): step 1 is selected and launched before step 0
    joins the archive, so its worse child has no rival (fewer than k children kept) and runs every
    case; step 2 is launched from the archive after step 0 (2 children kept): its worse child is
    raced out. A run that fails in the training of step 1 (or 2) resumes by launching step 1 (or
    2) again from the checkpoint, with the rivals it had when it was selected (none; the 2nd
    child), not the resumed archive's: the same rollouts and archive as the uninterrupted run."""
    from tttd.faults import FaultInjected

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))

    def config(name):
        return resolve_config(flag_values=dict(task="ahc058", steps=3, groups=1, group_size=2, workers=2,
                                               max_tokens=16, seed=0, out=str(tmp_path / name), reuse="none",
                                               async_steps=1,
                                               task_options={"cases": "0-19", "race": "8", "race_alpha": 0.01}))

    ref = tmp_path / "ref"
    run = Discovery(config("ref"), ref, policy=RacingScript())
    run.start()
    run.run()
    rows = list(read_jsonl(ref / "rollouts.jsonl"))
    assert [r["status"] for r in rows] == ["ok", "ok", "ok", "ok", "raced_out", "ok"]
    assert rows[2]["value"] < rows[0]["value"] / 2  # the worse child of step 1, evaluated in full

    out = tmp_path / "crash"
    policy = RacingScript()  # the same script object answers the resumed run (calls >= 1: step 1's answers)
    monkeypatch.setenv("TTTD_FAULT", f"train:{fail_step}:raise")
    with pytest.raises(FaultInjected):
        crashed = Discovery(config("crash"), out, policy=policy)
        crashed.start()
        crashed.run()
    monkeypatch.delenv("TTTD_FAULT")
    resumed = Discovery(config("crash"), out, policy=policy)
    resumed.restore()
    resumed.run()
    assert list(read_jsonl(out / "rollouts.jsonl")) == rows

    def archived(path):  # the measured CPU time of the cases is the one thing that differs
        data = json.loads((path / "archive.json").read_text())
        for e in data["states"]:
            e["state"]["metrics"].pop("cpu_s", None)
        return data

    assert archived(out) == archived(ref)
