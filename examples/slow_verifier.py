"""An evaluation-heavy toy (issue 35): a trivial score behind a slow verifier.

Every answer goes to a program in the sandbox that sleeps ``sleep_s`` seconds (default 1.5)
before it hands the text back; the trusted process then scores it: the fraction of its
characters that are digits (higher is better; an empty answer is invalid). The score is
deliberately one that even a barely trained model gets a graded reward on, so every group
trains; the sleep imitates a verifier that takes 1-2 s per candidate (AHC cases, kernel timing),
so that ``--async-steps`` can be measured where evaluation dominates a step:

    tttd run examples/slow_verifier.py --model tiny --task-option sleep_s=1.5 --workers 4
    tttd ablate examples/slow_verifier.py --variants full async1 async2 ...   (docs/ablation.md)

The sleep spends no CPU, so more workers than cores (``--workers``) run candidates at once.
"""

from __future__ import annotations

import numpy as np

import tttd
from tttd.task import Objective, Task, artifact_key
from tttd.types import Candidate, Evaluation, Limits, Message, Program, State

SOURCE = "import time\ndef main(text, sleep):\n    time.sleep(sleep)\n    return {'text': text}\n"


@tttd.register_task("slow-verifier")
class SlowVerifier(Task):
    """Toy: the fraction of digits in the answer, checked by a sandboxed program that sleeps first."""

    objective = Objective("maximize", "identity", failure_reward=0.0)
    runs_code = True  # every answer runs in the sandbox

    def __init__(self, sleep_s: float = 1.5):
        if not 0 <= float(sleep_s) <= 30:
            raise ValueError("sleep_s must be in [0, 30]")
        self.sleep_s = float(sleep_s)

    def initial_states(self, n: int, rng: np.random.Generator) -> list[State]:
        return [State(id=f"root{i}", value=None) for i in range(n)]

    def prompt(self, state: State, parent: State | None = None) -> list[Message]:
        best = "none yet" if state.value is None else f"{state.artifact['text']!r} scores {state.value:.3f}"
        return [{"role": "user", "content": f"Write digits. Current: {best}."}]

    def parse(self, completion: str, state: State) -> Candidate:
        return Candidate(text=completion, program=Program(
            source=SOURCE, args={"text": completion, "sleep": self.sleep_s},
            limits=Limits(wall_s=30 + self.sleep_s, memory_mb=512)))

    def verify(self, data, state: State | None = None) -> Evaluation:
        text = data.get("text") if isinstance(data, dict) else None
        if not isinstance(text, str) or not text:
            return self.invalid("empty answer")
        value = sum(c.isdigit() for c in text) / len(text)
        return Evaluation(valid=True, value=value, reward=value, artifact={"text": text}, key=artifact_key(text))
