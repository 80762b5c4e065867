"""The built-in toy task of ``tttd demo``: an Erdős-style step function written as digits.

The answer is a string of digits d_1..d_n (8 <= n <= 48; characters other than digits are
ignored). Each digit is one step of a function on [0, 2] with height h_i = (d_i + 0.5) / 10,
shifted so that its mean is exactly 1/2 (as the paper's Erdős initial states are); the answer is
invalid if the shift pushes a height outside [0, 1]. The value is the Erdős minimum-overlap
quantity of that step function, ``max_k sum_i h_i (1 - h_{i+k}) * 2/n`` (lower is better; a
constant function scores 0.5, the best known continuous functions about 0.381). Reward: 1/value.

It is small enough for a 1M-parameter model on a laptop CPU, yet its score is real and continuous:
the trusted verifier below recomputes it from the digits; nothing the model says about its own
score is used.
"""

from __future__ import annotations

import numpy as np

from tttd.registry import register_task
from tttd.tasks.digits import digit_prompt, parse_digits
from tttd.task import Objective, Task, artifact_key
from tttd.types import Candidate, Evaluation, Message, State

MIN_DIGITS = 8
MAX_DIGITS = 48


def digit_overlap(digits: str) -> float:
    """The Erdős-style overlap of the step function written by ``digits`` (ValueError if invalid)."""
    if not digits.isdigit() or not digits.isascii():
        raise ValueError("the answer must be digits 0-9")
    if not MIN_DIGITS <= len(digits) <= MAX_DIGITS:
        raise ValueError(f"need {MIN_DIGITS} to {MAX_DIGITS} digits, got {len(digits)}")
    h = (np.frombuffer(digits.encode(), dtype=np.uint8).astype(np.float64) - 48.0 + 0.5) / 10.0
    h = h - h.mean() + 0.5
    if h.min() < 0.0 or h.max() > 1.0:
        raise ValueError("after shifting to mean 1/2 a height leaves [0, 1]")
    n = len(h)
    return float(np.correlate(h, 1.0 - h, mode="full").max() * 2.0 / n)


@register_task("demo")
class DigitOverlapTask(Task):
    """Toy Erdős-style problem for the CPU demo: a step function written as digits; minimise its overlap."""

    objective = Objective(direction="minimize", transform="reciprocal", failure_reward=0.0)
    runs_code = False  # candidates are digit strings: nothing is executed
    # The global "demo" preset (tttd.config) sizes a CPU run; this task needs more steps.
    presets = {"demo": dict(steps=48, learning_rate=3e-3, max_tokens=40)}

    def __init__(self, root_digits: int = 12):
        if not MIN_DIGITS <= root_digits <= MAX_DIGITS:
            raise ValueError(f"root_digits must be in [{MIN_DIGITS}, {MAX_DIGITS}]")
        self.root_digits = root_digits

    def initial_states(self, n: int, rng: np.random.Generator) -> list[State]:
        roots = []
        while len(roots) < n:
            digits = "".join(str(d) for d in rng.integers(0, 10, self.root_digits))
            try:
                value = digit_overlap(digits)
            except ValueError:
                continue
            roots.append(State(id=f"root{len(roots)}", value=value, artifact={"digits": digits},
                               key=artifact_key(digits), reward=self.objective.reward(value)))
        return roots

    def prompt(self, state: State, parent: State | None = None) -> list[Message]:
        return digit_prompt("Write a step function as a string of digits 0-9 (8 to 48 digits).",
                            state, parent, "overlap", "Lower overlap is better.")

    def parse(self, completion: str, state: State) -> Candidate:
        return parse_digits(completion, MIN_DIGITS, MAX_DIGITS)

    def example_answer(self, state: State) -> str | None:
        return state.artifact.get("digits") or "5555555555"

    def draw(self, artifact, ax) -> bool:
        digits = (artifact or {}).get("digits")
        if not isinstance(digits, str) or not digits.isdigit():
            return False
        h = (np.array([int(c) for c in digits], dtype=float) + 0.5) / 10.0
        h = h - h.mean() + 0.5
        ax.stairs(h, np.linspace(0.0, 2.0, len(h) + 1), fill=True, alpha=0.6)
        ax.set_xlabel("x")
        ax.set_ylabel("h(x)")
        ax.set_ylim(0, 1)
        ax.set_title(f"step function of {digits}")
        return True

    def verify(self, data, state: State | None = None) -> Evaluation:
        if isinstance(data, dict):
            data = data.get("digits")
        if not isinstance(data, str):
            return self.invalid("expected a string of digits")
        try:
            value = digit_overlap(data)
        except ValueError as exc:
            return self.invalid(str(exc))
        return Evaluation(valid=True, value=value, reward=self.objective.reward(value),
                          message=f"overlap {value:.6f}", artifact={"digits": data},
                          key=artifact_key(data))
