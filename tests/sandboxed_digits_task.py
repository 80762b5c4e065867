"""A test task whose every answer runs in the sandbox: the demo's digits, echoed back by a tiny
program that sleeps ``TTTD_TEST_EVAL_SLEEP`` seconds first (so a worker can be killed while it
runs; with ``TTTD_TEST_EVAL_SLEEP_WHILE`` set to a path, only answers parsed while that file
exists sleep, so the steps after the faults need not wait), then verified in the trusted process
exactly as the demo does. Used by issue 24's lost-worker tests and ``benchmarks/soak.py``."""

from __future__ import annotations

import os

import tttd
from tttd.tasks.demo import DigitOverlapTask
from tttd.types import Candidate, Limits, Program, State

SOURCE = "import time\ndef main(digits, sleep):\n    time.sleep(sleep)\n    return {'digits': digits}\n"


@tttd.register_task("sandboxed-digits")
class SandboxedDigits(DigitOverlapTask):
    """Test task: the demo's digits, returned by a sandboxed program, verified in the parent."""

    def parse(self, completion: str, state: State) -> Candidate:
        cand = super().parse(completion, state)
        if cand.error is not None:
            return cand
        sleep = float(os.environ.get("TTTD_TEST_EVAL_SLEEP", "0"))
        while_file = os.environ.get("TTTD_TEST_EVAL_SLEEP_WHILE")  # only while this file exists
        if while_file and not os.path.exists(while_file):
            sleep = 0.0
        return Candidate(text=completion, program=Program(
            source=SOURCE, args={"digits": cand.data, "sleep": sleep},
            limits=Limits(wall_s=30 + sleep, memory_mb=512)))
