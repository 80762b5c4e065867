"""Flaky training and sampling services (issue 24): which errors are worth another try, a bounded
retry with backoff, and the one-line stop when a service cannot complete a step.

What is retried, and what is not:

- sampling and base-model log-prob requests are repeated (at most ``retries`` times, backoff
  ``backoff_s * 2**k`` capped at 30 s) on HTTP 408/429/5xx, timeouts and dropped connections:
  a request carries its own seed, so a repeat asks the same question; only completed steps
  reach the run's ledger, so a repeat never counts a sample twice;
- a training step (``forward_backward`` + ``optim_step``) is never repeated: after a failure
  the service may or may not have applied the update, and applying it twice would silently
  change the run. The step stops instead (:class:`ServiceError`, one line, exit 1) and ``tttd
  resume`` restarts from the last checkpoint saved on the service (exact, see
  ``TinkerPolicy.save``), which also covers a service that restarted and lost its sessions.
"""

from __future__ import annotations

import time
from typing import Callable, TypeVar

from tttd.faults import RunFault

T = TypeVar("T")
_MAX_BACKOFF_S = 30.0
_RETRYABLE_NAMES = {"APIConnectionError", "APITimeoutError", "RequestFailedError", "SidecarDiedError",
                    "SidecarIPCError", "RemoteProtocolError", "ReadError", "ConnectError", "ReadTimeout"}


class ServiceError(RunFault):
    """A service could not complete a step within its retry budget (one line; resumable)."""


def retryable(exc: BaseException) -> bool:
    """HTTP 408/429/5xx, timeouts and dropped connections (by status code or by the SDK's
    exception class name, so that every SDK generation is covered)."""
    status = getattr(exc, "status_code", None)
    if isinstance(status, int):
        return status in (408, 429) or status >= 500
    if isinstance(exc, (TimeoutError, ConnectionError)):
        return True
    return type(exc).__name__ in _RETRYABLE_NAMES


def describe(exc: BaseException) -> str:
    status = getattr(exc, "status_code", None)
    text = " ".join(str(exc).split())[:160]
    return f"{type(exc).__name__}{f' (HTTP {status})' if status else ''}: {text}"


def with_retries(attempt: Callable[[], T], what: str, retries: int, backoff_s: float,
                 where: str, sleep: Callable[[float], None] = time.sleep) -> T:
    """``attempt()`` until it succeeds; retryable errors are tried again ``retries`` times, then
    (or at once for other errors) a :class:`ServiceError` naming the service and the last error."""
    for k in range(retries + 1):
        try:
            return attempt()
        except Exception as exc:  # noqa: BLE001 - classified below
            if not retryable(exc):
                raise ServiceError(f"the service at {where} refused {what}: {describe(exc)}; "
                                   "the step was not committed. Fix the cause, then `tttd resume` the run") from None
            if k == retries:
                raise ServiceError(
                    f"the service at {where} kept failing {what} ({retries + 1} tries, last: {describe(exc)}); "
                    "the step was not committed and the run stops at its last completed step. When the "
                    "service is back, `tttd resume` the run (it continues exactly)") from None
            sleep(min(_MAX_BACKOFF_S, backoff_s * 2 ** k))
    raise AssertionError("unreachable")


def training_failed(exc: BaseException, where: str) -> ServiceError:
    return ServiceError(
        f"the service at {where} failed during a training step ({describe(exc)}); it is not repeated "
        "(the update may or may not have been applied), the step was not committed, and `tttd resume` "
        "restarts from the last checkpoint saved on the service (exact)")
