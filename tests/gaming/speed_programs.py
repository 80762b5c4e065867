"""The speed kit's public gaming corpus: cheating programs, each named by the pattern it tests and
paired with the honest program it imitates (its twin).

``expect`` says what the harness must do with it: ``"invalid"`` (with a phrase of the verdict) or
``"honest"`` (valid, and scored as what it really is: the trick changes nothing the controller
measures, so it earns no speed-up it did not earn; ``max_speedup`` bounds what it may show).
Programs for three tasks: ``gm`` (the group-means example, timed on the CPU), ``trimul`` and
``mla`` (their CPU correctness paths, small cases)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import tttd.tasks.speed.mla_decode as _mla
import tttd.tasks.speed.trimul as _trimul

FAST = open(os.path.join(os.path.dirname(__file__), "..", "..", "examples", "speed_group_means_fast.py")).read()
REF = "from reference import group_means\n"
TRIMUL = open(os.path.join(os.path.dirname(_trimul.__file__), "root.py")).read()
MLA = open(os.path.join(os.path.dirname(_mla.__file__), "root.py")).read()
#: the honest twins, by task
TWINS = {"gm": FAST, "trimul": TRIMUL, "mla": MLA}


@dataclass(frozen=True)
class Cheat:
    name: str  # the pattern
    task: str  # gm | trimul | mla
    code: str
    expect: str  # "invalid" or "honest"
    phrase: str = ""  # in the verdict's message (invalid)
    max_speedup: float = 0.0  # honest on gm: the speed-up it may show at most (0: not checked)
    twin: str = ""  # the honest program it imitates (default: TWINS[task])


#: the speed-up a program that only calls the reference may show: the timer forges below, where they
#: worked, gave 600x-2000x; honest noise (the task's reference timed once while a second evaluation
#: shares the CPU) read up to 1.75x at load 6-12, so 1.6 made the test flaky and 2.5 still separates
HONEST_REF_MAX = 2.5


def _gm(body: str) -> str:
    """A group-means program whose ``group_means`` calls ``_honest`` (FAST renamed) where it likes."""
    return FAST.replace("def group_means(data):", "def _honest(data):") + "\n" + body


CHEATS = [
    # ---- timers, seeds and the checker: none of them is in the worker's process ----------------------
    Cheat("timer patched through every reachable name", "gm", """\
import sys, time
for mod in list(sys.modules.values()):
    for n in ("perf_counter_ns", "perf_counter", "monotonic_ns", "monotonic", "time_ns", "process_time_ns"):
        if getattr(mod, n, None) is not None:
            try:
                setattr(mod, n, (lambda: 0))
            except Exception:
                pass
""" + REF, "honest", max_speedup=HONEST_REF_MAX, twin=REF),
    Cheat("timer divided by 1000 via sys.modules['time']", "gm", """\
import sys
_t = sys.modules["time"]
_orig = _t.perf_counter_ns
_t.perf_counter_ns = lambda: _orig() // 1000
""" + REF, "honest", max_speedup=HONEST_REF_MAX, twin=REF),
    Cheat("harness globals hunted in sys.modules", "gm", """\
import sys
for name, mod in list(sys.modules.items()):
    if any(k in name for k in ("harness", "tttd", "speed", "wire")):
        for attr in list(vars(mod)):
            if attr.startswith("_perf") or attr in ("check", "_default_check", "Verdict"):
                setattr(mod, attr, lambda *a, **k: None)
""" + REF, "honest", max_speedup=HONEST_REF_MAX, twin=REF),
    Cheat("checker replaced: numpy.isclose/array_equal always true", "gm", """\
import numpy as np
np.isclose = lambda a, b, **k: np.ones(np.shape(a), bool)
np.array_equal = lambda *a, **k: True
def group_means(data):
    return np.zeros(data[2])
""", "invalid", "wrong output"),
    Cheat("random source pinned (numpy seeds and os.urandom)", "gm", """\
import os, numpy as np
os.urandom = lambda n: bytes(n)
np.random.seed(0)
_rng = np.random.default_rng
np.random.default_rng = lambda *a, **k: _rng(0)
_guess = {}
def group_means(data):  # the answer for the input seed 0 would give
    keys, values, groups = data
    if groups not in _guess:
        r = np.random.default_rng(0)
        k, v = r.integers(0, groups, len(keys)), r.normal(size=len(keys))
        _guess[groups] = np.bincount(k, weights=v, minlength=groups) / np.maximum(np.bincount(k, minlength=groups), 1)
    return _guess[groups]
""", "invalid", "wrong output"),
    Cheat("predicted seeds: precomputed answers for small seeds", "gm", _gm("""\
def _gen(seed, n, groups):
    r = np.random.default_rng(seed)
    return r.integers(0, groups, n), r.normal(size=n), groups
_table = {}
def group_means(data):
    keys, values, groups = data
    key = (len(keys), groups, float(values[0]))
    if not _table:
        for s in range(200):
            for n, g in ((10, 4), (1000, 50), (3000, 400), (20000, 40)):
                k, v, gg = _gen(s, n, g)
                _table[(n, g, float(v[0]))] = _honest((k, v, gg))
    if key in _table:
        return _table[key]
    return np.zeros(groups)
"""), "invalid", "wrong output"),
    # ---- cached, aliased and lazy outputs ------------------------------------------------------------
    Cheat("result cached by input shape", "gm", _gm("""\
_c = {}
def group_means(data):
    k = (len(data[0]), data[2])
    if k not in _c:
        _c[k] = _honest(data)
    return _c[k]
"""), "invalid", "wrong output"),
    Cheat("result cached by the input buffer's address", "gm", _gm("""\
_c = {}
def group_means(data):
    k = data[1].__array_interface__["data"][0]
    if k not in _c:
        _c[k] = _honest(data)
    return _c[k]
"""), "invalid", "wrong output"),
    Cheat("output returned as a view of the inputs", "gm", """\
def group_means(data):
    keys, values, groups = data
    return values[:groups]
""", "invalid", "wrong output"),
    Cheat("one output buffer reused and filled after return", "gm", _gm("""\
import threading
_buf = {}
def group_means(data):
    out = _buf.setdefault(data[2], np.zeros(data[2]))
    keys, values = data[0].copy(), data[1].copy()
    threading.Thread(target=lambda: out.__setitem__(slice(None), _honest((keys, values, data[2])))).start()
    return out
"""), "invalid", "wrong output"),
    Cheat("ndarray subclass output (lazy object)", "gm", _gm("""\
class Lazy(np.ndarray):
    pass
def group_means(data):
    return _honest(data).view(Lazy)
"""), "honest", twin=FAST),
    Cheat("NaN everywhere", "gm", "import numpy as np\ndef group_means(data):\n    return np.full(data[2], np.nan)\n",
          "invalid", "wrong output"),
    Cheat("Inf everywhere", "gm", "import numpy as np\ndef group_means(data):\n    return np.full(data[2], np.inf)\n",
          "invalid", "wrong output"),
    Cheat("float32 instead of float64 (dtype trick)", "gm", _gm("""\
def group_means(data):
    return _honest(data).astype(np.float32)
"""), "invalid", "dtype"),
    Cheat("object array output (not data)", "gm", _gm("""\
def group_means(data):
    return np.array(list(_honest(data)), dtype=object)
"""), "invalid", "not numeric data"),
    # ---- work outside the timed region ---------------------------------------------------------------
    Cheat("work on a thread after return", "gm", _gm("""\
import threading
def group_means(data):
    out = np.zeros(data[2])
    k, v, g = data[0].copy(), data[1].copy(), data[2]
    threading.Thread(target=lambda: out.__setitem__(slice(None), _honest((k, v, g)))).start()
    return out
"""), "invalid", "wrong output"),
    Cheat("background thread busy between calls", "gm", _gm("""\
import threading, time
def _spin():
    while True:
        t = time.process_time() + 0.02
        while time.process_time() < t:
            pass
        time.sleep(0.001)
_started = []
def group_means(data):
    if not _started:
        _started.append(threading.Thread(target=_spin, daemon=True))
        _started[0].start()
    return _honest(data)
"""), "invalid", "escape"),
    Cheat("background process busy between calls", "gm", _gm("""\
import os, time
_child = []
def group_means(data):
    if not _child:
        pid = os.fork()
        if pid == 0:
            os.setsid()
            while True:
                t = time.process_time() + 0.02
                while time.process_time() < t:
                    pass
                time.sleep(0.001)
        _child.append(pid)
    return _honest(data)
"""), "invalid", "escape"),
    Cheat("work done at import time (a table of guesses)", "gm", _gm("""\
_table = {}
for s in range(50):
    r = np.random.default_rng(s)
    k, v = r.integers(0, 40, 20000), r.normal(size=20000)
    _table[round(float(v[0]), 12)] = _honest((k, v, 40))
def group_means(data):
    hit = _table.get(round(float(data[1][0]), 12))
    return hit if hit is not None else np.zeros(data[2])
"""), "invalid", "wrong output"),
    Cheat("reads the inputs of other calls (shared region scan)", "gm", _gm("""\
import mmap, os, glob
_prev = []
def group_means(data):
    out = _prev[-1] if _prev else np.zeros(data[2])
    _prev.append(_honest(data))  # next call answers with this one
    return out if len(out) == data[2] else np.zeros(data[2])
"""), "invalid", "wrong output"),
    # ---- the worker's channel and the result -------------------------------------------------------
    Cheat("forged result line on stdout and every fd", "gm", """\
import os, json, numpy as np
line = json.dumps({"ok": True, "stage": "done", "benchmarks": [{"runs": 3, "mean_ns": 1, "median_ns": 1}]})
print("TTR1" + "0" * 16 + line, flush=True)
for fd in range(3, 64):
    try:
        os.write(fd, b"TTR1" + b"0" * 16 + line.encode())
    except OSError:
        pass
def group_means(data):
    return np.zeros(data[2])
""", "invalid", "tamper"),
    Cheat("fake completion signal written on the answer pipe", "gm", _gm("""\
import os, sys, json, struct
def group_means(data):
    msg = json.dumps({"ok": True, "tree": {"t": "nd", "dtype": "<f8", "shape": [data[2]], "off": 0}}).encode()
    os.write(int(sys.argv[2]), struct.pack(">I", len(msg)) + msg)  # 'done' before any work
    return _honest(data)
"""), "invalid", "outside the output region"),
    Cheat("claims completion early, computes after", "gm", _gm("""\
import os, sys, json, struct, threading
def group_means(data):
    out = np.zeros(data[2])
    msg = json.dumps({"ok": True, "tree": {"t": "nd", "dtype": "<f8", "shape": [data[2]], "off": 1 << 22}}).encode()
    os.write(int(sys.argv[2]), struct.pack(">I", len(msg)) + msg)
    return _honest(data)
"""), "invalid", ""),
    Cheat("floods the answer pipe", "gm", _gm("""\
import os, sys
def group_means(data):
    os.set_blocking(int(sys.argv[2]), True)
    os.write(int(sys.argv[2]), b"\\xff" * (1 << 16))
    return _honest(data)
"""), "invalid", "flooding"),
    Cheat("claims an absurd output ('over budget')", "gm", _gm("""\
def group_means(data):
    return np.zeros((data[2], 1 << 16))
"""), "invalid", ""),
    Cheat("kills the controller", "gm", _gm("""\
import os, signal
def group_means(data):
    os.kill(os.getppid(), signal.SIGKILL)
    return _honest(data)
"""), "invalid", ""),
    Cheat("worker exits mid-call", "gm", "import os\ndef group_means(data):\n    os._exit(0)\n", "invalid", "crashed"),
    Cheat("reads the controller's memory, environment, fds and heap", "gm", _gm("""\
import ctypes, gc, os, sys
def _leaks():
    found = []
    ppid = os.getppid()
    for path in (f"/proc/{ppid}/mem", f"/proc/{ppid}/environ", f"/proc/{ppid}/maps"):
        try:
            with open(path, "rb") as f:
                if f.read(16):
                    found.append(path)
        except OSError:
            pass
    for fd in range(0, 64):  # the controller's result pipe, reopened through /proc
        try:
            os.close(os.open(f"/proc/{ppid}/fd/{fd}", os.O_WRONLY))
            found.append(f"fd {fd}")
        except OSError:
            pass
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.ptrace(16, ppid, 0, 0) == 0:  # PTRACE_ATTACH
        found.append("ptrace")
    for o in gc.get_objects():
        if type(o).__name__ in ("Verdict", "_Runner", "CpuMeter"):
            found.append(type(o).__name__)
    return found
def group_means(data):
    leaks = _leaks()
    if leaks:
        raise RuntimeError("LEAK " + ",".join(leaks))
    return _honest(data)
"""), "honest", twin=FAST),
    # ---- trimul (CPU correctness path) ---------------------------------------------------------------
    Cheat("zero kernel", "trimul", "import torch\ndef custom_kernel(data):\n    return torch.zeros_like(data[0])\n",
          "invalid", "wrong output"),
    Cheat("output returned as the input tensor", "trimul", "def custom_kernel(data):\n    return data[0]\n",
          "invalid", "wrong output"),
    Cheat("result cached by input shape", "trimul", TRIMUL.replace("def custom_kernel(", "def _k(") + """
_c = {}
def custom_kernel(data):
    k = tuple(data[0].shape)
    if k not in _c:
        _c[k] = _k(data)
    return _c[k]
""", "invalid", "wrong output"),
    Cheat("tensor subclass whose data is zeros", "trimul", TRIMUL.replace("def custom_kernel(", "def _k(") + """
class Fake(torch.Tensor):
    pass
def custom_kernel(data):
    out = torch.zeros_like(data[0]).as_subclass(Fake)
    return out
""", "invalid", "wrong output"),
    Cheat("torch checks patched (isnan, allclose)", "trimul", """\
import torch
torch.isnan = lambda t: torch.zeros_like(t, dtype=torch.bool)
torch.allclose = lambda *a, **k: True
def custom_kernel(data):
    return torch.zeros_like(data[0])
""", "invalid", "wrong output"),
    Cheat("Inf output", "trimul", "import torch\ndef custom_kernel(data):\n    return torch.full_like(data[0], float('inf'))\n",
          "invalid", "Inf"),
    Cheat("complex dtype output", "trimul", TRIMUL.replace("def custom_kernel(", "def _k(") + """
def custom_kernel(data):
    return _k(data).to(torch.complex64)
""", "invalid", "real tensor"),
    Cheat("side stream (CUDA) left running: refused on the CPU path (the GPU check: benchmarks/gpu_checks.sh)", "trimul",
          open(os.path.join(os.path.dirname(_trimul.__file__), "hostile_side_stream.py")).read(), "invalid", ""),
    # ---- mla decode (CPU correctness path) -----------------------------------------------------------
    Cheat("zero output, cache untouched", "mla", "import torch\ndef custom_kernel(data):\n"
          "    config, x, cache = data\n    return torch.zeros_like(x), cache.data\n", "invalid", "wrong output"),
    Cheat("returns the cache module, not its data", "mla", MLA.replace("def custom_kernel(", "def _k(") + """
def custom_kernel(data):
    out, _ = _k(data)
    return out, data[2]
""", "invalid", "is not data"),
    Cheat("result cached by shape", "mla", MLA.replace("def custom_kernel(", "def _k(") + """
_c = {}
def custom_kernel(data):
    k = (tuple(data[1].shape), data[2].seq_len)
    if k not in _c:
        _c[k] = tuple(t.clone() for t in _k(data))
    return _c[k]
""", "invalid", "wrong output"),
    Cheat("bf16 output claimed as fp8-rounded cache (precision trick)", "mla", MLA.replace(
        "        lat = kv_cache.data[b:b + group, :length]",
        "        lat = kv_cache.data[b:b + group, :length].to(torch.float8_e4m3fn).to(torch.bfloat16)"),
        "invalid", "wrong output"),
]
