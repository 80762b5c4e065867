"""GPU device binds for the jail (``run(program, devices=(0, 2))``).

Only the device nodes of the assigned GPUs are bound into the jail, plus the shared control nodes
(``/dev/nvidiactl``, ``/dev/nvidia-uvm``, ``/dev/nvidia-uvm-tools``, ``/dev/nvidia-modeset``) and
the directories holding the driver's user-space libraries when they lie outside the system
library directories the jail binds anyway. Inside, ``CUDA_VISIBLE_DEVICES`` names exactly the
assigned GPUs (by UUID when the driver reports one, so CUDA's enumeration order cannot pick another
GPU), and ``CUDA_DEVICE_ORDER=PCI_BUS_ID``. ``devices=()`` binds nothing: no GPU is visible.

Device indices are the executor's (``nvidia-smi`` order = PCI bus order). The mapping index ->
``/dev/nvidiaN`` minor number comes from ``/proc/driver/nvidia/gpus/<bus>/information``
("Device Minor", "GPU UUID"); without that file, minor = index.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass

CONTROL_NODES = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools", "nvidia-modeset")
DRIVER_LIB_GLOBS = ("libcuda.so*", "libnvidia-ml.so*", "libnvidia-ptxjitcompiler.so*", "libnvidia-nvvm.so*")
LIB_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib",
            "/lib64", "/usr/local/nvidia/lib64", "/usr/local/nvidia/lib", "/usr/local/cuda/compat",
            "/usr/local/cuda/lib64", "/run/nvidia/driver/usr/lib/x86_64-linux-gnu")


@dataclass(frozen=True)
class GpuInfo:
    index: int  # PCI bus order
    minor: int  # /dev/nvidia<minor>
    uuid: str | None
    bus: str


def list_gpus(proc_root: str = "/proc") -> list[GpuInfo]:
    """GPUs the NVIDIA driver reports, in PCI bus order (empty without the driver)."""
    out = []
    for i, d in enumerate(sorted(glob.glob(os.path.join(proc_root, "driver/nvidia/gpus/*")))):
        fields = {}
        try:
            with open(os.path.join(d, "information")) as f:
                for line in f:
                    k, _, v = line.partition(":")
                    fields[k.strip()] = v.strip()
            minor = int(fields.get("Device Minor", i))
        except (OSError, ValueError):
            minor = i
        uuid = fields.get("GPU UUID") or None
        out.append(GpuInfo(index=i, minor=minor, uuid=uuid if uuid and uuid.startswith("GPU-") else None,
                           bus=os.path.basename(d)))
    return out


def check_devices(devices) -> tuple[int, ...]:
    """Validate ``devices`` (distinct non-negative ints); raises ValueError."""
    try:
        devs = tuple(devices)
    except TypeError:
        raise ValueError(f"devices must be a sequence of GPU indices, got {devices!r:.80}") from None
    if any(type(d) is not int or d < 0 for d in devs) or len(set(devs)) != len(devs):
        raise ValueError(f"devices must be distinct non-negative ints, got {devs!r:.80}")
    return devs


def device_binds(devices: tuple[int, ...], dev_root: str = "/dev", proc_root: str = "/proc",
                 lib_dirs: tuple[str, ...] = LIB_DIRS, bound: tuple[str, ...] = ("/usr", "/lib", "/lib64"),
                 ) -> tuple[list[str], dict[str, str]]:
    """bwrap arguments and environment for ``devices``. Raises ValueError when an assigned GPU's
    device node is missing (the evaluation would silently run without it)."""
    if not devices:
        return [], {}
    gpus = {g.index: g for g in list_gpus(proc_root)}
    argv: list[str] = []
    names = []
    for d in devices:
        g = gpus.get(d, GpuInfo(index=d, minor=d, uuid=None, bus=""))
        node = os.path.join(dev_root, f"nvidia{g.minor}")
        if not os.path.exists(node):
            raise ValueError(f"GPU {d}: device node {node} does not exist")
        argv += ["--dev-bind", node, f"/dev/nvidia{g.minor}"]
        names.append(g.uuid or str(d))
    for n in CONTROL_NODES:
        node = os.path.join(dev_root, n)
        if os.path.exists(node):
            argv += ["--dev-bind", node, f"/dev/{n}"]
    caps = os.path.join(dev_root, "nvidia-caps")
    if os.path.isdir(caps):
        argv += ["--dev-bind", caps, "/dev/nvidia-caps"]
    for lib in sorted(driver_lib_dirs(lib_dirs)):
        if not any(lib == b or lib.startswith(b + "/") for b in bound):
            argv += ["--ro-bind", lib, lib]
    env = {"CUDA_VISIBLE_DEVICES": ",".join(names), "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    return argv, env


def driver_lib_dirs(lib_dirs: tuple[str, ...] = LIB_DIRS) -> set[str]:
    """Directories that hold the NVIDIA driver's user-space libraries."""
    out = set()
    for d in lib_dirs:
        for pat in DRIVER_LIB_GLOBS:
            if glob.glob(os.path.join(d, pat)):
                out.add(os.path.realpath(d))
                break
    return out
