"""Where a step's programs run: the executor (started on first use), the bounded retries of
evaluations lost to the infrastructure (issue 24), the measured evaluation time for the spend
ledger and the sandbox protections seen (issue 32 moved this out of :mod:`tttd.loop`)."""

from __future__ import annotations

from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable

from tttd import faults
from tttd.build import build_executor
from tttd.config import RunConfig
from tttd.ledger import EvalMeter


class Evaluator:
    def __init__(self, cfg: RunConfig, run_dir: Path, on_event: Callable[[str], None]):
        self.cfg, self.run_dir, self.on_event = cfg, run_dir, on_event
        self._executor = None
        self._retrying: faults.RetryingSubmit | None = None
        self.meter = EvalMeter()  # evaluation CPU/GPU-seconds of every program run, retries included
        self._protections: set[str] | None = None

    def submit(self, program: Any, step: int) -> Future:
        """Run a program in the sandbox (the executor starts on first use); a lost evaluation is
        started again (bounded, see :class:`tttd.faults.RetryingSubmit`)."""
        if self._executor is None:
            try:
                self._executor = build_executor(self.cfg)
            except (ValueError, ImportError):
                raise
            except Exception as exc:  # e.g. a Ray cluster that cannot be reached
                raise faults.InfrastructureError(
                    f"the {self.cfg.executor} executor could not start ({type(exc).__name__}: "
                    f"{str(exc)[:200]}); nothing of step {step} was kept. Fix it, then "
                    f"`tttd resume {self.run_dir}` continues exactly") from None
            self._retrying = faults.RetryingSubmit(
                self._executor.submit, on_result=lambda res, prog: self.meter.add(res, prog.limits))
        return self._retrying(program)

    def result(self, fut: Future | None) -> Any:
        """The sandbox result of a launched candidate (None: nothing was run)."""
        if fut is None:
            return None
        result = fut.result()
        prot = getattr(result, "protections", None)  # protections active in this step (a task's
        if prot is not None and not faults.is_infrastructure(result):  # own future may return other things)
            self._protections = set(prot) if self._protections is None else self._protections & set(prot)
        return result

    def take_protections(self) -> list[str] | None:
        got, self._protections = self._protections, None
        return sorted(got or []) or None

    def check_infrastructure(self, step: int) -> None:
        """Issue 24: evaluations still lost after their retries stop the step (never scored)."""
        retrying = self._retrying
        lost = retrying.take_exhausted() if retrying is not None else []
        retried = retrying.take_retried() if retrying is not None else 0
        if retried and not lost:
            self.on_event(f"step {step}: {retried} evaluation(s) lost to the infrastructure were started again")
        if lost:
            raise faults.infrastructure_error(lost, step, self.run_dir, retrying.retries)

    def close(self, interrupted: bool) -> None:
        if self._executor is None:
            return
        close = self._executor.close
        try:  # a stopped step's queued evaluations are dropped, not waited for
            close(cancel_pending=True) if interrupted else close()
        except TypeError:
            close()
        self._executor = None
