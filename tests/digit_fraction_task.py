"""A test task whose reward is always defined and varies: the fraction of digits in the answer.

Used by the end-to-end tests so that every group has distinct rewards and every step trains
(the demo task can leave whole groups invalid on an untrained tiny model).
"""


import tttd
from tttd.task import Objective, Task, artifact_key
from tttd.types import Candidate, Evaluation, State


@tttd.register_task("digit-fraction")
class DigitFraction(Task):
    """Test task: the fraction of characters that are digits (higher is better)."""

    objective = Objective("maximize", "identity")

    def initial_states(self, n, rng):
        return [State(id=f"root{i}", value=None) for i in range(n)]

    def prompt(self, state, parent=None):
        best = "none yet" if state.value is None else f"{state.artifact['text']!r} scores {state.value:.3f}"
        return [{"role": "user", "content": f"Write digits. Current: {best}."}]

    def parse(self, completion, state):
        return Candidate(text=completion, data=completion)

    def verify(self, data, state=None):
        if not data:
            return self.invalid("empty answer")
        value = sum(c.isdigit() for c in data) / len(data)
        return Evaluation(valid=True, value=value, reward=value, artifact={"text": data},
                          key=artifact_key(data))
