"""Each math task end to end through the discovery loop.

1. With the tiny local model: it rarely writes a program, so this exercises prompting, sampling,
   parse failures and the archive/advantage/checkpoint path with failures handled.
2. With a scripted policy that answers with real programs (a good one, one that lies about its
   score, a crash, a timeout, no code): exercises the sandbox, the trusted verifier and archiving.
"""

import json

import pytest

from tttd.config import resolve_config
from tttd.loop import Discovery
from tttd.policy import TokenUsage
from tttd.rundir import read_jsonl
from tttd.types import Sample

TASKS = ["erdos", "ac1", "ac2", "circle_packing_26", "circle_packing_32"]

GOOD = {
    "erdos": "def run(seed=42, budget_s=1000, **kwargs):\n    import numpy as np\n"
             "    h = np.full(50, 0.5)\n    return h, 0.0, 50\n",  # claims C5 = 0 (a lie), true C5 = 0.5
    "ac1": "def propose_candidate(seed=42, budget_s=1000, **kwargs):\n    return [1.0] * 1200\n",
    "ac2": "def construct_function():\n    return [1.0, 2.0, 1.0] * 400\n",
    "circle_packing_26": "def run_packing():\n    import numpy as np\n    n = 26\n"
                         "    xs = (np.arange(n) % 6 + 0.5) / 6\n    ys = (np.arange(n) // 6 + 0.5) / 6\n"
                         "    c = np.stack([xs, ys], 1)\n    r = np.full(n, 1 / 12)\n    return c, r, 99.0\n",
    "circle_packing_32": "def run_packing():\n    import numpy as np\n    n = 32\n"
                         "    xs = (np.arange(n) % 6 + 0.5) / 6\n    ys = (np.arange(n) // 6 + 0.5) / 6\n"
                         "    c = np.stack([xs, ys], 1)\n    r = np.full(n, 1 / 12)\n    return c, r, 99.0\n",
}
TRUE_VALUE = {"erdos": 0.5, "ac1": 2.0, "circle_packing_26": 26 / 12, "circle_packing_32": 32 / 12}


class ScriptedPolicy:
    """Answers every prompt with the same five completions."""

    trainable = False

    def __init__(self, task):
        entry = GOOD[task].split("(")[0].replace("def ", "")
        self.answers = [
            "Here is my program:\n```python\n" + GOOD[task] + "```",
            "```python\ndef " + entry + "(*a, **k):\n    raise RuntimeError('boom')\n```",
            "```python\nimport time\ndef " + entry + "(*a, **k):\n    time.sleep(60)\n```",
            "I cannot write code today.",
            "```python\ndef " + entry + "(*a, **k):\n    return [float('nan')] * 2000\n```",
        ]

    def sample(self, prompts, n, params):
        return [[Sample([1], [2, 3], [-0.1, -0.2], self.answers[i % len(self.answers)]) for i in range(n)]
                for _ in prompts]

    def usage(self):
        return TokenUsage()


def _cfg(task, out, **kw):
    values = dict(task=task, steps=1, groups=2, group_size=5, eval_timeout_s=3.0, eval_memory_mb=1024,
                  workers=2, max_tokens=24, seed=0, out=str(out))
    values.update(kw)
    return resolve_config(flag_values=values)


@pytest.mark.parametrize("task", TASKS)
def test_scripted_programs_through_sandbox_and_verifier(task, tmp_path):
    run = Discovery(_cfg(task, tmp_path / task), tmp_path / task, policy=ScriptedPolicy(task))
    run.start()
    summary = run.run()
    rows = list(read_jsonl(tmp_path / task / "rollouts.jsonl"))
    statuses = [r["status"] for r in rows[:5]]
    assert statuses[0] == "ok" and rows[0]["valid"]
    assert statuses[1] == "error" and "boom" in rows[1]["message"]
    assert statuses[2] == "timeout"
    assert statuses[3] == "parse_error"
    assert not rows[4]["valid"]  # NaN heights rejected by the trusted verifier
    if task in TRUE_VALUE:  # the program's claimed score is never used
        assert rows[0]["value"] == pytest.approx(TRUE_VALUE[task], rel=1e-12)
    assert summary["valid"] == 2  # the good answer, once per group
    archive = json.loads((tmp_path / task / "archive.json").read_text())
    assert json.dumps(archive).count("def ") >= 1  # the valid child's code was archived
    # best/ re-verifies to its recorded value through `tttd verify`'s own path
    from tttd.cli.verify import verify_construction
    from tttd.registry import get_task

    best = json.loads((tmp_path / task / "best" / "best.json").read_text())
    artifact = json.loads((tmp_path / task / "best" / "artifact.json").read_text())
    again = verify_construction(get_task(task), artifact)
    assert again.valid and again.value == pytest.approx(best["value"], rel=1e-9)


@pytest.mark.slow
def test_short_runs_with_the_tiny_model(tiny_model_dir, tmp_path):
    pytest.importorskip("torch")
    from tttd.policy.local import LocalPolicy

    policy = LocalPolicy(str(tiny_model_dir), lora_rank=4, seed=0)
    for task in TASKS:
        cfg = _cfg(task, tmp_path / task, group_size=2, steps=2, learning_rate=1e-3)
        run = Discovery(cfg, tmp_path / task, policy=policy)
        run.start()
        summary = run.run()
        assert summary["steps"] == 2 and summary["samples"] == 8
        rows = list(read_jsonl(tmp_path / task / "metrics.jsonl"))
        assert [r["step"] for r in rows] == [0, 1]
        roll = list(read_jsonl(tmp_path / task / "rollouts.jsonl"))
        assert len(roll) == 8
        for r in roll:  # a valid rollout is "ok" with a value; an invalid one says why
            assert (r["status"] == "ok") == r["valid"] == (r["value"] is not None), r
            assert r["valid"] or (r["status"] and r["message"]), r
        prompts = {r["prompt_hash"] for r in roll}
        assert len(prompts) >= 1
        assert (tmp_path / task / "checkpoint" / "LATEST").exists()
