"""The harness that runs *inside* the sandbox (stdlib only; numpy only when arrays are involved).

Started by :mod:`tttd.sandbox` as ``python -I -S _sandbox_harness.py`` with its configuration on
stdin (never in argv or the environment, which the candidate could read from /proc). Steps:

1. read the configuration from stdin, then point fd 0 at /dev/null;
2. drop to the sandbox uid (when the parent asked for one: it is root), set the rlimits, pin CPUs;
3. ``command`` mode: exec the command. ``program`` mode: load the inputs (args, injected globals),
   exec the candidate's source as the module ``candidate``, call ``entry(**args)``, encode the
   return value as data and write it under the random result name, then ``os._exit(0)``.

Everything the harness needs after the candidate's code starts (os.open/os.write/os._exit, the C
string escaper of ``_json``, ``float.__repr__``, ...) is bound to locals *before* that code runs, so
monkeypatching ``builtins``, ``json``, ``numpy.save``, ``sys.exit`` or ``os._exit`` in the candidate
does not change what is written. A candidate that digs into this frame or process memory
(``sys._getframe``, ``gc``, ``ctypes``) can still make the harness write data of its choice: that
is only data, validated and re-scored by the trusted side (see tttd/sandbox.py).

Exit codes: 0 result written; 1 the candidate raised (or called sys.exit); 3 MemoryError;
4 the return value is not data (bad output); 5 harness/setup failure; 127 exec failed.
"""

import os
import sys

EXIT_OK, EXIT_ERROR, EXIT_MEMORY, EXIT_BAD_OUTPUT, EXIT_SETUP, EXIT_EXEC = 0, 1, 3, 4, 5, 127
ARRAY_KEY = "__tttd_array__"
NUMERIC_KINDS = "biufc"


class BadOutput(Exception):
    """The candidate's return value is not data (or too big / too deep)."""


def _fail(code, msg):
    try:
        os.write(2, ("tttd-sandbox: " + msg + "\n").encode("utf-8", "replace"))
    finally:
        os._exit(code)


def _setup(cfg):
    """Privileges, rlimits, CPU affinity. Runs before any candidate code."""
    import resource

    uid = cfg.get("uid")
    if uid is not None:
        os.setgroups([])
        os.setgid(cfg["gid"])
        os.setuid(uid)
        if os.getuid() != uid or os.geteuid() != uid:
            _fail(EXIT_SETUP, "could not drop privileges")
    for name, (soft, hard) in cfg["rlimits"].items():
        resource.setrlimit(getattr(resource, name), (soft, hard))
    if cfg.get("cpus"):
        os.sched_setaffinity(0, cfg["cpus"])


def _load_tree(tree, arrays, workdir):
    """Replace array placeholders in the (trusted) input document by numpy arrays."""
    if not arrays:
        return tree
    import numpy as np

    loaded = [
        np.fromfile(os.path.join(workdir, a["file"]), dtype=np.dtype(a["dtype"])).reshape(a["shape"])
        for a in arrays
    ]

    def walk(x):
        if type(x) is dict:
            if len(x) == 1 and ARRAY_KEY in x:
                return loaded[x[ARRAY_KEY]]
            return {k: walk(v) for k, v in x.items()}
        if type(x) is list:
            return [walk(v) for v in x]
        return x

    return walk(tree)


def _make_encoder(max_depth, max_elements, max_array_bytes):
    """An encoder bound to references captured now, before the candidate runs."""
    from _json import encode_basestring_ascii as esc  # C function

    _type, _len, _repr_f, _repr_i, _hasattr = type, len, float.__repr__, int.__repr__, hasattr
    _BadOutput, array_key, kinds = BadOutput, ARRAY_KEY, NUMERIC_KINDS
    _dict_items, _join, _append = dict.items, "".join, list.append
    _str, _int, _float, _bool, _list, _tuple, _dict = str, int, float, bool, list, tuple, dict
    _isnan = float.__ne__
    inf, ninf = float("inf"), float("-inf")

    def enc(value):
        out, arrays, state = [], [], {"n": 0, "bytes": 0}

        def scalar_float(x):
            if _isnan(x, x):
                return "NaN"
            if x == inf:
                return "Infinity"
            if x == ninf:
                return "-Infinity"
            return _repr_f(x)

        def walk(x, depth):
            if depth > max_depth:
                raise _BadOutput("return value nested deeper than %d levels" % max_depth)
            state["n"] += 1
            if state["n"] > max_elements:
                raise _BadOutput("return value has more than %d elements" % max_elements)
            t = _type(x)
            if x is None:
                _append(out, "null")
            elif t is _bool:
                _append(out, "true" if x else "false")
            elif t is _int:
                _append(out, _repr_i(x))
            elif t is _float:
                _append(out, scalar_float(x))
            elif t is _str:
                _append(out, esc(x))
            elif t is _list or t is _tuple:
                _append(out, "[")
                first = True
                for v in x:
                    if not first:
                        _append(out, ",")
                    first = False
                    walk(v, depth + 1)
                _append(out, "]")
            elif t is _dict:
                if array_key in x:
                    raise _BadOutput("dict key %r is reserved" % array_key)
                _append(out, "{")
                first = True
                for k, v in _dict_items(x):
                    if _type(k) is not _str:
                        raise _BadOutput("dict keys must be str, got %s" % _type(k).__name__)
                    if not first:
                        _append(out, ",")
                    first = False
                    _append(out, esc(k))
                    _append(out, ":")
                    walk(v, depth + 1)
                _append(out, "}")
            elif t.__module__ == "numpy" and t.__name__ == "ndarray":
                dt = x.dtype
                if dt.kind not in kinds:
                    raise _BadOutput("numpy array of dtype %s is not numeric/bool data" % dt)
                if dt.byteorder == ">":
                    x = x.astype(dt.newbyteorder("<"))
                state["bytes"] += x.nbytes
                if state["bytes"] > max_array_bytes:
                    raise _BadOutput("arrays in the return value exceed %d bytes" % max_array_bytes)
                _append(out, '{"%s":%d}' % (array_key, _len(arrays)))
                _append(arrays, x)
            elif t.__module__ == "numpy" and _hasattr(x, "dtype") and x.dtype.kind in "biuf":
                walk(x.item(), depth)  # numpy scalar -> Python scalar
                state["n"] -= 1
            else:
                raise _BadOutput("return value contains a %s.%s, which is not data" % (t.__module__, t.__name__))

        walk(value, 0)
        return _join(out), arrays

    return enc


def _run_program(cfg):
    # Bind everything needed after the candidate runs, before it runs.
    _open, _write, _close, _exit = os.open, os.write, os.close, os._exit
    _join = os.path.join
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    workdir, name = cfg["workdir"], cfg["result_name"]
    encode = _make_encoder(cfg["max_depth"], cfg["max_elements"], cfg["max_array_bytes"])
    max_json = cfg["max_json_bytes"]
    _stdout, _stderr = sys.stdout, sys.stderr
    _mv, _enum, _str, _int, _len, _callable, _BadOutput = memoryview, enumerate, str, int, len, callable, BadOutput
    ok_code, error_code, memory_code, bad_code = EXIT_OK, EXIT_ERROR, EXIT_MEMORY, EXIT_BAD_OUTPUT
    entry = cfg["entry"]

    def flush():
        for s in (_stdout, _stderr):
            try:
                s.flush()
            except BaseException:
                pass

    def report(code, exc):
        try:
            import traceback

            traceback.print_exception(type(exc), exc, exc.__traceback__, file=_stderr)
        except BaseException:
            pass
        flush()
        _exit(code)

    def write_all(path, data):
        fd = _open(path, flags, 0o600)
        try:
            mv = _mv(data)
            while mv:
                n = _write(fd, mv)
                mv = mv[n:]
        finally:
            _close(fd)

    for p in cfg["sys_path"]:
        if p not in sys.path:
            sys.path.append(p)
    import builtins
    import types

    if not hasattr(builtins, "exit"):  # -S skips site, which defines exit()/quit()
        builtins.exit = builtins.quit = sys.exit
    with open(_join(workdir, cfg["input_file"]), "rb") as f:
        import json

        doc = json.loads(f.read())
    args = _load_tree(doc["args"], doc["arrays"], workdir)
    inject = _load_tree(doc["inject"], doc["arrays"], workdir)
    with open(_join(workdir, cfg["source_file"]), "rb") as f:
        source = f.read()
    mod = types.ModuleType("candidate")
    mod.__file__ = _join(workdir, cfg["source_file"])
    mod.__dict__.update(inject)
    sys.modules["candidate"] = mod
    try:
        code = compile(source, mod.__file__, "exec")
        exec(code, mod.__dict__)
        fn = mod.__dict__.get(entry)
        if not _callable(fn):
            raise NameError("the program defines no callable %r" % entry)
        value = fn(**args)
    except MemoryError as e:
        report(memory_code, e)
    except BaseException as e:  # SystemExit, KeyboardInterrupt included: no result
        report(error_code, e)
    try:
        text, arrays = encode(value)
        data = text.encode("utf-8", "surrogatepass")
        if _len(data) > max_json:
            raise _BadOutput("the JSON part of the return value exceeds %d bytes" % max_json)
        header = []
        for i, a in _enum(arrays):
            write_all(_join(workdir, "%s.%d.bin" % (name, i)), a.tobytes())
            header.append('{"dtype":"%s","shape":[%s]}' % (a.dtype.str, ",".join(_str(_int(s)) for s in a.shape)))
        doc = '{"value":%s,"arrays":[%s]}' % (text, ",".join(header))
        write_all(_join(workdir, name + ".json"), doc.encode("utf-8", "surrogatepass"))
    except MemoryError as e:
        report(memory_code, e)
    except _BadOutput as e:
        try:
            _write(2, ("tttd-sandbox: bad output: %s\n" % (e,)).encode("utf-8", "replace"))
        finally:
            flush()
            _exit(bad_code)
    except BaseException as e:
        report(bad_code, e)
    flush()
    _exit(ok_code)


def main():
    import json

    try:
        cfg = json.loads(sys.stdin.buffer.read())
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        _setup(cfg)
    except SystemExit:
        raise
    except BaseException as e:
        _fail(EXIT_SETUP, "setup failed: %r" % (e,))
    if cfg["mode"] == "command":
        try:
            os.execvpe(cfg["command"][0], cfg["command"], os.environ)
        except BaseException as e:
            _fail(EXIT_EXEC, "cannot execute %r: %s" % (cfg["command"][0], e))
    _run_program(cfg)


if __name__ == "__main__":
    main()
