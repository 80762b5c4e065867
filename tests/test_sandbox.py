"""Hostile and normal programs through tttd.sandbox: each contained with the right status, the
parent unharmed, nothing left behind. Assertions that need a protection the platform lacks are
skipped with the reason (see sandbox.platform_info())."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import sys
import tempfile
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from tests.proc_helpers import child_pids, sandbox_dirs
from tttd import sandbox
from tttd.sandbox import results as sdata
from tttd.sandbox import runner
from tttd.sandbox import Limits, Program, finite_array, run, run_command, run_program

PLAT = sandbox.platform_info()
FAST = Limits(wall_s=3, memory_mb=256, processes=32, file_size_mb=16, output_bytes=4096, result_mb=4)
# kill(-1) / kill(getppid()) are only safe to try if they cannot reach this test process.
SIGNALS_CONTAINED = bool(PLAT.bwrap) or PLAT.separate_uid
WHY_SIGNALS = "candidate runs as this user without a pid namespace: a signal test could kill pytest"
NPROC_ENFORCED = not PLAT.root or PLAT.separate_uid
WHY_NPROC = "root without separate uid: RLIMIT_NPROC is not enforced, a fork bomb would hit the machine"


def prog(body: str, **kw) -> sandbox.SandboxResult:
    kw.setdefault("limits", FAST)
    return run_program(textwrap.dedent(body), **kw)


def procs_with_comm(marker: str) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/comm") as f:
                    if f.read().strip() == marker:
                        with open(f"/proc/{d}/stat") as g:
                            if g.read().rsplit(")", 1)[1].split()[0] != "Z":
                                out.append(int(d))
            except OSError:
                pass
    return out


def rss_kb() -> int:
    with open("/proc/self/status") as f:
        return next(int(ln.split()[1]) for ln in f if ln.startswith("VmRSS:"))


SET_COMM = "import ctypes\nctypes.CDLL(None).prctl(15, {m!r}.encode(), 0, 0, 0)\n"


# ---------------------------------------------------------------- normal cases


def test_returns_dict_with_arrays_args_inject_and_stdout():
    r = prog("""
        import numpy as np
        def main(n, scale):
            print("hello from the candidate")
            return {"arange": np.arange(n) * scale, "given": given, "sum": float(base.sum()),
                    "tuple": (1, "x", None, True), "np_scalar": np.float32(1.5), "f16": np.ones(2, np.float16)}
        """, args={"n": 4, "scale": 2}, inject={"given": {"k": [1, 2]}, "base": np.arange(6.0).reshape(2, 3)})
    assert r.status == "ok", r
    v = r.value
    assert isinstance(v["arange"], np.ndarray) and v["arange"].tolist() == [0, 2, 4, 6]
    assert v["given"] == {"k": [1, 2]} and v["sum"] == 15.0
    assert v["tuple"] == [1, "x", None, True] and v["np_scalar"] == 1.5
    assert v["f16"].dtype == np.float16
    assert "hello from the candidate" in r.stdout
    assert "private_workdir" in r.protections and "rlimit_as" in r.protections


def test_run_dispatches_on_program():
    r = run(Program(source="def go(a):\n    return a + 1\n", entry="go", args={"a": 41}, limits=FAST))
    assert r.status == "ok" and r.value == 42
    r = run(Program(command=[sys.executable, "-c", "print('hi')"], limits=FAST))
    assert r.status == "ok" and r.value is None and r.stdout.strip() == "hi"


def test_run_command_result_file_and_exit_codes():
    code = "import json; json.dump({'x': [1, 2.5]}, open('result.json', 'w')); print('done')"
    r = run_command([sys.executable, "-c", code], limits=FAST)
    assert r.status == "ok" and r.value == {"x": [1, 2.5]} and "done" in r.stdout
    r = run_command([sys.executable, "-c", "import sys; sys.exit(3)"], limits=FAST)
    assert r.status == "error" and r.returncode == 3
    r = run_command(["no-such-binary-xyz"], limits=FAST)
    assert r.status == "error"
    r = run_command(["sh", "-c", "cat in.txt; printf '{bad' > result.json"], files={"in.txt": "data"}, limits=FAST)
    assert r.status == "bad_output" and r.stdout == "data"


@pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc not installed")
def test_compiled_c_program():
    src = '#include <stdio.h>\nint main(){FILE*f=fopen("result.json","w");fprintf(f,"{\\"v\\": %d}",6*7);fclose(f);return 0;}\n'
    r = run_command(["sh", "-c", "gcc -O1 -o prog main.c && ./prog"], files={"main.c": src},
                    limits=Limits(wall_s=30, memory_mb=1024, processes=64))
    assert r.status == "ok", r
    assert r.value == {"v": 42}


def test_bad_arguments_raise_value_error():
    with pytest.raises(ValueError):
        run_program("def main(): pass", entry="not an identifier")
    with pytest.raises(ValueError):
        run_program("def main(): pass", args={"f": object()})
    with pytest.raises(ValueError):
        run_program("def main(): pass", inject={"x": np.array([object()])})
    with pytest.raises(ValueError):
        run_command(["true"], files={"../escape": "x"})
    with pytest.raises(ValueError):
        run_program("def main(): pass", limits=Limits(wall_s=0))


def test_candidate_exceptions_are_errors():
    r = prog("def main():\n    raise RuntimeError('boom')\n")
    assert r.status == "error" and "boom" in r.message
    assert prog("this is not python").status == "error"
    r = prog("x = 1\n")
    assert r.status == "error" and "main" in r.message


# ---------------------------------------------------------------- time, memory, processes


def test_busy_and_sleeping_loops_time_out():
    r = prog("def main():\n    while True:\n        pass\n", limits=Limits(wall_s=1.5, memory_mb=256))
    assert r.status == "timeout" and r.wall_s < 4
    r = prog("import time\ndef main():\n    time.sleep(100)\n", limits=Limits(wall_s=1, memory_mb=256))
    assert r.status == "timeout" and r.wall_s < 3


def test_cpu_limit_is_a_timeout():
    r = prog("def main():\n    while True:\n        pass\n", limits=Limits(wall_s=10, cpu_s=1, memory_mb=256))
    assert r.status == "timeout" and r.wall_s < 5, r


def test_memory_bombs():
    r = prog("def main():\n    return len(bytearray(10**10))\n")
    assert r.status == "memory", r
    r = prog("def main():\n    keep = []\n    while True:\n        keep.append(bytearray(10**7))\n")
    assert r.status == "memory", r
    r = prog("import numpy as np\ndef main():\n    return np.ones((10**5, 10**4)).sum()\n")
    assert r.status == "memory", r


@pytest.mark.skipif(not NPROC_ENFORCED, reason=WHY_NPROC)
def test_fork_bomb_contained_and_nothing_left():
    marker = "bomb" + secrets.token_hex(4)
    r = prog(SET_COMM.format(m=marker) + textwrap.dedent("""
        import os
        def main():
            while True:
                try:
                    os.fork()
                except OSError:
                    pass
        """), limits=Limits(wall_s=2, memory_mb=256, processes=16))
    assert r.status in ("timeout", "killed", "error"), r
    assert procs_with_comm(marker) == []


def test_daemon_is_killed():
    marker = "dmn" + secrets.token_hex(4)
    r = prog(textwrap.dedent("""
        import os, time, ctypes
        def main():
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    ctypes.CDLL(None).prctl(15, MARK.encode(), 0, 0, 0)
                    time.sleep(60)
                os._exit(0)
            time.sleep(0.3)
            return "parent returned"
        """), inject={"MARK": marker})
    assert r.status == "ok" and r.value == "parent returned"
    assert procs_with_comm(marker) == []
    # and the same when the run times out while the daemon lives
    r = prog("import os, time, ctypes\n"
             "if os.fork() == 0:\n    os.setsid()\n    ctypes.CDLL(None).prctl(15, MARK.encode(), 0, 0, 0)\n"
             "    time.sleep(60)\n"
             "def main():\n    time.sleep(60)\n", inject={"MARK": marker}, limits=Limits(wall_s=1, memory_mb=256))
    assert r.status == "timeout"
    assert procs_with_comm(marker) == []


def test_segfault_and_abort_are_killed():
    r = prog("import ctypes\ndef main():\n    return ctypes.string_at(0)\n")
    assert r.status == "killed" and "SIGSEGV" in r.message, r
    r = prog("import os\ndef main():\n    os.abort()\n")
    assert r.status == "killed" and "SIGABRT" in r.message, r


def test_exit_before_returning_is_an_error():
    assert prog("import os\ndef main():\n    os._exit(0)\n").status == "error"
    assert prog("import sys\ndef main():\n    sys.exit(0)\n").status == "error"
    assert prog("import sys\nsys.exit(0)\ndef main():\n    return 1\n").status == "error"
    assert prog("def main():\n    exit()\n").status == "error"


# ---------------------------------------------------------------- filesystem, env, network


def test_writes_outside_the_workdir_do_not_land():
    name = "tttd-escape-" + secrets.token_hex(6)
    # a directory this user can write to (the checkout), so only the sandbox can stop the write
    targets = [str(Path(__file__).resolve().parents[1] / name)]
    if "private_tmp" in PLAT_PROTECTIONS():
        targets.append(os.path.join(tempfile.gettempdir(), name))
    if not (PLAT.bwrap or PLAT.separate_uid):
        pytest.skip("no filesystem protection: no bwrap and the candidate runs as this user")
    r = prog("""
        def main():
            out = {}
            for t in TARGETS:
                try:
                    with open(t, "w") as f:
                        f.write("x")
                    out[t] = "written"
                except OSError as e:
                    out[t] = type(e).__name__
            with open("inside.txt", "w") as f:
                f.write("ok")
            return out
        """, inject={"TARGETS": targets})
    assert r.status == "ok", r
    for t in targets:
        assert not os.path.exists(t), f"{t} escaped the sandbox ({r.value})"


def PLAT_PROTECTIONS() -> list[str]:
    return sandbox._protections(PLAT, FAST, None)


def test_environment_secrets_not_visible(monkeypatch):
    monkeypatch.setenv("TTTD_TEST_SECRET", "s3cr3t-" + secrets.token_hex(4))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-" + secrets.token_hex(8))
    secret = os.environ["TTTD_TEST_SECRET"]
    r = prog("""
        import os
        def main():
            found = [k for k in os.environ if k in ("TTTD_TEST_SECRET", "OPENAI_API_KEY")]
            leaks = []
            for d in os.listdir("/proc"):
                if d.isdigit():
                    try:
                        with open("/proc/%s/environ" % d, "rb") as f:
                            if SECRET.encode() in f.read():
                                leaks.append(d)
                    except OSError:
                        pass
            return {"env": found, "proc": leaks, "threads": os.environ.get("OMP_NUM_THREADS")}
        """, inject={"SECRET": secret})
    assert r.status == "ok", r
    assert r.value["env"] == [] and r.value["threads"] == "1"
    if PLAT.bwrap or PLAT.separate_uid:
        assert r.value["proc"] == [], "secret readable through /proc/<pid>/environ"


def test_network_blocked():
    if "no_network" not in PLAT_PROTECTIONS():
        pytest.skip("no network namespace on this platform (bwrap unavailable)")
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(0.1)
    port = srv.getsockname()[1]
    try:
        r = prog("""
            import socket
            def main():
                try:
                    socket.create_connection(("127.0.0.1", PORT), timeout=1).close()
                    return "connected"
                except OSError as e:
                    return "blocked: " + type(e).__name__
            """, inject={"PORT": port})
        assert r.status == "ok" and r.value.startswith("blocked"), r
        with pytest.raises(socket.timeout):
            srv.accept()
    finally:
        srv.close()


def test_huge_stdout_is_tail_capped():
    before = rss_kb()
    r = prog("""
        import sys
        def main():
            chunk = "x" * (1 << 20)
            for _ in range(200):
                sys.stdout.write(chunk)
            sys.stdout.write("THE-END")
            sys.stderr.write("e" * (10 << 20))
            return 1
        """, limits=Limits(wall_s=20, memory_mb=256, file_size_mb=256, output_bytes=1000))
    assert r.status == "ok", r.message
    assert len(r.stdout) <= 1000 and r.stdout.endswith("THE-END")
    assert len(r.stderr) <= 1000
    assert rss_kb() - before < 50_000  # the parent never held the output


# ---------------------------------------------------------------- returned data


@pytest.mark.parametrize("body, why", [
    ("return main", "function"),
    ("class A: pass\n    return A()", "instance"),
    ("import numpy as np\n    return np.array([object()])", "object dtype"),
    ("return {1: 2}", "non-str key"),
    ("return {'__tttd_array__': 0}", "reserved key"),
    ("return b'bytes'", "bytes"),
    ("return {1, 2}", "set"),
])
def test_non_data_returns_are_bad_output(body, why):
    r = prog(f"def main():\n    {body}\n")
    assert r.status == "bad_output", (why, r)


def test_nan_and_inf_come_back_as_floats_and_are_flagged_by_finite_array():
    r = prog("import numpy as np\ndef main():\n"
             "    return {'a': float('nan'), 'b': float('-inf'), 'c': np.array([1.0, np.inf])}\n")
    assert r.status == "ok"
    assert np.isnan(r.value["a"]) and r.value["b"] == float("-inf") and np.isinf(r.value["c"][1])
    with pytest.raises(ValueError, match="NaN or infinite"):
        finite_array(r.value["c"], "c")
    assert finite_array([1, 2], "x", ndim=1).dtype == np.float64


def test_deep_and_enormous_returns_are_bad_output():
    r = prog("def main():\n    x = []\n    for _ in range(10**5):\n        x = [x]\n    return x\n")
    assert r.status == "bad_output" and "deeper" in r.message
    r = prog("def main():\n    return [0] * (10**7)\n")
    assert r.status == "bad_output" and "elements" in r.message
    r = prog("import numpy as np\ndef main():\n    return np.zeros(10**8, dtype=bool)\n",
             limits=Limits(wall_s=5, memory_mb=512, result_mb=1))
    assert r.status == "bad_output" and "exceed" in r.message
    r = prog("def main():\n    return 'x' * (5 * 2**20)\n")  # JSON part over result_mb=4
    assert r.status == "bad_output"


def test_parent_rejects_forged_result_frames():
    """The trusted decoder on its own: sizes checked against dtype x shape, strict types."""
    import struct

    def frame(doc, payload=b"", token="t" * 16):
        j = doc.encode() if isinstance(doc, str) else doc
        return bytearray(b"TTR1" + token.encode() + struct.pack(">Q", len(j)) + j + payload)

    def prog_value(buf):
        return sdata.decode_program(*sdata.decode_frame(buf, "t" * 16))

    big = frame('{"value": {"__tttd_array__": 0}, "arrays": [{"dtype": "<f8", "shape": [1000000]}]}', b"\0" * 16)
    with pytest.raises(sdata.BadData, match="needs"):
        prog_value(big)  # announced size differs from what arrived
    with pytest.raises(sdata.BadData, match="not allowed"):
        prog_value(frame('{"value": {"__tttd_array__": 0}, "arrays": [{"dtype": "|O", "shape": [1]}]}', b"\0" * 8))
    with pytest.raises(sdata.BadData):
        prog_value(frame("[" * 100_000 + "]" * 100_000))
    with pytest.raises(sdata.BadData, match="over the limit"):
        sdata.parse_json(b" " * (2 << 20), 1 << 20)
    with pytest.raises(sdata.BadData, match="token"):
        prog_value(frame('{"value": 1, "arrays": []}', token="x" * 16))
    v = prog_value(frame('{"value": [NaN, Infinity, -Infinity], "arrays": []}'))
    assert np.isnan(v[0]) and v[1] == float("inf") and v[2] == float("-inf")


# ---------------------------------------------------------------- tampering


def test_prewritten_result_files_are_ignored():
    r = prog("""
        import json, os
        for n in ["result.json", "_tttd_result.json", "out.json"]:
            with open(n, "w") as f:
                json.dump({"value": {"score": 1e9}, "arrays": []}, f)
        def main():
            raise RuntimeError("no real result")
        """)
    assert r.status == "error" and r.value is None
    r = prog("import json\njson.dump({'value': 1e9, 'arrays': []}, open('result.json', 'w'))\n"
             "import os\ndef main():\n    os._exit(0)\n")
    assert r.status == "error" and r.value is None


def test_monkeypatched_builtins_json_numpy_exit_do_not_forge():
    r = prog("""
        import builtins, json, os, sys
        import numpy as np
        import _json
        json.dumps = lambda *a, **k: '{"score": 1e9}'
        json.dump = lambda *a, **k: None
        _json.encode_basestring_ascii = lambda s: '"forged"'
        np.save = lambda *a, **k: None
        builtins.len = lambda x: 0
        builtins.enumerate = lambda x: iter([])
        builtins.str = lambda x="": "forged"
        builtins.type = lambda x: dict
        builtins.open = None
        sys.exit = lambda *a: None
        os._exit = lambda *a: None
        import __main__
        __main__.EXIT_OK = 4
        __main__.BadOutput = KeyError
        def main():
            return {"score": 1.0, "arr": np.arange(3)}
        """)
    assert r.status == "ok", r
    assert r.value["score"] == 1.0 and r.value["arr"].tolist() == [0, 1, 2]


def test_thread_calling_exit_during_entry_gives_no_result():
    r = prog("""
        import os, threading, time
        def main():
            threading.Thread(target=lambda: (time.sleep(0.2), os._exit(0))).start()
            time.sleep(5)
            return 1
        """)
    assert r.status == "error" and r.value is None


# ---------------------------------------------------------------- signals to the parent


@pytest.mark.skipif(not SIGNALS_CONTAINED, reason=WHY_SIGNALS)
def test_signals_cannot_reach_the_parent():
    for body in ("os.kill(os.getppid(), signal.SIGKILL)", "os.killpg(0, signal.SIGKILL)",
                 "os.kill(-1, signal.SIGKILL)", "os.killpg(os.getpgid(os.getppid()), signal.SIGKILL)"):
        r = prog(f"import os, signal\ndef main():\n    try:\n        {body}\n    except OSError:\n        pass\n"
                 f"    return 'alive'\n")
        assert r.status in ("ok", "killed"), (body, r)
    # still here, and another evaluation still works
    assert prog("def main():\n    return 7\n").value == 7


def test_killpg_own_group_is_harmless_everywhere():
    r = prog("import os, signal\ndef main():\n    os.killpg(0, signal.SIGKILL)\n")
    assert r.status == "killed"


# ---------------------------------------------------------------- cleanup and concurrency


def test_no_leftover_dirs_or_processes_after_many_runs():
    before = sandbox_dirs()
    threads = [threading.Thread(target=prog, args=("def main():\n    return 1\n",)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    prog("import time\ndef main():\n    time.sleep(10)\n", limits=Limits(wall_s=0.5, memory_mb=256))
    assert sandbox_dirs() - before == set()
    assert child_pids() == []


@pytest.mark.parametrize("mode", ["plain", "plain_uid"])
def test_fallback_modes_basic_containment(mode, monkeypatch):
    """Without bubblewrap: results, timeouts with a daemon, memory, and the env scrub still work."""
    plat = sandbox.Platform(bwrap=None, root=PLAT.root, separate_uid=(mode == "plain_uid"), seccomp=True)
    monkeypatch.setenv("TTTD_SANDBOX_ALLOW_WEAK", "1")  # the opt-in (issue 19)
    if mode == "plain" and PLAT.root:  # issue 19: a root parent never runs a candidate as root
        monkeypatch.setattr(runner, "_platform", plat)
        r = prog("def main():\n    return 1\n")
        assert r.status == "error" and "refusing to run a candidate as root" in r.message, r
        return
    if mode == "plain_uid" and not (PLAT.root and sandbox._probe(plat)[0]):
        pytest.skip("needs root and an interpreter readable by other uids")
    monkeypatch.setattr(runner, "_platform", plat)
    monkeypatch.setenv("TTTD_TEST_SECRET", "hidden")
    r = prog("import os\ndef main():\n    return os.environ.get('TTTD_TEST_SECRET')\n")
    assert r.status == "ok" and r.value is None and "bwrap" not in r.protections
    assert prog("def main():\n    return bytearray(10**10)\n").status == "memory"
    marker = "fb" + secrets.token_hex(4)
    r = prog("import os, time, ctypes\n"
             "if os.fork() == 0:\n    os.setsid()\n    ctypes.CDLL(None).prctl(15, MARK.encode(), 0, 0, 0)\n"
             "    time.sleep(60)\n"
             "def main():\n    time.sleep(60)\n", inject={"MARK": marker}, limits=Limits(wall_s=1, memory_mb=256))
    assert r.status == "timeout" and procs_with_comm(marker) == []
