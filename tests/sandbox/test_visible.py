"""Item 10 of issue 9 through the real loop: a run records the sandbox's protections in
config.json (``_sandbox``) and, per step, the protections active for its evaluations."""

from __future__ import annotations

import json

import tttd
from tests.fakes import FakeDigitPolicy
from tttd.config import resolve_config
from tttd.loop import Discovery
from tttd.task import Objective, Task
from tttd.types import Candidate, Evaluation, Limits, Program, State

SOURCE = "def main(n):\n    return n * 2\n"


@tttd.register_task("sandbox-visible-test")
class VisibleTask(Task):
    """Test task: a trivial program per completion."""

    objective = Objective("maximize", "identity")

    def initial_states(self, n, rng):
        return [State(id=f"root{i}", value=None) for i in range(n)]

    def prompt(self, state, parent=None):
        return [{"role": "user", "content": "double it"}]

    def parse(self, completion, state):
        return Candidate(text=completion, code=SOURCE,
                         program=Program(source=SOURCE, args={"n": len(completion)}, limits=Limits(wall_s=20)))

    def verify(self, data, state=None):
        return Evaluation(valid=True, value=float(data), reward=float(data), artifact={"n": data})


def test_run_records_protections(tmp_path):
    cfg = resolve_config(flag_values=dict(task="sandbox-visible-test", steps=1, groups=1, group_size=2,
                                          workers=1, seed=0, learning_rate=0.1))
    out = tmp_path / "run"
    run = Discovery(cfg, out, policy=FakeDigitPolicy(length=3))
    run.start()
    run.run()
    conf = json.loads((out / "config.json").read_text())
    rep = tttd.sandbox.isolation_report()
    assert conf["_sandbox"]["full"] == rep["full"] and conf["_sandbox"]["active"] == rep["active"]
    assert conf["require_isolation"] is False
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    prot = metrics[0]["sandbox_protections"]
    assert "rlimit_as" in prot and "data_only_result" in prot
    assert ("bwrap" in prot) == ("bwrap" in rep["active"])
