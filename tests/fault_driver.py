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
    def __init__(self, seed: int = 0, **local_options):  # stands in for the local backend: its declared
        super().__init__(seed=seed)                       # options (model, lora_rank, ...) mean nothing here
        self.delay = float(os.environ.get("TTTD_TEST_SAMPLE_DELAY", "0"))

    def sample(self, prompts, n, params):
        marker = os.environ.get("TTTD_TEST_STEP_MARKER")
        if marker:  # tells the test that a step is in flight
            with open(marker, "a") as f:
                f.write("sample\n")
        time.sleep(self.delay)
        self.calls = getattr(self, "calls", 0) + 1
        if os.environ.get("TTTD_TEST_DO") and self.calls == int(os.environ.get("TTTD_TEST_AT_CALL", "1")):
            import subprocess

            subprocess.run(["sh", "-c", os.environ["TTTD_TEST_DO"]], check=True)  # the fault, mid-step
        if self.calls == int(os.environ.get("TTTD_TEST_SERVICE_DOWN_AT", "0")):
            from tttd.policy.service_retry import with_retries

            def down():
                raise ConnectionResetError("connection dropped (test)")

            with_retries(down, "a sample request", 2, 0.0, "http://127.0.0.1:9")  # raises ServiceError
        if self.calls == int(os.environ.get("TTTD_TEST_BREAK_SANDBOX_AT", "0")):
            import tttd.sandbox

            def broken(*a, **k):
                raise OSError("cannot start the sandbox interpreter (test)")

            tttd.sandbox.run = broken  # every later evaluation is lost to the infrastructure
        return super().sample(prompts, n, params)


def main() -> int:
    from tttd import policy

    policy.BACKENDS["local"] = "tests.fault_driver:SlowDigitPolicy"
    import tttd.policy.models

    tttd.policy.models.check = lambda model: None  # the stand-in loads no model: any --model name will do
    import tttd.ablate.runner

    # tttd ablate's workers: this driver too (the fake policy), as ``--ablate-worker``
    tttd.ablate.runner._worker_command = lambda: [sys.executable, "-m", "tests.fault_driver", "--ablate-worker"]
    if sys.argv[1:] == ["--ablate-worker"]:
        from tttd.ablate.worker import main as worker_main

        return worker_main()
    if os.environ.get("TTTD_TEST_EXECUTOR_FAILS"):
        import tttd.executor

        def no_workers(*a, **k):
            raise OSError("no worker could be started (test)")

        tttd.executor.EXECUTORS["local"] = no_workers
    from tttd.cli import main as cli_main

    return cli_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())


# ------------------------------------------------------------------ helpers for the tests

from pathlib import Path  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TIMING = ("seconds", "spend")


def run_args(out, steps: int = 6, seed: int = 3) -> list[str]:
    return ["run", "demo", "--model", "fake", "--steps", str(steps), "--groups", "2", "--group-size", "4",
            "--seed", str(seed), "--out", str(out), "--quiet", "--json"]


def env(**extra: str) -> dict[str, str]:
    e = {**os.environ, "PYTHONPATH": str(ROOT)}
    e.pop("TTTD_FAULT", None)
    e.update({k: str(v) for k, v in extra.items()})
    return e


def cli(*args: str, timeout: float = 120, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tests.fault_driver", *args], capture_output=True,
                          text=True, timeout=timeout, env=env(**extra), cwd=str(ROOT))


def spawn(*args: str, **extra: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.fault_driver", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env(**extra), cwd=str(ROOT))


def wait_lines(path: Path, n: int, proc: subprocess.Popen | None = None, timeout: float = 60) -> None:
    """Wait until ``path`` has ``n`` lines (a step marker) or fail."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if path.exists() and len(path.read_text().splitlines()) >= n:
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the run ended early: {proc.returncode} {proc.stderr.read()[-2000:]}")
        time.sleep(0.02)
    raise AssertionError(f"{path} never reached {n} lines")


def one_line(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr[-3000:]
    return lines[0]


def metrics(out: Path) -> list[dict]:
    from tttd.rundir import read_jsonl

    return [{k: v for k, v in r.items() if not k.startswith(TIMING)} for r in read_jsonl(out / "metrics.jsonl")]


def assert_same_run(out: Path, ref: Path) -> None:
    """A resumed run equals the uninterrupted one: metrics (line count and content), archive,
    best value, rollouts, ledger of samples; and nothing half-written is left."""
    from tttd.rundir import read_jsonl

    assert len(metrics(out)) == len(metrics(ref))
    assert metrics(out) == metrics(ref)
    assert json.loads((out / "archive.json").read_text()) == json.loads((ref / "archive.json").read_text())
    assert json.loads((out / "best" / "best.json").read_text())["value"] == \
        json.loads((ref / "best" / "best.json").read_text())["value"]
    assert list(read_jsonl(out / "rollouts.jsonl")) == list(read_jsonl(ref / "rollouts.jsonl"))
    last = out / "checkpoint" / (out / "checkpoint" / "LATEST").read_text().strip() / "loop.json"
    last_ref = ref / "checkpoint" / (ref / "checkpoint" / "LATEST").read_text().strip() / "loop.json"
    ledger, ledger_ref = json.loads(last.read_text())["ledger"], json.loads(last_ref.read_text())["ledger"]
    for k in ("samples", "evaluations", "valid", "prompt_tokens", "sampled_tokens", "trained_tokens"):
        assert ledger[k] == ledger_ref[k], k
    assert not list((out / "checkpoint").glob("*.tmp")), "a half-written checkpoint was left"
    assert not [p for p in out.rglob(".*.tmp")], "a half-written file was left"
