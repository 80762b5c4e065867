"""The harness that runs *inside* the sandbox (stdlib only; numpy only when arrays are involved).

Started by :mod:`tttd.sandbox` as ``python -I -S harness.py`` with its configuration on stdin
(never in argv or the environment, which the candidate could read from /proc). Steps, all before
any candidate code runs:

1. read the configuration from stdin, then point fd 0 at /dev/null;
2. in the jail (bubblewrap): mount ONE tmpfs capped in bytes and inodes and bind its ``work``,
   ``tmp`` and ``shm`` directories on the working directory, /tmp and /dev/shm (so every place the
   candidate can write shares one total cap); without a memory cgroup, set this IPC namespace's
   System V limits through a private proc mount; detach the tmpfs's own mount point; bind the
   interpreter directories that lie under /tmp (staged at ``/.tttd/b/N``) back at their real paths;
3. drop privileges: a fresh uid when the parent is root, else (user namespace, uid 0 inside)
   lock root's special treatment away with securebits and clear every capability;
4. ``PR_SET_NO_NEW_PRIVS``; in the jail also ``PR_SET_DUMPABLE 0`` (this process is the pid
   namespace's init, see 6); in the weak mode Landlock (:mod:`tttd.sandbox.landlock`); then the
   seccomp filter (no namespaces, mounts, ptrace, TIOCSTI; see :mod:`tttd.sandbox.seccomp`);
5. copy the input files into the working directory, set the rlimits, pin CPUs;
6. in the jail (``--as-pid-1``): fork; the parent stays as the namespace's init, out of the
   candidate's reach (not dumpable), reaps, and exits with the child's status (128+N for signal N);
   the child goes on;
7. ``program`` mode: exec the candidate's source as the module ``candidate``, call
   ``entry(**args)``, encode the return value as data and write ONE frame (see
   :mod:`tttd.sandbox.results`) to the result pipe, then ``os._exit(0)``. ``command`` mode: fork and
   exec the command (the result pipe is closed in it), wait, and send a report frame with its exit
   status and the result file's bytes (regular file only, at most the result limit).

Everything the harness needs after the candidate's code starts (os.write/os._exit, the C string
escaper of ``_json``, ``float.__repr__``, ...) is bound to locals *before* that code runs, so
monkeypatching ``builtins``, ``json``, ``numpy.save``, ``sys.exit`` or ``os._exit`` in the candidate
does not change what is written. A candidate that digs into this frame or process memory
(``sys._getframe``, ``gc``, ``ctypes``) or writes to the result pipe itself can still make the
parent receive data of its choice: that is only data, validated and re-scored by the trusted side.

Exit codes: 0 result written; 1 the candidate raised (or called sys.exit); 3 MemoryError;
4 the return value is not data (bad output); 5 harness/setup failure; 127 exec failed; in command
mode otherwise the command's exit code, or 128+N when signal N killed it.
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


MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_REC, MNT_DETACH = 1, 2, 4, 8, 32, 4096, 16384, 2
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER, PR_CAP_AMBIENT = 38, 22, 2, 47
PR_SET_DUMPABLE = 4
PR_SET_PDEATHSIG, SIGKILL = 1, 9
PR_CAPBSET_DROP, PR_SET_SECUREBITS = 24, 28
SECUREBITS = 0x01 | 0x02 | 0x20 | 0x40 | 0x80  # NOROOT(+LOCKED), KEEP_CAPS_LOCKED, NO_CAP_AMBIENT_RAISE(+LOCKED)


def _libc():
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    def check(r, what):
        if r != 0:
            e = ctypes.get_errno()
            raise OSError(e, "%s: %s" % (what, os.strerror(e)))

    return ctypes, libc, check


def _mount_jail(cfg, libc, check):
    """One tmpfs (bytes + inodes capped) holding work/, tmp/ and shm/, bound where they are used."""
    j = cfg["jail"]
    top = j["tmpfs"]
    uid = os.getuid() if cfg.get("uid") is None else cfg["uid"]
    gid = os.getgid() if cfg.get("gid") is None else cfg["gid"]
    opts = "size=%d,nr_inodes=%d,mode=0755" % (j["bytes"], j["inodes"])
    # huge pages where the kernel has them (large shared inputs, e.g. the speed kit's region, then
    # cost no more TLB misses than private memory); kernels without THP refuse the option: without it
    if libc.mount(b"tmpfs", top.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, (opts + ",huge=within_size").encode()) != 0:
        check(libc.mount(b"tmpfs", top.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, opts.encode()), "mount tmpfs")
    for name, dst, mode in (("work", cfg["workdir"], 0o700), ("tmp", "/tmp", 0o1777), ("shm", "/dev/shm", 0o1777)):
        src = os.path.join(top, name)
        os.mkdir(src)
        os.chmod(src, mode)
        if name == "work":
            os.chown(src, uid, gid)
        check(libc.mount(src.encode(), dst.encode(), None, MS_BIND, None), "bind " + dst)
    if j.get("shm"):  # this IPC namespace's System V limits, through a private proc mount
        pdir = os.path.join(top, "proc")
        os.mkdir(pdir)
        check(libc.mount(b"proc", pdir.encode(), b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None), "mount proc")
        for name, val in j["shm"].items():
            with open(os.path.join(pdir, "sys", "kernel", name), "w") as f:
                f.write(str(val))
        check(libc.umount2(pdir.encode(), MNT_DETACH), "detach proc")
    check(libc.umount2(top.encode(), MNT_DETACH), "detach " + top)
    for staged, dst in j.get("rebind", ()):  # interpreter dirs under /tmp or /dev/shm, at their real path
        os.makedirs(dst, 0o755, exist_ok=True)
        check(libc.mount(staged.encode(), dst.encode(), None, MS_BIND | MS_REC, None), "bind " + dst)
        check(libc.mount(None, dst.encode(), None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, None),
              "read-only " + dst)
        # the staging mount stays: an interpreter under /tmp may be running from it


def _drop_caps(ctypes, libc, check):
    """User-namespace jail (uid 0 inside = the parent's uid outside): lock the root semantics away
    (securebits), empty the bounding set, then clear every capability."""
    check(libc.prctl(PR_SET_SECUREBITS, SECUREBITS, 0, 0, 0), "securebits")
    for cap in range(64):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break  # EINVAL past the last capability

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    data = (ctypes.c_uint32 * 6)()
    check(libc.capset(ctypes.byref(Header(0x20080522, 0)), data), "capset")
    libc.prctl(PR_CAP_AMBIENT, 4, 0, 0, 0)  # PR_CAP_AMBIENT_CLEAR_ALL (cleared with permitted anyway)


def _install_seccomp(ctypes, libc, check, prog_bytes):
    class Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    buf = ctypes.create_string_buffer(prog_bytes, len(prog_bytes))
    fprog = Fprog(len(prog_bytes) // 8, ctypes.cast(buf, ctypes.c_void_p))
    check(libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0), "seccomp")


def _input_bytes(cfg, name):
    """An input file's bytes: inline in the configuration, or from the read-only input directory."""
    if cfg.get("inline") is not None:
        import binascii

        return binascii.a2b_base64(cfg["inline"][name])
    with open(os.path.join(cfg["in_dir"], name), "rb") as f:
        return f.read()


def _copy_inputs(cfg):
    """Write the input files into the working directory, as the candidate's uid."""
    dst_dir = cfg["workdir"]
    for rel in cfg["copy"]:
        dst = os.path.join(dst_dir, rel)
        parent = os.path.dirname(dst)
        if parent != dst_dir:
            os.makedirs(parent, exist_ok=True)
        data = _input_bytes(cfg, rel)
        fout = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            mv = memoryview(data)
            while mv:
                mv = mv[os.write(fout, mv):]
        finally:
            os.close(fout)


def _landlock(cfg):
    """Weak mode: confine the file view with Landlock (tttd/sandbox/landlock.py, loaded by path)."""
    import importlib.util

    ll = cfg["landlock"]
    spec = importlib.util.spec_from_file_location("_tttd_landlock", ll["module"])
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    if not mod.restrict(ll["read"], ll["write"], ll["network"]):
        _fail(EXIT_SETUP, "Landlock is not available")


def _init(cfg):
    """bubblewrap runs the harness as the pid namespace's init (``--as-pid-1``): fork the
    candidate's process, stay non-dumpable (out of its reach), reap, and exit with its status
    (128+N for signal N). When this init exits the kernel kills everything left in the namespace."""
    pid = os.fork()
    if pid == 0:
        if cfg.get("alive_fd") is not None:
            os.close(cfg["alive_fd"])
        return
    os.close(cfg["result_fd"])
    if cfg.get("alive_fd") is not None:  # the trusted parent died (even SIGKILL): end the namespace
        import _thread

        _thread.start_new_thread(_watch_parent, (cfg["alive_fd"],))
    code = None
    while True:
        try:
            wpid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if wpid == pid:
            code = os.waitstatus_to_exitcode(status)
            break
    _end_all()
    os._exit(EXIT_SETUP if code is None else code if code >= 0 else 128 - code)


def _end_all():
    """Kill every other process of the namespace and reap them all before this init exits: the
    CPU time of what it reaps is added to its own children's total, which bubblewrap and then
    the trusted parent receive (``wait4``). Left to the kernel's teardown, processes the
    candidate never waited for would take their CPU time with them (issue 31: AHC's CPU limit)."""
    import time

    while True:
        try:
            os.kill(-1, SIGKILL)  # every process of the namespace this init may signal, not itself
        except OSError:
            pass
        reaped = False
        while True:
            try:
                wpid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            except InterruptedError:
                continue
            if wpid == 0:
                break
            reaped = True
        if not reaped:
            time.sleep(0.001)


def _watch_parent(fd):
    """Block on the read end of a pipe whose only write end the trusted parent holds: end of file
    means that process is gone, however it died, or that it closed the pipe to end the run (wall
    time limit). Kill and reap everything, exit: as the jail's init this ends the pid namespace."""
    while True:
        try:
            if not os.read(fd, 64):
                break
        except InterruptedError:
            continue
        except OSError:
            break
    _end_all()
    os._exit(128 + SIGKILL)


def _setup(cfg):
    """Jail mounts, privileges, seccomp, inputs, rlimits, CPU affinity. Runs before any candidate code."""
    import resource

    ctypes = libc = check = None
    if cfg.get("jail") or cfg.get("seccomp") or cfg.get("drop_caps") or cfg.get("landlock") or cfg.get("init") \
            or cfg.get("alive_fd") is not None:
        ctypes, libc, check = _libc()
    if cfg.get("jail"):
        _mount_jail(cfg, libc, check)
    uid = cfg.get("uid")
    if uid is not None:
        os.setgroups([])
        os.setgid(cfg["gid"])
        os.setuid(uid)
        if os.getuid() != uid or os.geteuid() != uid:
            _fail(EXIT_SETUP, "could not drop privileges")
    if cfg.get("drop_caps"):
        _drop_caps(ctypes, libc, check)
    if libc is not None:
        check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")
        if cfg.get("init"):  # the jail's pid 1: no process of the candidate may read or trace it
            check(libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "not dumpable")
        # the uid change cleared the parent-death signal bwrap (--die-with-parent) or the runner set
        check(libc.prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0), "parent-death signal")
        if cfg.get("parent_pid") is not None and os.getppid() != cfg["parent_pid"]:
            _fail(EXIT_SETUP, "the parent died before the candidate started")
    if cfg.get("alive_fd") is not None and not cfg.get("init"):
        os.close(cfg["alive_fd"])  # only the jail's init watches it
    if cfg.get("landlock"):
        _landlock(cfg)
    if cfg.get("seccomp"):
        _install_seccomp(ctypes, libc, check, bytes.fromhex(cfg["seccomp"]))
    os.chdir(cfg["workdir"])
    _copy_inputs(cfg)
    for name, (soft, hard) in cfg["rlimits"].items():
        resource.setrlimit(getattr(resource, name), (soft, hard))
    if cfg.get("cpus"):
        os.sched_setaffinity(0, cfg["cpus"])


def _frame(token, doc_bytes):
    import struct

    return b"TTR1" + token.encode("ascii") + struct.pack(">Q", len(doc_bytes)) + doc_bytes


def _write_all(fd, data):
    mv = memoryview(data)
    while mv:
        mv = mv[os.write(fd, mv):]


def _run_command(cfg):
    """Fork + exec the command, wait, report its status and result file through the pipe."""
    import json

    rfd = cfg["result_fd"]
    os.set_inheritable(rfd, False)
    try:
        pid = os.fork()
    except OSError as e:
        _fail(EXIT_SETUP, "fork failed: %s" % (e,))
    if pid == 0:
        try:
            os.close(rfd)
            os.execvpe(cfg["command"][0], cfg["command"], os.environ)
        except BaseException as e:
            try:
                os.write(2, ("tttd-sandbox: cannot execute %r: %s\n" % (cfg["command"][0], e)).encode("utf-8", "replace"))
            finally:
                os._exit(EXIT_EXEC)
    while True:
        try:
            _, status = os.waitpid(pid, 0)
            break
        except ChildProcessError:
            status = 0
            break
        except InterruptedError:
            continue
    code = os.waitstatus_to_exitcode(status)
    doc = {"exit": code if code >= 0 else None, "signal": -code if code < 0 else None, "result": "absent"}
    payload = b""
    if cfg.get("result_file"):
        try:
            fd = os.open(os.path.join(cfg["workdir"], cfg["result_file"]),
                         os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            fd = None
        except OSError as e:
            fd, doc["result"] = None, "cannot open the result file: %s" % (e.strerror,)
        if fd is not None:
            import stat

            try:
                st = os.fstat(fd)
                if not stat.S_ISREG(st.st_mode):
                    doc["result"] = "the result file is not a regular file"
                elif st.st_size > cfg["max_result_bytes"]:
                    doc["result"] = "the result file has %d bytes, over the limit of %d" % (st.st_size, cfg["max_result_bytes"])
                else:
                    chunks, left = [], st.st_size
                    while left > 0:
                        b = os.read(fd, min(left, 1 << 20))
                        if not b:
                            break
                        chunks.append(b)
                        left -= len(b)
                    payload = b"".join(chunks)
                    doc["result"] = "present"
            finally:
                os.close(fd)
    try:
        _write_all(rfd, _frame(cfg["token"], json.dumps(doc).encode()) + payload)
    except OSError:
        pass
    os._exit(code if code >= 0 else 128 - code)


def _load_tree(tree, arrays, cfg):
    """Replace array placeholders in the (trusted) input document by numpy arrays."""
    if not arrays:
        return tree
    import numpy as np

    loaded = [
        np.frombuffer(bytearray(_input_bytes(cfg, a["file"])), dtype=np.dtype(a["dtype"])).reshape(a["shape"])
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
    _write, _exit = os.write, os._exit
    _join = os.path.join
    import struct

    workdir, rfd, _pack = cfg["workdir"], cfg["result_fd"], struct.pack
    head = b"TTR1" + cfg["token"].encode("ascii")
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

    def write_all(data):
        mv = _mv(data)
        while mv:
            n = _write(rfd, mv)
            mv = mv[n:]

    for p in cfg["sys_path"]:
        if p not in sys.path:
            sys.path.append(p)
    import builtins
    import types

    if not hasattr(builtins, "exit"):  # -S skips site, which defines exit()/quit()
        builtins.exit = builtins.quit = sys.exit
    import json

    doc = json.loads(_input_bytes(cfg, cfg["input_file"]))
    args = _load_tree(doc["args"], doc["arrays"], cfg)
    inject = _load_tree(doc["inject"], doc["arrays"], cfg)
    if "inline" in cfg:
        del cfg["inline"]  # the inputs are not left lying in the harness's memory for no reason
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
        for a in arrays:
            header.append('{"dtype":"%s","shape":[%s]}' % (a.dtype.str, ",".join(_str(_int(s)) for s in a.shape)))
        doc = '{"value":%s,"arrays":[%s]}' % (text, ",".join(header))
        doc = doc.encode("utf-8", "surrogatepass")
        write_all(head + _pack(">Q", _len(doc)) + doc)
        for a in arrays:
            write_all(a.tobytes())
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
        if cfg.get("init"):
            _init(cfg)
    except SystemExit:
        raise
    except BaseException as e:
        _fail(EXIT_SETUP, "setup failed: %r" % (e,))
    if cfg["mode"] == "command":
        _run_command(cfg)
    _run_program(cfg)


if __name__ == "__main__":
    main()
