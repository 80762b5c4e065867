"""GPU device binds through the real sandbox (needs an NVIDIA GPU and torch with CUDA).

Runs a candidate that imports torch and multiplies two matrices on ``cuda``: with ``devices=(0,)``
it must see exactly one GPU (the assigned one, by UUID) and get the right answer; with
``devices=()`` it must see none. Prints the platform (bubblewrap or not), the protections and
each verdict; exits 1 if a check fails.

    PYTHONPATH=. python benchmarks/sandbox_gpu_check.py
"""

from __future__ import annotations

import sys

from tttd import sandbox
from tttd.sandbox import gpu
from tttd.types import Limits

SRC = """
import os, torch
def main():
    n = torch.cuda.device_count()
    out = {"count": n, "visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
           "nodes": sorted(x for x in os.listdir("/dev") if x.startswith("nvidia"))}
    if n:
        a = torch.ones(256, 256, device="cuda")
        out["sum"] = float((a @ a).sum().item())
        out["name"] = torch.cuda.get_device_name(0)
    return out
"""


def main() -> int:
    lim = Limits(wall_s=300, memory_mb=16384, gpus=1, result_mb=1)
    print("platform:", sandbox.platform_info())
    gpus = gpu.list_gpus()
    print("driver reports:", gpus)
    ok = True
    r = sandbox.run_program(SRC, limits=lim, devices=(0,))
    print("devices=(0,):", r.status, r.value, r.message, r.stderr[-800:] if r.status != "ok" else "")
    print("protections:", r.protections)
    ok &= r.status == "ok" and r.value["count"] == 1 and r.value["sum"] == 256.0 ** 3
    if gpus and gpus[0].uuid:
        ok &= r.ok and r.value["visible"] == gpus[0].uuid
    r = sandbox.run_program(SRC, limits=lim, devices=())
    print("devices=():", r.status, r.value, r.message, r.stderr[-800:] if r.status != "ok" else "")
    ok &= r.status == "ok" and r.value["count"] == 0
    if len(gpus) > 1:
        r = sandbox.run_program(SRC, limits=lim, devices=(1,))
        print("devices=(1,):", r.status, r.value)
        ok &= r.ok and r.value["count"] == 1 and (not gpus[1].uuid or r.value["visible"] == gpus[1].uuid)
    print("GPU CHECK", "PASSED" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
