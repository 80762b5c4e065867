"""A real two-node Ray cluster on this machine (issue 24): a worker process and then a whole node
die while a real `tttd run --executor ray` is evaluating. The lost evaluations are started again
on what is left, never scored as failures, and the run equals one that met no fault.

The cluster: ``ray start --head --block`` and ``ray start --address --block``, each in its own
session so that killing that session's process group kills exactly that node (never ``ray stop``,
which would stop every Ray on the machine); torn down in ``finally``. Slow (~1-3 min: two Ray
starts and node-death detection), but it runs wherever ray is installed."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fault_driver import assert_same_run, cli, env, metrics

ray = pytest.importorskip("ray")

TASK = str(Path(__file__).parent / "sandboxed_digits_task.py")


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


#: Our cluster's own token (Ray >= 2.5x authenticates clients; a token another Ray on this machine
#: left in ~/.ray must not decide whether ours can be reached).
AUTH = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}


#: How soon our cluster declares a killed node dead: Ray's defaults (a health check every 3 s, 10 s
#: timeout, 5 failures) made the run wait ~20-40 s for it; a dead node's checks fail at once, so
#: checks every 1 s find it in ~5 s, and a live node must miss five 3-second checks in a row.
HEALTH = {"RAY_health_check_period_ms": "1000", "RAY_health_check_timeout_ms": "3000",
          "RAY_health_check_failure_threshold": "5"}


def _ray(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ray.scripts.scripts", *args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True, env=env(**AUTH, **HEALTH))


def _nodes(address: str) -> int:
    got = subprocess.run([sys.executable, "-c", (
        "import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False, logging_level='ERROR');"
        "print(sum(n['Alive'] for n in ray.nodes()))"), address], capture_output=True, text=True, timeout=120,
        env=env(**AUTH))
    return int(got.stdout.strip().splitlines()[-1]) if got.returncode == 0 else 0


def _kill_session(p: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(p.pid, sig)
        except ProcessLookupError:
            return
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass


def _workers_in(root: int, name: str = "ray::_safe_run") -> list[int]:
    """Ray worker processes running an evaluation, among the descendants of ``root`` (a node)."""
    parents: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    parents[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    out = []
    for pid in parents:
        p, seen = pid, 0
        while p in parents and p != root and seen < 50:
            p, seen = parents[p], seen + 1
        if p != root:
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f.read().startswith(name.encode()):
                    out.append(pid)
        except OSError:
            pass
    return out


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_worker_and_node_die_mid_step(tmp_path):
    ref = tmp_path / "ref"
    args = ["run", TASK, "--model", "fake", "--steps", "3", "--groups", "2", "--group-size", "4", "--seed", "4",
            "--json"]
    assert cli(*args, "--out", str(ref), "--quiet", "--workers", "2").returncode == 0  # local, no fault
    port = _port()
    address = f"127.0.0.1:{port}"
    temp = Path("/tmp") / f"tttd-ray-{port}"  # short: Ray's socket paths have a length limit
    head = _ray("start", "--head", f"--port={port}", "--num-cpus=1", "--include-dashboard=false",
                "--disable-usage-stats", f"--temp-dir={temp}", "--block")
    node = None
    run = None
    try:
        t0 = time.monotonic()
        while _nodes(address) < 1:
            assert head.poll() is None and time.monotonic() - t0 < 180, "the head node did not start"
            time.sleep(1)
        node = _ray("start", f"--address={address}", "--num-cpus=1", "--block")
        while _nodes(address) < 2:
            assert node.poll() is None and time.monotonic() - t0 < 240, "the second node did not join"
            time.sleep(1)
        out = tmp_path / "run"
        slow = tmp_path / "slow-evaluations"  # answers parsed while it exists sleep 2 s in the jail
        slow.touch()
        run = subprocess.Popen([sys.executable, "-m", "tests.fault_driver", *args, "--executor", "ray",
                                "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env(RAY_ADDRESS=address, TTTD_TEST_EVAL_SLEEP="2",
                                       TTTD_TEST_EVAL_SLEEP_WHILE=str(slow), **AUTH))
        # 1) a worker process on the head node dies while it evaluates
        deadline = time.monotonic() + 240
        while not _workers_in(head.pid):
            assert run.poll() is None and time.monotonic() < deadline, run.stderr.read()[-3000:]
            time.sleep(0.05)
        time.sleep(0.3)
        for pid in _workers_in(head.pid)[:1]:
            os.kill(pid, signal.SIGKILL)
        # 2) the whole second node dies while one of its workers evaluates
        while not _workers_in(node.pid):
            assert run.poll() is None and time.monotonic() < deadline, run.stderr.read()[-3000:]
            time.sleep(0.05)
        time.sleep(0.3)
        _kill_session(node)
        # both faults are in: later answers need not be slow (the lost ones keep their 2 s: their
        # programs were built before); the run must still equal the fault-free one
        slow.unlink()
        _, err = run.communicate(timeout=300)
        assert run.returncode == 0, err[-3000:]
        assert "lost to the infrastructure were started again" in err
        assert all("lost" not in m["status_counts"] for m in metrics(out))
        assert_same_run(out, ref)
    finally:
        if run is not None and run.poll() is None:
            run.kill()
            run.wait()
        if node is not None:
            _kill_session(node)
        _kill_session(head)
