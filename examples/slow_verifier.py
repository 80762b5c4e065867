"""An evaluation-heavy toy (issue 35): the demo's digit problem behind a slow verifier.

Every answer is checked by a program in the sandbox that sleeps ``sleep_s`` seconds (default
1.5) before it hands the digits back, then the trusted process scores them exactly as the demo
task does. It imitates a verifier that takes 1-2 s per candidate (AHC cases, kernel timing), so
that ``--async-steps`` can be measured where evaluation dominates a step:

    tttd run examples/slow_verifier.py --model tiny --task-option sleep_s=1.5 --workers 8
    tttd ablate examples/slow_verifier.py --variants full,async1,async2 ...   (docs/ablation.md)

The sleep spends no CPU, so more workers than cores (``--workers``) run the candidates at once.
"""

from __future__ import annotations

import tttd
from tttd.tasks.demo import DigitOverlapTask
from tttd.types import Candidate, Limits, Program, State

SOURCE = "import time\ndef main(digits, sleep):\n    time.sleep(sleep)\n    return {'digits': digits}\n"


@tttd.register_task("slow-verifier")
class SlowVerifier(DigitOverlapTask):
    """The demo's digits returned by a sandboxed program that sleeps first (a slow verifier)."""

    runs_code = True  # the demo does not; this one runs every answer in the sandbox

    def __init__(self, sleep_s: float = 1.5, root_digits: int = 12):
        super().__init__(root_digits=root_digits)
        if not 0 <= float(sleep_s) <= 30:
            raise ValueError("sleep_s must be in [0, 30]")
        self.sleep_s = float(sleep_s)

    def parse(self, completion: str, state: State) -> Candidate:
        cand = super().parse(completion, state)
        if cand.error is not None:
            return cand
        return Candidate(text=completion, program=Program(
            source=SOURCE, args={"digits": cand.data, "sleep": self.sleep_s},
            limits=Limits(wall_s=30 + self.sleep_s, memory_mb=512)))
