"""No weak mode by accident (issue 19). Without full isolation (``TTTD_SANDBOX_BWRAP=0``) ``tttd run``
and ``tttd verify`` on a code task exit 2 with one line and write nothing; with
``--allow-weak-isolation`` the candidate runs, never with more privilege than an unprivileged user.
``test_nonroot.py`` runs this module again as the unprivileged user (where the weak mode exists
even with a pyenv interpreter under /root: it runs as that user, with Landlock)."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from tests.proc_helpers import child_pids
from tttd import sandbox
from tttd.sandbox import runner
from tttd.types import Limits

REPO = Path(__file__).resolve().parents[2]
TASK = '''
import tttd
from tttd.task import Objective, Task
from tttd.types import Candidate, Evaluation, Limits, Program, State


@tttd.register_task("weak-code-test")
class CodeTask(Task):
    objective = Objective("maximize", "identity")

    def initial_states(self, n, rng):
        return [State(id=f"r{i}", value=None) for i in range(n)]

    def prompt(self, state, parent=None):
        return [{"role": "user", "content": "x"}]

    def parse(self, completion, state):
        code = completion.split("```python\\n", 1)[-1].split("```", 1)[0]
        return Candidate(text=completion, code=code, program=Program(source=code, limits=Limits(wall_s=20)))

    def verify(self, data, state=None):
        return Evaluation(valid=True, value=float(data), reward=1.0, artifact={"d": data})
'''


def _tttd(args, cwd, weak_env=True):
    env = {**os.environ, "PYTHONPATH": str(REPO), "TTTD_SANDBOX_BWRAP": "0" if weak_env else "1"}
    return subprocess.run([sys.executable, "-m", "tttd.cli", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=180)


@pytest.fixture()
def files(tmp_path):
    d = tmp_path / "src"
    d.mkdir()
    (d / "task.py").write_text(TASK)
    (d / "prog.py").write_text("def main():\n    return 7\n")
    work = tmp_path / "work"
    work.mkdir()
    return d, work


def test_verify_and_run_refuse_without_full_isolation(files):
    src, work = files
    done = _tttd(["verify", str(src / "task.py"), str(src / "prog.py")], work)
    assert done.returncode == 2, done
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "TTTD_SANDBOX_BWRAP=0" in lines[0] and "fix:" in lines[0], done.stderr
    run = work / "run"
    done = _tttd(["run", str(src / "task.py"), "--steps", "1", "--out", str(run), "--backend", "api", "--model", "m",
                  "--no-train", "--backend-option", "base_url=http://127.0.0.1:9/v1"], work)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done
    assert "isolation" in done.stderr or "sandbox" in done.stderr
    # the default (tiny) model: the refusal comes before the preset note and the toy-model warning
    done = _tttd(["run", str(src / "task.py"), "--steps", "1", "--out", str(run)], work)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done
    assert os.listdir(work) == []  # nothing written
    # a construction file runs nothing: unaffected
    (src / "c.json").write_text("3")
    assert _tttd(["verify", str(src / "task.py"), str(src / "c.json")], work).returncode == 0


def test_demo_task_is_unaffected():
    from tttd.sandbox.report import check_isolation, task_runs_code

    assert task_runs_code("demo") is False
    assert task_runs_code("erdos") is True


@pytest.fixture()
def weak_platform(monkeypatch):
    monkeypatch.setenv("TTTD_SANDBOX_BWRAP", "0")
    saved = runner._platform
    plat = sandbox.platform_info(refresh=True)
    yield plat
    runner._platform = saved


def test_weak_mode_runs_unprivileged_when_opted_in(weak_platform, files, monkeypatch):
    plat = weak_platform
    if not plat.runnable:  # a root parent whose interpreter a fresh uid cannot read: no weak mode
        assert os.geteuid() == 0 and "cannot read" in " ".join(plat.notes), plat
        r = sandbox.run_program("def main():\n    return 1\n")
        assert r.status == "error" and "nothing was run" in r.message
        return
    r = sandbox.run_program("def main():\n    return 1\n")  # not opted in: refused, even through the API
    assert r.status == "error" and "not allowed" in r.message, r
    monkeypatch.setenv(runner.WEAK_ENV, "1")
    home = Path.home()
    site_dir = next(p for p in sys.path if p.endswith("site-packages") and os.path.isdir(p))
    tcp = socket.socket()  # host servers the candidate must not reach (loopback TCP, abstract unix)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(4)
    abstract = socket.socket(socket.AF_UNIX)
    abstract_name = "\0tttd-weak-" + secrets.token_hex(6)
    abstract.bind(abstract_name)
    abstract.listen(4)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # issue 31: a loopback datagram service
    udp.bind(("127.0.0.1", 0))
    sock_dir = tempfile.mkdtemp(prefix="tttd-weak-unix-")  # a path-name unix socket any uid may reach
    os.chmod(sock_dir, 0o755)
    unix_path = os.path.join(sock_dir, "agent.sock")
    unix = socket.socket(socket.AF_UNIX)
    unix.bind(unix_path)
    os.chmod(unix_path, 0o777)
    unix.listen(4)
    os.environ["TTTD_TEST_PARENT_SECRET"] = "parent-secret-1234"
    try:
        r = sandbox.run_program(textwrap.dedent("""
            import ctypes, fcntl, os, socket, termios, time
            def field(name):
                for line in open("/proc/self/status"):
                    if line.startswith(name + ":"):
                        return line.split()[1]
            def attempt(fn):
                try:
                    fn()
                    return "ok"
                except OSError as e:
                    return e.strerror
            def vm_read(pid):  # read the parent's memory (harmless if allowed, unlike PTRACE_ATTACH)
                libc = ctypes.CDLL(None, use_errno=True)
                buf = ctypes.create_string_buffer(8)
                local = (ctypes.c_void_p * 2)(ctypes.cast(buf, ctypes.c_void_p), 8)
                remote = (ctypes.c_void_p * 2)(0x400000, 8)
                rc = libc.process_vm_readv(pid, local, 1, remote, 1, 0)
                return "ok" if rc >= 0 else os.strerror(ctypes.get_errno())
            def main():
                if os.fork() == 0:  # a daemon that must not survive the run
                    os.setsid()
                    time.sleep(120)
                    os._exit(0)
                ppid = os.getppid()
                return {
                    "uid": os.getuid(), "cap_eff": field("CapEff"), "cap_prm": field("CapPrm"),
                    "nnp": field("NoNewPrivs"), "seccomp": field("Seccomp"),
                    "tty": attempt(lambda: os.open("/dev/tty", os.O_RDWR)),
                    "tiocsti": attempt(lambda: fcntl.ioctl(1, termios.TIOCSTI, b"x")),
                    "parent_env": attempt(lambda: open("/proc/%d/environ" % ppid, "rb").read()),
                    "home_write": attempt(lambda: open(os.path.join(HOME, ".tttd-weak-probe"), "w")),
                    "vm_read": vm_read(ppid),
                    "signal_parent": attempt(lambda: os.kill(ppid, 0)),
                    "kmsg": attempt(lambda: open("/dev/kmsg", "rb")),
                    "site_write": attempt(lambda: open(os.path.join(SITE, ".tttd-weak-probe"), "w")),
                    "repo_write": attempt(lambda: open(os.path.join(REPO, ".tttd-weak-probe"), "w")),
                    "tcp": attempt(lambda: socket.create_connection(("127.0.0.1", PORT), timeout=2)),
                    "abstract": attempt(lambda: socket.socket(socket.AF_UNIX).connect("\\0" + ABSTRACT)),
                    "unix_path": attempt(lambda: socket.socket(socket.AF_UNIX).connect(UNIX_PATH)),
                    "udp": attempt(lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", UDP))),
                    "socketpair": attempt(lambda: socket.socketpair()),
                    "proc_parent": attempt(lambda: open("/proc/%d/cmdline" % ppid, "rb").read()),
                    "proc_init": attempt(lambda: open("/proc/1/cmdline", "rb").read()),
                    "proc_self": attempt(lambda: open("/proc/self/cmdline", "rb").read()),
                }
            """), inject={"HOME": str(home), "SITE": site_dir, "REPO": str(REPO), "PORT": tcp.getsockname()[1],
                          "ABSTRACT": abstract_name[1:], "UNIX_PATH": unix_path, "UDP": udp.getsockname()[1]},
            limits=Limits(wall_s=20, memory_mb=512))
    finally:
        del os.environ["TTTD_TEST_PARENT_SECRET"]
        for srv in (tcp, abstract, udp, unix):
            srv.close()
        shutil.rmtree(sock_dir, ignore_errors=True)
    assert r.status == "ok", (r.message, r.stderr[-1500:])
    v = r.value
    assert v["uid"] != 0 and v["cap_eff"] == v["cap_prm"] == "0000000000000000", v
    assert v["nnp"] == "1" and v["seccomp"] == "2", v
    assert v["tty"] != "ok" and v["tiocsti"] == os.strerror(1) and v["vm_read"] == os.strerror(1), v
    assert "bwrap" not in r.protections and "no_caps" in r.protections
    if "env_unreadable" in r.protections:
        assert v["parent_env"] != "ok", v
    if "landlock_fs" in r.protections or "separate_uid" in r.protections:
        for k in ("home_write", "site_write", "repo_write", "kmsg"):
            assert v[k] != "ok", (k, v)
    if "landlock_scope" in r.protections or "separate_uid" in r.protections:
        assert v["signal_parent"] != "ok", v
    if "landlock_net" in r.protections:
        assert v["tcp"] != "ok", v
    if "landlock_scope" in r.protections:
        assert v["abstract"] != "ok", v
    # issue 31: no path-name unix sockets, no datagrams, /proc of its own process only
    assert {"no_unix_sockets", "no_datagram_sockets"} <= set(r.protections), r.protections
    assert v["unix_path"] == v["udp"] == os.strerror(1) and v["socketpair"] == "ok", v
    if "proc_self_only" in r.protections:
        assert v["proc_parent"] != "ok" and v["proc_init"] != "ok" and v["proc_self"] == "ok", v
    for p in (site_dir, str(REPO), str(home)):
        assert not os.path.exists(os.path.join(p, ".tttd-weak-probe"))
    assert not (home / ".tttd-weak-probe").exists()
    assert child_pids() == []  # the daemon was killed with the tree
    # and through the CLI: one warning line, the verdict
    src, work = files
    done = _tttd(["verify", "--allow-weak-isolation", str(src / "task.py"), str(src / "prog.py")], work)
    assert done.returncode == 0 and "VALID" in done.stdout, done
    warn = [ln for ln in done.stderr.splitlines() if "WARNING" in ln]
    assert len(warn) == 1 and "TTTD_SANDBOX_BWRAP=0" in warn[0], done.stderr
