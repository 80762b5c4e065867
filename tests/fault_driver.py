"""``python -m tests.fault_driver ARGS``: the real ``tttd`` CLI with the ``local`` backend replaced
by the exact torch-free :class:`~tests.fakes.FakeDigitPolicy`, slowed down by
``TTTD_TEST_SAMPLE_DELAY`` seconds per sample call (issue 24's fault tests send real signals and
start second processes while a step is in flight)."""

from __future__ import annotations

import os
import sys
import time

from tests.fakes import FakeDigitPolicy


class SlowDigitPolicy(FakeDigitPolicy):
    def __init__(self, seed: int = 0):
        super().__init__(seed=seed)
        self.delay = float(os.environ.get("TTTD_TEST_SAMPLE_DELAY", "0"))

    def sample(self, prompts, n, params):
        marker = os.environ.get("TTTD_TEST_STEP_MARKER")
        if marker:  # tells the test that a step is in flight
            with open(marker, "a") as f:
                f.write("sample\n")
        time.sleep(self.delay)
        return super().sample(prompts, n, params)


def main() -> int:
    from tttd import policy

    policy.BACKENDS["local"] = "tests.fault_driver:SlowDigitPolicy"
    from tttd.cli import main as cli_main

    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())
