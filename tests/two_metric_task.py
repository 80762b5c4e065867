"""A test task with two conflicting metrics (several objectives, issue 37): the answer is a digit
string; ``nines`` counts its 9s and ``zeros`` its 0s (both maximised), so no answer is best at
both and the archive's Pareto front has several states. ``sum`` (minimised) is a third metric."""

import tttd
from tttd.objectives import MetricSpec
from tttd.task import Objective, Task, artifact_key
from tttd.types import Candidate, Evaluation, State


@tttd.register_task("two-metrics")
class TwoMetrics(Task):
    objective = Objective("maximize", "identity")
    metric_specs = (MetricSpec("nines", "maximize", (0, 12)), MetricSpec("zeros", "maximize", (0, 12)),
                    MetricSpec("sum", "minimize", (0, 108)))
    runs_code = False

    def initial_states(self, n, rng):
        return [State(id=f"root{i}", value=None) for i in range(n)]

    def prompt(self, state, parent=None):
        return [{"role": "user", "content": f"Digits. Current: {state.artifact.get('text')!r}."}]

    def parse(self, completion, state):
        return Candidate(text=completion, data=completion)

    def verify(self, data, state=None):
        if not data or not data.isdigit():
            return self.invalid("not digits")
        obj = {"nines": float(data.count("9")), "zeros": float(data.count("0")),
               "sum": float(sum(map(int, data)))}
        return Evaluation(valid=True, value=obj["nines"], reward=obj["nines"], artifact={"text": data},
                          key=artifact_key(data), metrics={"objectives": obj})
