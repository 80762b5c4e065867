"""One ablation worker: a process that runs the runs it is handed, one after the other, in-process.

Why a long-lived process rather than one ``tttd run`` per run: importing torch and transformers
costs seconds (tens of seconds on a loaded machine), more than a whole toy run; a worker pays it
once. Each run is still an ordinary run directory, started as ``tttd run`` starts one and
continued as ``tttd resume`` continues one (:func:`run_one`), so a kill at any moment loses at
most the step in flight.

Protocol (JSON lines): the parent writes ``{"run": ID, "path": DIR, "config": {...}}`` to the
worker's stdin; the worker answers on its stdout with ``{"run": ID, "event": "step", "step": k,
"seconds": s}`` per step and one ``{"run": ID, "event": "done" | "error", ...}`` per run. The
worker's own stdout (fd 1) is pointed at stderr so that library output cannot corrupt the
protocol. On Linux the worker dies with its parent (``PR_SET_PDEATHSIG``): a ``kill -9`` of
``tttd ablate`` leaves no orphan training in the background.

Ctrl-C (issue 32): the parent forwards SIGINT/SIGTERM to every worker once. A worker in a run's
steps commits the step in flight and answers ``{"event": "stopped"}`` (as ``tttd run`` stops); one
loading a run stops before its steps; either way it takes no further run and exits.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any, Callable


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class _Signalled:
    signum: int | None = None


def _remember(signum: int, _frame) -> None:  # outside a run's steps (loading, idle): stop after
    _Signalled.signum = signum


def run_one(path: str, config: dict[str, Any], on_step: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    """Start the run at ``path`` (``tttd run`` semantics), continue it (``tttd resume``), or, when it
    has finished, return its summary without touching it."""
    from tttd.build import build_task
    from tttd.cli.resume import finished_message
    from tttd.cli.run import add_run_secrets
    from tttd.config import config_from_dict
    from tttd.loop import Discovery
    from tttd.cli.preflight import check_run_config
    from tttd.rundir import RunDir
    from tttd.sandbox.report import check_isolation

    rd = RunDir(path)
    if rd.config.is_file():
        cfg = config_from_dict({k: v for k, v in rd.read_config().items() if not k.startswith("_")})
        run = Discovery(cfg, path, on_step=on_step)
        if finished_message(path, cfg.steps) is not None:
            run.restore()  # reads the checkpoint only; nothing is written for a finished run
            return run.summary()
        check_run_config(cfg)
        check_isolation(cfg.require_isolation)
        run.restore()
    else:
        if rd.path.exists():  # killed before config.json was written: nothing of it was committed
            shutil.rmtree(rd.path)
        cfg = config_from_dict(config)
        check_run_config(cfg)
        check_isolation(cfg.require_isolation)
        add_run_secrets(build_task(cfg), cfg)  # issue 31: each run's secret options (denoising's split), as tttd run
        run = Discovery(cfg, path, on_step=on_step)
        run.start()
    if _Signalled.signum is not None:  # signalled while loading: no step was in flight
        from tttd.signals import Stopped

        raise Stopped(f"stopped by {signal.Signals(_Signalled.signum).name} before its first step here", _Signalled.signum)
    return run.run()


def main() -> int:
    _die_with_parent()
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # library prints go to the log, never into the protocol
    sys.stdout = sys.stderr
    threads = int(os.environ.get("TTTD_ABLATE_THREADS", "0") or 0)
    if threads > 0:
        import torch

        torch.set_num_threads(threads)

    def send(obj: dict[str, Any]) -> None:
        proto.write(json.dumps(obj) + "\n")
        proto.flush()

    for s in (signal.SIGINT, signal.SIGTERM):
        signal.signal(s, _remember)
    send({"event": "ready", "pid": os.getpid()})
    for line in sys.stdin:
        if _Signalled.signum is not None:
            break
        if not line.strip():
            continue
        job = json.loads(line)
        rid, t0 = job["run"], time.perf_counter()

        def on_step(m: dict[str, Any], rid=rid) -> None:
            send({"run": rid, "event": "step", "step": m["step"], "seconds": time.perf_counter() - t0})

        from tttd.signals import HardStop, Stopped

        try:
            summary = run_one(job["path"], job["config"], on_step)
            send({"run": rid, "event": "done", "summary": summary, "seconds": time.perf_counter() - t0})
        except (Stopped, HardStop) as exc:  # Ctrl-C: the step in flight committed (Stopped)
            _Signalled.signum = getattr(exc, "signum", None) or exc.exit_code - 128
            send({"run": rid, "event": "stopped", "message": str(exc)[:300]})
            break
        except Exception as exc:  # one failed run must not stop the others; the parent reports it
            import traceback

            traceback.print_exc()
            send({"run": rid, "event": "error", "message": f"{type(exc).__name__}: {exc}"[:500]})
    return 0 if _Signalled.signum is None else 128 + _Signalled.signum


if __name__ == "__main__":
    sys.exit(main())
