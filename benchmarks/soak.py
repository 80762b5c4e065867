"""Soak: many sandboxed evaluations in one process, with flat resources (issue 24).

    python benchmarks/soak.py                        # 2,000 evaluations on 2 workers
    python benchmarks/soak.py --evaluations 200 --json

Runs a mix of candidates through the real local executor and sandbox, as a discovery run does:
ok results, crashes, wall timeouts, memory blow-ups, bad output, and a few evaluations whose jail
is SIGKILLed from outside (infrastructure: started again by :class:`tttd.faults.RetryingSubmit`).
Prints, after a warm-up and at the end: open file descriptors, live child processes, threads,
leftover sandbox temporary directories, and this process's resident memory (RSS). Flat means a
month-long run does not leak. ``tests/test_soak.py`` runs a short version.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tttd.executor import LocalExecutor  # noqa: E402
from tttd.faults import RetryingSubmit  # noqa: E402
from tttd.types import Limits, Program  # noqa: E402

LIM = Limits(wall_s=5, memory_mb=256)
KINDS = {
    "ok": "def main(i):\n    return {'x': [i] * 100}\n",
    "crash": "def main(i):\n    raise ValueError('boom')\n",
    "timeout": "import time\ndef main(i):\n    time.sleep(60)\n",
    "memory": "def main(i):\n    return bytearray(2**31)\n",
    "bad_output": "def main(i):\n    return object()\n",
    "lost": "import time\ndef main(i):\n    time.sleep(2.5)\n    return i\n",  # killed from outside once
}
# One cycle of 50 evaluations: mostly ok, as a discovery run's are.
CYCLE = ["ok"] * 40 + ["crash"] * 4 + ["memory"] * 2 + ["bad_output"] * 2 + ["timeout"] + ["lost"]


def program(kind: str, i: int) -> Program:
    lim = Limits(wall_s=1.0, memory_mb=256) if kind == "timeout" else LIM
    return Program(source=KINDS[kind], args={"i": i}, limits=lim)


def child_pids() -> list[int]:
    me, out = os.getpid(), []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == me:
                        out.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return out


def sandbox_dirs() -> list[str]:
    return [d for d in os.listdir(tempfile.gettempdir()) if d.startswith("tttd-sbx-")]


def figures() -> dict[str, float]:
    with open("/proc/self/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return {"fds": len(os.listdir("/proc/self/fd")), "children": len(child_pids()),
            "threads": threading.active_count(), "sandbox_tmp_dirs": len(sandbox_dirs()),
            "rss_mib": round(rss / 1024, 1)}


def _killer(stop: threading.Event, victims: list[int], quota: list[int]) -> None:
    """SIGKILL, from outside, one jail per 'lost' program submitted (as an OOM killer would): a
    jail that lived > 1.5 s (only the 'lost' sleepers do; the timeouts end at 1 s); its retry
    then runs to the end (the quota is spent)."""
    me = os.getpid()
    while not stop.is_set():
        for tid in os.listdir(f"/proc/{me}/task"):
            try:
                with open(f"/proc/{me}/task/{tid}/children") as f:
                    kids = [int(x) for x in f.read().split()]
            except OSError:
                continue
            for pid in kids:
                if pid in victims:
                    continue
                try:
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        cmd = f.read()
                except OSError:
                    continue
                if b"bwrap" in cmd and len(victims) < quota[0] and _is_lost(pid):
                    victims.append(pid)
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
        time.sleep(0.05)


def _is_lost(pid: int) -> bool:
    """Whether a jail runs a 'lost' program: it has lived > 1.5 s."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            start = int(f.read().rsplit(")", 1)[1].split()[19])
        with open("/proc/uptime") as f:
            up = float(f.read().split()[0])
    except (OSError, ValueError):
        return False
    return up - start / os.sysconf("SC_CLK_TCK") > 1.5


def soak(evaluations: int, workers: int, warmup: int = 50, kill: bool = True, quiet: bool = False) -> dict:
    from tttd.sandbox import platform_info

    kill = kill and bool(platform_info().bwrap)  # without a jail a kill looks like the candidate's
    statuses: dict[str, int] = {}
    stop, victims, quota = threading.Event(), [], [0]
    own_tmp = tempfile.mkdtemp(prefix="tttd-soak-")  # count our sandboxes' leftovers only
    tempfile.tempdir, saved_tmp = own_tmp, tempfile.tempdir
    t0 = time.perf_counter()
    with LocalExecutor(workers=workers) as ex:
        submit = RetryingSubmit(ex.submit, retries=2)
        start = None
        done = 0
        killer = threading.Thread(target=_killer, args=(stop, victims, quota), daemon=True) if kill else None
        if killer:
            killer.start()
        batch = workers * 4
        while done < evaluations:
            if start is None and done >= warmup:
                start = figures()
                if not quiet:
                    print(f"start ({done} evaluations warm-up): {json.dumps(start)}", flush=True)
            n = min(batch, evaluations - done)
            kinds = [CYCLE[(done + k) % len(CYCLE)] for k in range(n)]
            if not kill:
                kinds = ["ok" if k == "lost" else k for k in kinds]
            quota[0] += kinds.count("lost")
            futs = [submit(program(k, done + j)) for j, k in enumerate(kinds)]
            for k, f in zip(kinds, futs):
                r = f.result(timeout=300)
                statuses[r.status] = statuses.get(r.status, 0) + 1
            done += n
            if not quiet and done % 500 < batch:
                print(f"  {done} evaluations, {time.perf_counter() - t0:.0f} s: {json.dumps(figures())}", flush=True)
        stop.set()
        if killer:
            killer.join(5)
        retried = submit.retried
    end = figures()
    wall = time.perf_counter() - t0
    tempfile.tempdir = saved_tmp
    leftovers = os.listdir(own_tmp)
    if not leftovers:
        os.rmdir(own_tmp)
    out = {"evaluations": evaluations, "workers": workers, "seconds": round(wall, 1),
           "per_second": round(evaluations / wall, 1), "statuses": dict(sorted(statuses.items())),
           "jails_killed_from_outside": len(victims), "retried": retried, "start": start or end, "end": end,
           "tmpdir": own_tmp, "leftovers": leftovers}
    if not quiet:
        print(f"end: {json.dumps(end)}")
        print(f"{evaluations} evaluations in {wall:.0f} s ({out['per_second']}/s, {workers} workers); "
              f"statuses {out['statuses']}; {len(victims)} jails killed from outside, {retried} retried")
        print("load: " + open("/proc/loadavg").read().strip())
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--evaluations", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-kill", action="store_true", help="no jail is killed from outside")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--smoke", action="store_true", help="40 evaluations: checks that the command runs; not a measurement")
    a = ap.parse_args(argv)
    if a.smoke:
        a.evaluations = 40
    out = soak(a.evaluations, a.workers, kill=not a.no_kill, quiet=a.json)
    if a.json:
        print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
