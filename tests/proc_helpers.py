"""Process and temp-dir probes shared by the sandbox and executor tests (Linux /proc)."""

from __future__ import annotations

import os
import tempfile


def child_pids() -> list[int]:
    """Live children of this process (zombies included: they would be leaked too)."""
    me, out = os.getpid(), []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == me:
                        out.append(int(d))
            except OSError:
                pass
    return out


def sandbox_dirs() -> set[str]:
    tmp = tempfile.gettempdir()
    return {d for d in os.listdir(tmp) if d.startswith("tttd-sbx-")}
