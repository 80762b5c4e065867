"""How steps, statuses and budget stops are worded wherever a person reads them (issue 23).

One step numbering everywhere a person reads it: steps count from 1 (the progress line's
``step 3/10`` is the third step), and the initial states are step 0. Run directories keep the
loop's 0-based index (``"step": 2`` in metrics.jsonl is step 3); :func:`shown_step` converts,
and everything printed (progress, summary, ``show``, ``runs``, ``report``) goes through it.
"""

from __future__ import annotations

import shlex
from typing import Any

#: The status words of a run, shared by ``tttd show``, ``tttd runs`` and the report.
FINISHED, STOPPED_BUDGET, RESUMABLE = "finished", "stopped (budget)", "resumable"


def shown_step(step: int | None) -> int | None:
    """The step number a person reads for the loop's 0-based ``step`` (initial states: 0)."""
    if step is None:
        return None
    return max(0, int(step) + 1)


def step_text(step: int | None) -> str:
    """``step 3``, or ``step 0, an initial state``, or ``no step yet``."""
    shown = shown_step(step)
    if shown is None:
        return "no step yet"
    return f"step {shown}" + (", an initial state" if shown == 0 else "")


_CAP_FLAGS = {"max_samples": "--max-samples", "max_hours": "--max-hours", "max_usd": "--max-usd"}


def raise_cap_command(run_dir: Any, reason: str, ledger: Any, cfg: Any, steps_done: int) -> str:
    """The exact ``tttd resume`` command that raises the cap named in ``reason`` (a
    :func:`tttd.ledger.budget_stop` text) far enough to finish the run's remaining steps."""
    cap = reason.split(" ", 1)[0]
    flag = _CAP_FLAGS.get(cap)
    head = f"tttd resume {shlex.quote(str(run_dir))}"
    if flag is None:
        return head
    left = max(1, int(cfg.steps) - int(steps_done))
    last = getattr(ledger, "last_step", None) or {}
    if cap == "max_samples":
        value: Any = int(ledger.samples + left * cfg.groups * cfg.group_size)
    elif cap == "max_hours":
        per = float(last.get("seconds") or 0.0) / 3600
        value = f"{max(float(cfg.max_hours) * 1.5, ledger.seconds / 3600 + per * left * 1.2):.3g}"
    else:
        per = float(last.get("usd") or 0.0)
        spent = float(ledger.usd or 0.0)
        value = f"{max(float(cfg.max_usd) * 1.5, spent + per * left * 1.2):.2f}"
    return f"{head} {flag} {value}"


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 step``, ``2 steps`` (issue 36: "1 steps")."""
    return f"{n:,} {word if n == 1 else (many or word + 's')}"
