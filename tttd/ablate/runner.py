"""Scheduling an ablation's runs over the machine: worker processes, a progress line with an ETA.

Sizing (``--jobs`` unset): one worker per CPU core this process may use, no more workers than
runs left, and no more than the memory allows (about 1.5 GiB per worker for a tiny local model);
each worker's torch uses ``cores // jobs`` threads, so the workers do not fight over cores.

State lives in the run directories only: a run is finished when its last committed step is the
last step, unfinished when it has a config.json, and new otherwise. So a second ``tttd ablate``
after a kill (of anything, at any moment) skips finished runs, resumes unfinished ones and starts
the rest: no separate journal can disagree with the runs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty, Queue
from typing import Any, Callable

from tttd.ablate.spec import AblationSpec, run_path

WORKER_GIB = 1.5
#: Idle 2-core figures for the tiny model (tttd.cli.demo: a 48-step demo trains at 0.85 s and
#: samples frozen at 0.42 s a step of 4 x 8 samples) and the start of a run in a warm worker.
IDLE_TRAINED_STEP_S = 0.85
IDLE_FROZEN_STEP_S = 0.42
IDLE_RUN_START_S = 3.0
IDLE_WORKER_START_S = 15.0
DEMO_STEP_SAMPLES = 32


def usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def available_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2 ** 20
    except OSError:
        pass
    return None


def default_jobs(runs_left: int) -> int:
    jobs = usable_cores()
    mem = available_gib()
    if mem is not None:
        jobs = min(jobs, max(1, int(mem // WORKER_GIB)))
    return max(1, min(jobs, max(1, runs_left)))


def worker_threads(jobs: int) -> int:
    """Torch threads per worker: the cores shared out, or 1 on a machine already busier than its
    cores (spinning thread pools then cost far more than they give: a step of the demo took
    minutes instead of seconds with 2 threads per process at a load average of 20 on 2 cores)."""
    cores = usable_cores()
    busy = hasattr(os, "getloadavg") and os.getloadavg()[0] >= cores
    return 1 if busy else max(1, cores // max(1, jobs))


def run_status(path: Path, steps: int) -> tuple[str, int]:
    """("finished" | "unfinished" | "new", steps done) of one run directory, read only."""
    from tttd.rundir import NotARunError, RunDir

    rd = RunDir(path)
    if not rd.config.is_file():
        return "new", 0
    try:
        ckpt = rd.latest_step_dir()
    except NotARunError:  # damaged (its resume will say how), or read in the middle of a first commit
        return "unfinished", 0
    if ckpt is None or not (ckpt / "loop.json").is_file():
        return "unfinished", 0
    try:
        done = int(json.loads((ckpt / "loop.json").read_text())["step"]) + 1
    except (ValueError, KeyError, TypeError):
        return "unfinished", 0
    return ("finished" if done >= steps else "unfinished"), done


@dataclass
class Plan:
    spec: AblationSpec
    root: Path
    status: dict[tuple[str, int], tuple[str, int]] = field(default_factory=dict)

    @classmethod
    def read(cls, spec: AblationSpec, root: str | Path) -> "Plan":
        root = Path(root)
        return cls(spec, root, {rid: run_status(run_path(root, *rid), spec.steps) for rid in spec.run_ids()})

    def todo(self) -> list[tuple[str, int]]:
        return [rid for rid in self.spec.run_ids() if self.status[rid][0] != "finished"]

    def steps_left(self) -> int:
        return sum(self.spec.steps - done for st, done in self.status.values() if st != "finished")

    #: the signal (SIGINT/SIGTERM) that stopped :func:`execute`, or None
    stopped_by: int | None = None

    def count(self, what: str) -> int:
        return sum(1 for st, _ in self.status.values() if st == what)


def step_seconds(cfg_trains: bool, samples_per_step: int) -> float:
    per = IDLE_TRAINED_STEP_S if cfg_trains else IDLE_FROZEN_STEP_S
    return per * max(1.0, samples_per_step / DEMO_STEP_SAMPLES)


def estimate_seconds(plan: Plan, configs: dict[tuple[str, int], Any], jobs: int) -> float:
    """Idle-machine estimate of the remaining work spread over ``jobs`` workers (a lower bound on a
    busy machine); runs of the same variant already finished here give their measured step time."""
    measured = _measured_step_seconds(plan)
    work = 0.0
    for rid in plan.todo():
        cfg = configs[rid]
        per = measured.get(rid[0]) or step_seconds(cfg.train, cfg.groups * cfg.group_size)
        work += IDLE_RUN_START_S + per * (plan.spec.steps - plan.status[rid][1])
    return work / max(1, jobs) + (IDLE_WORKER_START_S if plan.todo() else 0.0)


def _measured_step_seconds(plan: Plan) -> dict[str, float]:
    from tttd.rundir import read_jsonl

    per: dict[str, list[float]] = {}
    for (variant, seed), (st, _) in plan.status.items():
        if st != "finished":
            continue
        metrics = read_jsonl(run_path(plan.root, variant, seed) / "metrics.jsonl")
        secs = [float(m.get("spend", {}).get("seconds", 0.0)) for m in metrics]
        if len(secs) >= 2:
            per.setdefault(variant, []).append((secs[-1] - secs[0]) / (len(secs) - 1))
    return {v: sum(x) / len(x) for v, x in per.items() if x}


def clock(seconds: float) -> str:
    seconds = int(max(0, round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class ProgressLine:
    """``ablate: 12/48 runs done, 2 running, step 340/2304, 5m12s, ETA 21m40s`` on stderr: redrawn
    in place on a terminal, otherwise one line at most every ``every`` seconds and per finished run."""

    def __init__(self, total_runs: int, done_runs: int, steps_total: int, steps_done: int,
                 quiet: bool = False, every: float = 10.0, stream=None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.total_runs, self.done_runs = total_runs, done_runs
        self.steps_total, self.steps_done0, self.steps_done = steps_total, steps_done, steps_done
        self.quiet, self.every = quiet, every
        self.t0 = time.monotonic()
        self.last = 0.0
        self.running = 0

    def eta(self) -> float | None:
        new = self.steps_done - self.steps_done0
        if new <= 0:
            return None
        rate = (time.monotonic() - self.t0) / new
        return rate * (self.steps_total - self.steps_done)

    def text(self) -> str:
        eta = self.eta()
        return (f"ablate: {self.done_runs}/{self.total_runs} runs done, {self.running} running, "
                f"step {self.steps_done}/{self.steps_total}, {clock(time.monotonic() - self.t0)}, "
                f"ETA {'-' if eta is None else clock(eta)}")

    def show(self, force: bool = False) -> None:
        if self.quiet:
            return
        now = time.monotonic()
        if self.tty:
            self.stream.write("\r\033[K" + self.text())
            self.stream.flush()
        elif force or now - self.last >= self.every:
            self.stream.write(self.text() + "\n")
            self.stream.flush()
            self.last = now

    def say(self, text: str) -> None:
        if self.quiet:
            return
        if self.tty:
            self.stream.write("\r\033[K")
        self.stream.write(text + "\n")
        self.stream.flush()
        self.show()

    def close(self) -> None:
        if not self.quiet and self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _worker_command() -> list[str]:
    """Never from the current directory: a checkout named ``tttd`` there would shadow the package."""
    from tttd.safepath import python_argv

    return python_argv(module="tttd.ablate.worker")


def execute(plan: Plan, configs: dict[tuple[str, int], Any], jobs: int, quiet: bool = False,
            on_line: Callable[[str], None] | None = None) -> dict[tuple[str, int], str]:
    """Run every unfinished run of ``plan`` on ``jobs`` workers; return the errors by run."""
    todo = plan.todo()
    errors: dict[tuple[str, int], str] = {}
    if not todo:
        return errors
    total_steps = plan.spec.steps * len(plan.status)
    done_steps = total_steps - plan.steps_left()
    progress = ProgressLine(len(plan.status), plan.count("finished"), total_steps, done_steps, quiet)
    logs = plan.root / "logs"
    logs.mkdir(exist_ok=True)
    events: Queue = Queue()
    threads = str(worker_threads(jobs))
    env = {**os.environ, "TTTD_ABLATE_THREADS": threads, "OMP_NUM_THREADS": threads}
    workers = []
    for w in range(min(jobs, len(todo))):
        log = open(logs / f"worker{w}.log", "ab")
        # own session: a terminal's Ctrl-C reaches this process only, which forwards it once
        # (a second signal would make a worker abandon its step in flight)
        proc = subprocess.Popen(_worker_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=log, env=env, text=True, bufsize=1, start_new_session=True)
        log.close()
        (logs / f"worker{w}.pid").write_text(f"{proc.pid}\n")
        workers.append(proc)
        threading.Thread(target=_reader, args=(w, proc, events), daemon=True).start()
    queue = list(todo)
    busy: dict[int, tuple[str, int]] = {}
    last_step: dict[tuple[str, int], int] = {rid: plan.status[rid][1] for rid in todo}
    alive = set(range(len(workers)))

    def on_signal(signum: int, _frame) -> None:  # forward to every worker once; dispatch no more
        if plan.stopped_by is None:
            plan.stopped_by = signum
            for proc in workers:
                if proc.poll() is None:
                    proc.send_signal(signum)

    saved = {}
    if threading.current_thread() is threading.main_thread():
        saved = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}

    def dispatch(w: int) -> None:
        if not queue or plan.stopped_by is not None:
            try:
                workers[w].stdin.close()
            except (BrokenPipeError, OSError):
                pass
            return
        rid = queue.pop(0)
        busy[w] = rid
        cfg = configs[rid]
        job = {"run": list(rid), "path": str(run_path(plan.root, *rid)), "config": cfg.to_dict()}
        try:
            workers[w].stdin.write(json.dumps(job) + "\n")
            workers[w].stdin.flush()
        except (BrokenPipeError, OSError, ValueError):  # the worker died: its reader reports it
            pass
        progress.running = len(busy)

    progress.show(force=True)
    try:
        while alive:
            try:
                w, msg = events.get(timeout=0.2)  # a signal handler runs between two waits
            except Empty:
                continue
            if msg is None:  # the worker's stdout closed: it ended
                alive.discard(w)
                rid = busy.pop(w, None)
                if rid is not None:
                    errors[rid] = f"worker ended (exit {workers[w].wait()}); see {logs}/worker{w}.log"
                    progress.say(f"ablate: {rid[0]} seed {rid[1]} failed: {errors[rid]}")
                continue
            event = msg.get("event")
            if event == "ready":
                dispatch(w)
            elif event == "step":
                rid = tuple(msg["run"])
                progress.steps_done += max(0, msg["step"] + 1 - last_step.get(rid, 0))
                last_step[rid] = msg["step"] + 1
                progress.show()
            elif event == "stopped":  # committed its step in flight, then stopped (Ctrl-C)
                busy.pop(w, None)
                progress.running = len(busy)
                progress.say(f"ablate: {msg['run'][0]} seed {msg['run'][1]} stopped: {msg.get('message', '')}")
                dispatch(w)
            elif event in ("done", "error"):
                rid = tuple(msg["run"])
                busy.pop(w, None)
                progress.steps_done += max(0, plan.spec.steps - last_step.get(rid, 0)) if event == "done" else 0
                if event == "done":
                    progress.done_runs += 1
                    s = msg.get("summary") or {}
                    progress.say(f"ablate: {rid[0]} seed {rid[1]} finished: best {s.get('best_value')}, "
                                 f"{s.get('valid')}/{s.get('samples')} valid, {clock(msg.get('seconds', 0))}")
                else:
                    errors[rid] = msg.get("message", "?")
                    progress.say(f"ablate: {rid[0]} seed {rid[1]} failed: {errors[rid]} (log: {logs}/worker{w}.log)")
                progress.running = len(busy)
                dispatch(w)
                progress.show(force=True)
        for rid in queue if plan.stopped_by is None else []:  # every worker ended early (crashes):
            errors[rid] = f"not started: every worker ended; see {logs}"  # say so, never a silent gap
    finally:
        for s, old in saved.items():
            signal.signal(s, old)
        for proc in workers:
            if proc.poll() is None:
                try:
                    proc.stdin.close()
                except (OSError, ValueError):
                    pass
        for proc in workers:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        progress.close()
    return errors


def _reader(w: int, proc: subprocess.Popen, events: Queue) -> None:
    for line in proc.stdout:
        try:
            events.put((w, json.loads(line)))
        except json.JSONDecodeError:
            continue
    events.put((w, None))
