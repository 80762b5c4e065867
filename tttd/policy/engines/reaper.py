"""Stop vLLM's engine processes when the tttd process that started them dies.

vLLM runs its engine core (and tensor-parallel workers) in child processes. When tttd is killed
(SIGKILL, OOM killer, a node preemption) those children are orphaned and keep their GPU memory:
measured here, a ``VLLM::EngineCore`` outlived its SIGKILLed parent for minutes, which would block
``tttd resume`` on the same GPU. :func:`watch` starts a small watchdog in its own session that polls
its parent (this watchdog is reparented when it dies) and then kills the given process trees.
"""

from __future__ import annotations

import os
import subprocess

from tttd.safepath import python_argv

_WATCHDOG = r"""
import os, shutil, signal, sys, time
import psutil
parent, paths = int(sys.argv[1]), sys.argv[2].split(os.pathsep) if sys.argv[2] else []
pids = [int(p) for p in sys.argv[3:]]
procs = []
for pid in pids:
    try:
        procs.append(psutil.Process(pid))
    except psutil.Error:
        pass
# the parent is dead once this watchdog is reparented (a dead parent can stay a zombie, so
# pid_exists() would go on saying yes while whoever started it waits on pipes the orphans hold)
while os.getppid() == parent and any(p.is_running() for p in procs):
    time.sleep(0.5)
if os.getppid() != parent:
    for p in procs:
        try:
            tree = p.children(recursive=True) + [p]
        except psutil.Error:
            continue
        for q in tree:
            try:
                q.kill()
            except psutil.Error:
                pass
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)
"""


def children() -> set[int]:
    """Pids of this process's descendants now."""
    import psutil

    return {p.pid for p in psutil.Process().children(recursive=True)}


def watch(pids: set[int], paths: tuple[str, ...] = ()) -> subprocess.Popen | None:
    """Kill ``pids`` (and their descendants) and delete ``paths`` once this process has died."""
    if not pids:
        return None
    return subprocess.Popen(
        [*python_argv(code=_WATCHDOG), str(os.getpid()), os.pathsep.join(paths),
         *map(str, sorted(pids))],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True, close_fds=True,
    )
