"""Hostile programs against the jail, one per weakness class of issue 9 (items 1-7, 9, 10), each
contained. Needs full isolation (bubblewrap): skipped with the reason otherwise, failed instead
when ``TTTD_TEST_REQUIRE_JAIL=1`` (CI). ``tests/sandbox/test_nonroot.py`` runs this module again
as an unprivileged user with planted secrets in that user's home (``TTTD_TEST_PLANT_HOME=1``)."""

from __future__ import annotations

import errno
import os
import secrets
import socket
import stat
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from tests.proc_helpers import child_pids
from tttd import sandbox
from tttd.sandbox import jail, runner
from tttd.sandbox.detect import unreadable_for_others
from tttd.types import Limits

CHECKOUT = str(Path(__file__).resolve().parents[2])  # the repository root

PLAT = sandbox.platform_info()
REPORT = sandbox.isolation_report()
REPO = Path(__file__).resolve().parents[2]
if not REPORT["full"]:
    why = f"full isolation unavailable (missing {REPORT['missing']}; {REPORT['notes'][:2]})"
    if os.environ.get("TTTD_TEST_REQUIRE_JAIL") == "1":
        raise RuntimeError("TTTD_TEST_REQUIRE_JAIL=1 but " + why)
    pytestmark = pytest.mark.skip(reason=why)

LIM = Limits(wall_s=20, memory_mb=512, processes=32, file_size_mb=64, output_bytes=4096, result_mb=4,
             disk_mb=32, inodes=2000)


@pytest.fixture(autouse=True)
def private_tempdir(monkeypatch, tmp_path_factory):
    """Each test's sandbox run directories go to a fresh directory; nothing may be left in it."""
    tmp_path_factory.getbasetemp()  # pytest's own temporary tree stays where it was
    base = "/dev/shm" if os.access("/dev/shm", os.W_OK | os.X_OK) else None
    d = tempfile.mkdtemp(prefix="tttd-jailtest-", dir=base)
    monkeypatch.setattr(tempfile, "tempdir", d)
    yield d
    monkeypatch.undo()
    left = os.listdir(d)
    os.rmdir(d) if not left else None
    assert left == [], f"sandbox run directories leaked: {left}"
    assert child_pids() == []


def prog(body: str, limits: Limits = LIM, **kw):
    return sandbox.run_program(textwrap.dedent(body), limits=limits, **kw)


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """Secrets a candidate must never read: a run directory (rollouts of the current run), the
    project checkout, and (non-root runs) the user's home: HF token, ssh key, a world-readable .env."""
    token = "SECRET-" + secrets.token_hex(8)
    run = tmp_path_factory.mktemp("runs") / "erdos-run"
    (run / "checkpoint").mkdir(parents=True)
    (run / "rollouts.jsonl").write_text(f'{{"completion": "{token}", "reward": 1.0}}\n')
    (run / "config.json").write_text(f'{{"note": "{token}"}}')
    paths = [str(run / "rollouts.jsonl"), str(run / "config.json"), str(REPO / "pyproject.toml"),
             str(REPO / "tttd" / "loop.py"), "/etc/shadow", "/etc/environment", "/root/.bashrc",
             str(REPO.parent / "shared" / "data" / "erdos" / "ttt_discover_2026.json")]  # published data (issue 25)
    if os.environ.get("TTTD_TEST_PLANT_HOME") == "1":
        home = Path.home()
        for rel, mode in ((".cache/huggingface/token", 0o600), (".ssh/id_ed25519", 0o600), (".env", 0o644)):
            p = home / rel
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(token + "\n")
            os.chmod(p, mode)
            paths.append(str(p))
    return {"token": token, "paths": paths, "run": str(run)}


# ------------------------------------------------------------------------ 1. reading the host


def test_item1_no_host_files_visible(planted):
    r = prog("""
        import os
        def main():
            found, opened = [], []
            for p in PATHS:
                try:
                    with open(p, "rb") as f:
                        opened.append(p)
                        if TOKEN.encode() in f.read():
                            found.append(p)
                except OSError:
                    pass
            skip = ("/proc", "/sys", "/dev", "/usr", "/.tttd") + tuple(SKIP)  # /.tttd: its own inputs
            for d, dirs, files in os.walk("/"):
                dirs[:] = [x for x in dirs if os.path.join(d, x) not in skip]
                for n in files:
                    p = os.path.join(d, n)
                    try:
                        if os.path.getsize(p) < 1 << 20:
                            with open(p, "rb") as f:
                                if TOKEN.encode() in f.read():
                                    found.append(p)
                    except OSError:
                        pass
            absent = {d: os.path.exists(d) for d in ("/home", "/srv", "/var", "/run", "/mnt", "/opt", "/work/main", RUN)
                      if not any(p == d or p.startswith(d + "/") for p in SKIP)}  # not on the way to a needed path
            try:
                home = sorted(os.listdir(HOME))
            except OSError:
                home = []
            try:
                checkout = sorted(os.listdir(CHECKOUT))
            except OSError:
                checkout = []
            return {"found": found, "opened": opened, "exists": absent, "home": home, "checkout": checkout}
        """, inject={"PATHS": planted["paths"], "TOKEN": planted["token"], "HOME": os.path.expanduser("~"),
                     "RUN": planted["run"], "SKIP": jail.needed_paths(), "CHECKOUT": CHECKOUT})
    assert r.status == "ok", r
    v = r.value
    assert v["found"] == [] and v["opened"] == [], v
    assert not any(v["exists"].values()), v["exists"]
    home = os.path.expanduser("~")  # only the way to a needed directory (e.g. ~/.pyenv) may show
    on_the_way = {p[len(home) + 1:].split("/")[0] for p in jail.needed_paths() if p.startswith(home + "/")}
    assert set(v["home"]) <= on_the_way, v["home"]
    # a venv inside the checkout is bound at its real path: only the way to it may show, never the code
    on_the_way = {p[len(CHECKOUT) + 1:].split("/")[0] for p in jail.needed_paths() if p.startswith(CHECKOUT + "/")}
    assert set(v["checkout"]) <= on_the_way and "tttd" not in v["checkout"], v["checkout"]
    assert "allowlist_fs" in r.protections


# ------------------------------------------------------------------------ 2. namespaces, mounts


def test_item2_no_namespaces_or_mounts():
    r = prog("""
        import ctypes, os
        libc = ctypes.CDLL(None, use_errno=True)
        def call(fn, *a):
            rc = fn(*a)
            return "ok" if rc == 0 else os.strerror(ctypes.get_errno())
        def main():
            out = {
                "unshare_user": call(libc.unshare, 0x10000000),
                "unshare_mnt": call(libc.unshare, 0x00020000),
                "unshare_net": call(libc.unshare, 0x40000000),
                "mount_tmpfs": call(libc.mount, b"none", b"/tmp", b"tmpfs", 0, b"size=10g"),
                "setns": call(libc.setns, os.open("/proc/self/ns/mnt", os.O_RDONLY), 0),
                "unshare_cmd": os.system("unshare -Urm true 2>/dev/null") != 0,
                "unshare_cmd_r": os.system("unshare -r true 2>/dev/null") != 0,
            }
            pid = libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0)  # raw clone(CLONE_NEWUSER)
            if pid == 0:
                os._exit(0)
            out["clone_newuser"] = "ok" if pid > 0 else os.strerror(ctypes.get_errno())
            return out
        """)
    assert r.status == "ok", r
    v = r.value
    assert v["unshare_cmd"] and v["unshare_cmd_r"], v
    for k in ("unshare_user", "unshare_mnt", "unshare_net", "mount_tmpfs", "setns", "clone_newuser"):
        assert v[k] == os.strerror(errno.EPERM), (k, v)
    assert "no_namespaces" in r.protections


# ------------------------------------------------------------------------ 3. host unix sockets


def test_item3_host_unix_sockets_unreachable(tmp_path):
    d = tmp_path / "sock"
    d.mkdir()
    os.chmod(tmp_path, 0o755)
    os.chmod(d, 0o777)
    path = str(d / "agent.sock")
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    os.chmod(path, 0o777)
    abstract = socket.socket(socket.AF_UNIX)
    name = "\0tttd-test-" + secrets.token_hex(6)
    abstract.bind(name)
    for s in (srv, abstract):
        s.listen(4)
        s.settimeout(0.2)
    try:
        probe = socket.socket(socket.AF_UNIX)  # reachable from the host itself
        probe.connect(path)
        probe.close()
        srv.accept()[0].close()
        r = prog("""
            import socket
            def main():
                out = {}
                for label, addr in (("path", PATH), ("abstract", "\\0" + NAME[1:])):
                    s = socket.socket(socket.AF_UNIX)
                    try:
                        s.connect(addr)
                        out[label] = "connected"
                    except OSError as e:
                        out[label] = type(e).__name__
                return out
            """, inject={"PATH": path, "NAME": name})
        assert r.status == "ok", r
        assert r.value["path"] != "connected" and r.value["abstract"] != "connected", r.value
        for s in (srv, abstract):
            with pytest.raises(socket.timeout):
                s.accept()
    finally:
        srv.close()
        abstract.close()


# ------------------------------------------------------------------------ 4. and 5. total caps


def test_item4_inodes_capped_across_all_writable_places():
    r = prog("""
        import os
        def main():
            n, err = 0, None
            try:
                for i in range(100000):
                    for base in (".", "/tmp", "/dev/shm"):
                        os.mkdir("%s/d%d" % (base, i))
                        n += 1
            except OSError as e:
                err = e.strerror
            return [n, err]
        """)
    assert r.status == "ok", r
    n, err = r.value
    assert err == os.strerror(errno.ENOSPC) and 1000 < n <= LIM.inodes, r.value


def test_item5_bytes_capped_across_all_writable_places():
    r = prog("""
        import os
        def main():
            total, err = 0, None
            chunk = b"x" * (1 << 20)
            try:
                for i in range(1000):
                    with open("%s/f%d" % (("." , "/tmp", "/dev/shm")[i % 3], i), "wb") as f:
                        for _ in range(4):
                            f.write(chunk)
                            f.flush()
                            total += len(chunk)
            except OSError as e:
                err = e.strerror
            return [total, err]
        """, limits=Limits(**{**LIM.to_dict(), "file_size_mb": 1024}))
    assert r.status == "ok", r
    total, err = r.value
    assert err == os.strerror(errno.ENOSPC) and total <= LIM.disk_mb * 2**20, r.value
    assert "capped_writable" in r.protections


# ------------------------------------------------------------------------ 6. cleanup


DEEP = """
import os
def main():
    fd = os.open(".", os.O_RDONLY)
    for i in range(DEPTH):
        os.mkdir("dddddddddddddddd", dir_fd=fd)
        nfd = os.open("dddddddddddddddd", os.O_RDONLY, dir_fd=fd)
        os.close(fd)
        fd = nfd
    os.close(fd)
    os.chmod("dddddddddddddddd", 0)
    os.chmod(".", 0o500)
    return DEPTH
"""


def test_item6_deep_chmodded_tree_is_cleaned_up():
    r = sandbox.run_program(DEEP, limits=Limits(**{**LIM.to_dict(), "inodes": 5000}), inject={"DEPTH": 3000})
    assert r.status == "ok" and r.value == 3000, r
    # the private_tempdir fixture then checks that nothing is left behind


def test_item6_cleanup_in_the_fallback_too(monkeypatch):
    """Without bubblewrap the workdir is on the host disk: the iterative remover must finish."""
    plat = jail.Platform(bwrap=None, root=PLAT.root, separate_uid=PLAT.root, seccomp=PLAT.seccomp)
    if PLAT.root and unreadable_for_others(jail.needed_paths()):
        pytest.skip("as root the weak mode needs an interpreter a fresh uid can read (test_nonroot.py runs this)")
    monkeypatch.setattr(runner, "_platform", plat)
    monkeypatch.setenv(runner.WEAK_ENV, "1")  # the opt-in (issue 19)
    r = sandbox.run_program(DEEP, limits=LIM, inject={"DEPTH": 1500})
    assert r.status == "ok" and r.value == 1500, r
    assert "bwrap" not in r.protections


# ------------------------------------------------------------------------ 7. forged results


FIND_PIPE = """
import os, stat, gc
def result_fd():
    for fd in range(3, 64):
        try:
            if stat.S_ISFIFO(os.fstat(fd).st_mode):
                return fd
        except OSError:
            pass
def real_token():
    for o in gc.get_objects():
        if type(o) is dict and "result_fd" in o and "token" in o:
            return o["token"]
"""


@pytest.mark.parametrize("payload, why", [
    ('b"garbage that is no frame"', "header"),
    ('b"TTR1" + b"f" * 16 + struct.pack(">Q", 2) + b"{}"', "token"),
    ('b"TTR1" + real_token().encode() + struct.pack(">Q", 10**12)', "announces"),
    ('frame({"value": {"__tttd_array__": 0}, "arrays": [{"dtype": "<f8", "shape": [0, 10**30]}]})', "shape"),
    ('frame({"value": {"__tttd_array__": 0}, "arrays": [{"dtype": "<f8", "shape": [10**6]}]})', "needs"),
    ('frame({"value": {"__tttd_array__": 0}, "arrays": [{"dtype": "|O", "shape": [1]}]}) + b"\\0" * 8', "allowed"),
    ('frame(b"[" * 100000)', "JSON"),
])
def test_item7_forged_results_are_bad_output(payload, why):
    src = FIND_PIPE + textwrap.dedent(f"""
        import json, struct
        def frame(doc):
            j = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
            return b"TTR1" + real_token().encode() + struct.pack(">Q", len(j)) + j
        def main():
            os.write(result_fd(), {payload})
            os._exit(0)
        """)
    r = sandbox.run_program(src, limits=LIM)
    assert r.status == "bad_output" and r.value is None, r
    assert why.lower() in r.message.lower(), r.message


@pytest.mark.parametrize("make, why", [
    ("ln -s /etc/passwd result.json", "symbolic links"),
    ("mkfifo result.json", "regular"),
    ("head -c 6000000 /dev/zero > result.json", "over the limit"),
    ("printf '[%.0s' $(seq 1 100000) > result.json", "JSON"),
    ("printf '{\"x\": 1' > result.json", "malformed"),
])
def test_item7_forged_result_files_in_command_mode(make, why):
    r = sandbox.run_command(["sh", "-c", make], limits=LIM)
    assert r.status == "bad_output" and r.value is None, r
    assert why.lower() in r.message.lower(), r.message


# ------------------------------------------------------------------------ 9. parent memory


def _rss_kb() -> int:
    with open("/proc/self/status") as f:
        return next(int(ln.split()[1]) for ln in f if ln.startswith("VmRSS:"))


def test_item9_oversized_result_is_rejected_unread():
    src = FIND_PIPE + textwrap.dedent("""
        def main():
            fd, chunk = result_fd(), b"x" * (1 << 20)
            for _ in range(200):  # 200 MiB straight into the pipe, around the harness's own checks
                os.write(fd, chunk)
            return 1
        """)
    before = _rss_kb()
    r = sandbox.run_program(src, limits=Limits(**{**LIM.to_dict(), "result_mb": 2}))
    assert r.status == "bad_output" and "larger than the limit" in r.message, r
    assert _rss_kb() - before < 40_000  # never more than ~ the limit (2 MiB) + frame overhead held


def test_item9_array_over_the_declared_maximum_is_bad_output():
    r = prog("import numpy as np\ndef main():\n    return np.zeros(10**6)\n", limits=Limits(**{**LIM.to_dict(), "result_mb": 1}))
    assert r.status == "bad_output" and "exceed" in r.message, r


# ------------------------------------------------------------------------ 10. visible protections


def test_item10_protections_recorded_and_required(tmp_path, monkeypatch):
    monkeypatch.setenv(runner.WEAK_ENV, "0")  # restored afterwards: check_isolation's opt-in sets it
    r = prog("def main():\n    return 1\n")
    assert set(sandbox.FULL_ISOLATION) <= set(r.protections)
    from tttd.build import _sandbox_report

    assert _sandbox_report()["full"] is True
    # without bubblewrap: a loud warning, and --require-isolation refuses: exit 2, one line, nothing written
    env = {**os.environ, "TTTD_SANDBOX_BWRAP": "0", "PYTHONPATH": str(REPO)}
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "tttd.cli", "run", "demo", "--preset", "demo", "--require-isolation",
                           "--out", str(out), "--steps", "1"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "isolation" in lines[0] and "TTTD_SANDBOX_BWRAP=0" in lines[0], done.stderr
    assert not out.exists() and os.listdir(tmp_path) == []
    from tttd.sandbox import report
    from tttd.sandbox.report import IsolationError, check_isolation

    weak = jail.Platform(bwrap=None, root=PLAT.root, separate_uid=False, seccomp=True, notes=("no bwrap here",))
    try:
        runner._platform = weak
        msgs = []
        with pytest.raises(IsolationError, match="allow-weak-isolation"):  # no weak mode by accident
            check_isolation(False, warn=msgs.append)
        assert check_isolation(False, warn=msgs.append, runs_code=False)["full"] is False and msgs == []
        report._warned = False
        rep = check_isolation(False, warn=msgs.append, allow_weak=True)
        check_isolation(False, warn=msgs.append, allow_weak=True)  # once per process
        assert not rep["full"] and len(msgs) == 1 and msgs[0].startswith("WARNING") and "no bwrap here" in msgs[0]
        with pytest.raises(IsolationError):
            check_isolation(True, allow_weak=True)
    finally:
        runner._platform = PLAT


def test_protections_visible_in_the_result_modes():
    r = sandbox.run_command(["sh", "-c", "id -u > result.json"], limits=LIM)
    assert r.status == "ok" and isinstance(r.value, int), r
    assert stat.S_ISDIR(os.stat(jail.needed_paths()[0]).st_mode)


def test_large_inputs_travel_through_a_read_only_directory():
    """Inputs over the inline limit are bound read-only at /.tttd/in; small ones come on stdin."""
    import numpy as np

    big = np.arange(300_000, dtype=np.float64)  # 2.4 MB > runner.INLINE_BYTES
    r = prog("""
        import os
        def main(x):
            try:
                open("/.tttd/in/_tttd_input.json", "a")
                writable = True
            except OSError:
                writable = False
            x[0] = -1.0  # the array is the candidate's own copy
            return [float(x.sum()), float(base[1]), writable, sorted(os.listdir("."))]
        """, args={"x": big}, inject={"base": big})
    assert r.status == "ok", r
    assert r.value[0] == float(big.sum()) - 1.0 and r.value[1] == 1.0 and r.value[2] is False, r.value
    assert r.value[3] == ["candidate.py"]
    c = sandbox.run_command(["sh", "-c", "wc -c < big.bin > result.json"], files={"big.bin": b"x" * (3 << 20)}, limits=LIM)
    assert c.status == "ok" and c.value == 3 << 20, c


def test_sensitive_paths_inside_bound_directories_are_masked(monkeypatch):
    """A checkout or run directory inside a bound system directory (e.g. /usr/src/app) is hidden."""
    monkeypatch.setenv(jail.HIDE_ENV, "/usr/share")
    r = prog("""
        import os, subprocess
        def main():
            try:
                os.mkdir("/usr/share/x")
                wrote = True
            except OSError:
                wrote = False
            return [os.listdir("/usr/share"), wrote, subprocess.run(["true"]).returncode]
        """)
    assert r.status == "ok" and r.value == [[], False, 0], r
