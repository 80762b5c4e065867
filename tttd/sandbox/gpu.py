"""GPU device binds for the jail (``run(program, devices=(0, 2))``), for NVIDIA and AMD (ROCm) GPUs.

Only the device nodes of the assigned GPUs are bound into the jail, plus the shared control nodes
(``/dev/nvidiactl``, ``/dev/nvidia-uvm``, ``/dev/nvidia-uvm-tools``, ``/dev/nvidia-modeset``) and
the directories holding the driver's user-space libraries when they lie outside the system
library directories the jail binds anyway. Inside, ``CUDA_VISIBLE_DEVICES`` names exactly the
assigned GPUs (by UUID when the driver reports one, so CUDA's enumeration order cannot pick another
GPU), and ``CUDA_DEVICE_ORDER=PCI_BUS_ID``. ``devices=()`` binds nothing: no GPU is visible.

Device indices are the executor's (``nvidia-smi`` order = PCI bus order). The mapping index ->
``/dev/nvidiaN`` minor number comes from ``/proc/driver/nvidia/gpus/<bus>/information``
("Device Minor", "GPU UUID"); without that file, minor = index.

AMD (ROCm), used when the NVIDIA driver reports no GPU and the KFD topology lists one
(``/sys/class/kfd/kfd/topology/nodes/N/properties``; nodes with ``simd_count 0`` are CPUs; the
GPUs, in node order, are indices 0, 1, ... as in ROCm's own enumeration): the jail gets
``/dev/kfd``, the render node ``/dev/dri/renderD<drm_render_minor>`` of each assigned GPU only,
the KFD topology read-only (ROCm's runtime enumerates GPUs from it; the jail mounts no other
sysfs) and the ROCm installation ``/opt/rocm*`` read-only when present. ROCm skips a topology node
whose render node it cannot open, so the other GPUs stay out of reach; ``ROCR_VISIBLE_DEVICES``
names the assigned GPUs by UUID (``GPU-<unique_id as 16 hex digits>``, as ``rocminfo`` prints it)
when every one has a unique id, else it is left unset (the jail's GPUs are then exactly the
assigned ones, numbered from 0 inside, so the host's indices would be wrong there). Not yet run on
real AMD hardware.
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
KFD_DIR = "class/kfd/kfd"  # under the sysfs root; a link to devices/virtual/kfd/kfd
KFD_IN_JAIL = "/sys/devices/virtual/kfd/kfd"
ROCM_GLOBS = ("/opt/rocm*",)


@dataclass(frozen=True)
class GpuInfo:
    index: int  # NVIDIA: PCI bus order; AMD: KFD topology node order
    minor: int  # /dev/nvidia<minor>, or /dev/dri/renderD<minor> for AMD
    uuid: str | None
    bus: str
    vendor: str = "nvidia"  # or "amd"


def list_gpus(proc_root: str = "/proc", sys_root: str = "/sys") -> list[GpuInfo]:
    """The machine's GPUs: NVIDIA's when its driver reports any, else AMD's (empty without either)."""
    return nvidia_gpus(proc_root) or amd_gpus(sys_root)


def amd_gpus(sys_root: str = "/sys") -> list[GpuInfo]:
    """GPU nodes of the KFD (ROCm) topology in node order, skipping CPU nodes (``simd_count 0``)
    and nodes without a render node (empty without the amdgpu driver)."""
    nodes = []
    for p in glob.glob(os.path.join(sys_root, KFD_DIR, "topology/nodes/*")):
        if os.path.basename(p).isdigit():
            nodes.append((int(os.path.basename(p)), p))
    out = []
    for _, d in sorted(nodes):
        props = {}
        try:
            with open(os.path.join(d, "properties")) as f:
                for line in f:
                    k, _, v = line.strip().partition(" ")
                    if v.strip().isdigit():
                        props[k] = int(v)
        except OSError:
            continue
        if props.get("simd_count", 0) == 0 or "drm_render_minor" not in props:
            continue
        uid = props.get("unique_id", 0)
        loc = props.get("location_id", 0)  # PCI bus << 8 | device << 3 | function
        bus = f"{props.get('domain', 0):04x}:{loc >> 8:02x}:{(loc >> 3) & 0x1f:02x}.{loc & 7}"
        out.append(GpuInfo(index=len(out), minor=props["drm_render_minor"],
                           uuid=f"GPU-{uid:016x}" if uid else None, bus=bus, vendor="amd"))
    return out


def nvidia_gpus(proc_root: str = "/proc") -> list[GpuInfo]:
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
                 sys_root: str = "/sys", rocm_globs: tuple[str, ...] = ROCM_GLOBS,
                 ) -> tuple[list[str], dict[str, str]]:
    """bwrap arguments and environment for ``devices``. Raises ValueError when an assigned GPU's
    device node is missing (the evaluation would silently run without it)."""
    if not devices:
        return [], {}
    found = list_gpus(proc_root, sys_root)
    if found and found[0].vendor == "amd":
        return _amd_binds(devices, found, dev_root, sys_root, rocm_globs)
    gpus = {g.index: g for g in found}
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


def _amd_binds(devices: tuple[int, ...], found: list[GpuInfo], dev_root: str, sys_root: str,
               rocm_globs: tuple[str, ...]) -> tuple[list[str], dict[str, str]]:
    kfd = os.path.join(dev_root, "kfd")
    if not os.path.exists(kfd):
        raise ValueError(f"AMD GPUs {devices}: device node {kfd} does not exist")
    gpus = {g.index: g for g in found}
    argv = ["--dev-bind", kfd, "/dev/kfd"]
    chosen = []
    for d in devices:
        if d not in gpus:
            raise ValueError(f"GPU {d}: the KFD topology lists {len(gpus)} AMD GPU(s); its device node does not exist")
        node = os.path.join(dev_root, "dri", f"renderD{gpus[d].minor}")
        if not os.path.exists(node):
            raise ValueError(f"GPU {d}: device node {node} does not exist")
        argv += ["--dev-bind", node, f"/dev/dri/renderD{gpus[d].minor}"]
        chosen.append(gpus[d])
    argv += ["--ro-bind", os.path.realpath(os.path.join(sys_root, KFD_DIR)), KFD_IN_JAIL,
             "--symlink", "../../devices/virtual/kfd/kfd", "/sys/class/kfd/kfd"]
    for pat in rocm_globs:
        for p in sorted(glob.glob(pat)):
            if os.path.isdir(p):
                argv += ["--ro-bind", p, p]
    uuids = [g.uuid for g in chosen]
    return argv, ({"ROCR_VISIBLE_DEVICES": ",".join(uuids)} if all(uuids) else {})


def driver_lib_dirs(lib_dirs: tuple[str, ...] = LIB_DIRS) -> set[str]:
    """Directories that hold the NVIDIA driver's user-space libraries."""
    out = set()
    for d in lib_dirs:
        for pat in DRIVER_LIB_GLOBS:
            if glob.glob(os.path.join(d, pat)):
                out.add(os.path.realpath(d))
                break
    return out
