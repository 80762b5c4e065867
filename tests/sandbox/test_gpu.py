"""GPU device binds, built against a fake /dev and /proc tree (no GPU needed)."""

from __future__ import annotations

import pytest

from tttd.sandbox import gpu


@pytest.fixture()
def fake(tmp_path):
    dev, proc = tmp_path / "dev", tmp_path / "proc"
    dev.mkdir()
    for n in ("nvidia0", "nvidia1", "nvidia2", "nvidia3", "nvidiactl", "nvidia-uvm", "nvidia-uvm-tools"):
        (dev / n).write_text("")
    # PCI order differs from minor numbers on purpose
    for bus, minor, uuid in (("0000:07:00.0", 2, "GPU-aaa"), ("0000:0a:00.0", 0, "GPU-bbb"),
                             ("0000:41:00.0", 3, "GPU-ccc"), ("0000:c1:00.0", 1, "GPU-ddd")):
        d = proc / "driver/nvidia/gpus" / bus
        d.mkdir(parents=True)
        (d / "information").write_text(f"Model: H200\nDevice Minor: {minor}\nGPU UUID: {uuid}\nBus Location: {bus}\n")
    libs = tmp_path / "nvlib"
    libs.mkdir()
    (libs / "libcuda.so.1").write_text("")
    return dev, proc, libs


def test_only_assigned_devices_are_bound(fake):
    dev, proc, libs = fake
    argv, env = gpu.device_binds((1, 3), dev_root=str(dev), proc_root=str(proc), lib_dirs=(str(libs),))
    binds = [argv[i + 2] for i, a in enumerate(argv) if a == "--dev-bind"]
    assert binds == ["/dev/nvidia0", "/dev/nvidia1", "/dev/nvidiactl", "/dev/nvidia-uvm", "/dev/nvidia-uvm-tools"]
    assert "/dev/nvidia2" not in binds and "/dev/nvidia3" not in binds
    assert env == {"CUDA_VISIBLE_DEVICES": "GPU-bbb,GPU-ddd", "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
    assert ["--ro-bind", str(libs), str(libs)] == argv[-3:]  # driver libs outside /usr


def test_no_devices_binds_nothing(fake):
    dev, proc, libs = fake
    assert gpu.device_binds((), dev_root=str(dev), proc_root=str(proc)) == ([], {})


def test_missing_node_and_bad_indices_are_errors(fake):
    dev, proc, libs = fake
    with pytest.raises(ValueError, match="does not exist"):
        gpu.device_binds((7,), dev_root=str(dev), proc_root=str(proc))
    for bad in ((-1,), (0, 0), ("0",), 3):
        with pytest.raises(ValueError):
            gpu.check_devices(bad)
    assert gpu.check_devices([0, 2]) == (0, 2)


def test_without_driver_info_minor_is_the_index(tmp_path):
    dev = tmp_path / "dev"
    dev.mkdir()
    (dev / "nvidia5").write_text("")
    argv, env = gpu.device_binds((5,), dev_root=str(dev), proc_root=str(tmp_path / "noproc"), lib_dirs=())
    assert argv == ["--dev-bind", str(dev / "nvidia5"), "/dev/nvidia5"] and env["CUDA_VISIBLE_DEVICES"] == "5"


def test_runner_gpu_limits_and_missing_device():
    import os

    from tttd.sandbox import runner
    from tttd.types import Limits

    assert runner._rlimits(Limits(), 0)["RLIMIT_AS"][0] == Limits().memory_mb * 2**20
    assert runner._rlimits(Limits(), 0, gpu=True)["RLIMIT_AS"] == [-1, -1]  # CUDA needs the address space
    if not os.path.exists("/dev/nvidia0"):
        with pytest.raises(ValueError, match="device node"):
            runner.run_program("def main():\n    return 1\n", devices=(0,))


# --- AMD (ROCm): fake /dev and /sys trees ----------------------------------------------------------

UID_A, UID_C = 0xABABAEEFFECDDC50, 0x3A90A60DBAF2E93F


@pytest.fixture()
def amd(tmp_path):
    dev, sys_root = tmp_path / "dev", tmp_path / "sys"
    (dev / "dri").mkdir(parents=True)
    for n in ("kfd", "dri/renderD128", "dri/renderD129", "dri/renderD130", "dri/card0"):
        (dev / n).write_text("")
    nodes = sys_root / "class/kfd/kfd/topology/nodes"
    # node 0 is the CPU; node 10 sorts after node 2 (numeric order, as ROCm enumerates)
    for node, simds, minor, uid, loc in (("0", 0, 0, 0, 0), ("1", 1216, 129, UID_A, 0x0C00),
                                         ("2", 1216, 128, 0, 0x2200), ("10", 1216, 130, UID_C, 0x8808)):
        (nodes / node).mkdir(parents=True)
        (nodes / node / "properties").write_text(
            f"cpu_cores_count 0\nsimd_count {simds}\ndrm_render_minor {minor}\nlocation_id {loc}\n"
            f"domain 0\nunique_id {uid}\n")
    rocm = tmp_path / "opt/rocm-6.2.0"
    rocm.mkdir(parents=True)
    return dev, sys_root, (str(tmp_path / "opt/rocm*"),)


def test_amd_gpus_come_from_the_kfd_topology(amd):
    dev, sys_root, _ = amd
    gpus = gpu.amd_gpus(str(sys_root))
    assert [(g.index, g.minor, g.uuid, g.vendor) for g in gpus] == [
        (0, 129, "GPU-ababaeeffecddc50", "amd"), (1, 128, None, "amd"), (2, 130, "GPU-3a90a60dbaf2e93f", "amd")]
    assert [g.bus for g in gpus] == ["0000:0c:00.0", "0000:22:00.0", "0000:88:01.0"]
    assert gpu.list_gpus(proc_root=str(sys_root / "noproc"), sys_root=str(sys_root)) == gpus
    assert gpu.amd_gpus(str(sys_root / "nothing")) == []


def test_amd_only_assigned_render_nodes_are_bound(amd):
    dev, sys_root, rocm = amd
    argv, env = gpu.device_binds((0, 2), dev_root=str(dev), proc_root=str(sys_root / "noproc"),
                                 sys_root=str(sys_root), rocm_globs=rocm)
    binds = [argv[i + 2] for i, a in enumerate(argv) if a == "--dev-bind"]
    assert binds == ["/dev/kfd", "/dev/dri/renderD129", "/dev/dri/renderD130"]
    assert [argv[i + 1] for i, a in enumerate(argv) if a == "--dev-bind"][1] == str(dev / "dri/renderD129")
    ro = [(argv[i + 1], argv[i + 2]) for i, a in enumerate(argv) if a == "--ro-bind"]
    assert ro == [(str(sys_root / "class/kfd/kfd"), gpu.KFD_IN_JAIL),
                  (rocm[0][:-1] + "-6.2.0", rocm[0][:-1] + "-6.2.0")]
    assert ["--symlink", "../../devices/virtual/kfd/kfd", "/sys/class/kfd/kfd"] == argv[argv.index("--symlink"):][:3]
    assert env == {"ROCR_VISIBLE_DEVICES": "GPU-ababaeeffecddc50,GPU-3a90a60dbaf2e93f"}
    assert not any("nvidia" in a for a in argv)


def test_amd_without_unique_id_leaves_the_selection_to_the_binds(amd):
    dev, sys_root, _ = amd
    argv, env = gpu.device_binds((1,), dev_root=str(dev), proc_root=str(sys_root / "noproc"),
                                 sys_root=str(sys_root), rocm_globs=())
    assert [argv[i + 2] for i, a in enumerate(argv) if a == "--dev-bind"] == ["/dev/kfd", "/dev/dri/renderD128"]
    assert env == {}  # host indices would be wrong inside, where the jail's GPUs count from 0


def test_amd_missing_nodes_are_errors(amd):
    dev, sys_root, _ = amd
    kw = dict(dev_root=str(dev), proc_root=str(sys_root / "noproc"), sys_root=str(sys_root), rocm_globs=())
    with pytest.raises(ValueError, match="does not exist"):
        gpu.device_binds((3,), **kw)  # the topology lists three GPUs
    (dev / "dri/renderD130").unlink()
    with pytest.raises(ValueError, match="renderD130 does not exist"):
        gpu.device_binds((2,), **kw)
    (dev / "kfd").unlink()
    with pytest.raises(ValueError, match="kfd does not exist"):
        gpu.device_binds((0,), **kw)


def test_nvidia_is_unchanged_when_amd_gpus_are_present_too(fake, amd):
    dev, proc, libs = fake
    _, sys_root, rocm = amd
    alone = gpu.device_binds((1, 3), dev_root=str(dev), proc_root=str(proc), lib_dirs=(str(libs),),
                             sys_root=str(sys_root / "nothing"))
    both = gpu.device_binds((1, 3), dev_root=str(dev), proc_root=str(proc), lib_dirs=(str(libs),),
                            sys_root=str(sys_root), rocm_globs=rocm)
    assert both == alone and both[1]["CUDA_VISIBLE_DEVICES"] == "GPU-bbb,GPU-ddd"
    assert not any("kfd" in a or "rocm" in a for a in both[0])
    assert [g.vendor for g in gpu.list_gpus(str(proc), str(sys_root))] == ["nvidia"] * 4


def test_amd_binds_give_bubblewrap_the_expected_view(amd):
    """The AMD arguments run under real bubblewrap (fake nodes are plain files): the assigned render
    node, /dev/kfd and the topology are there, the other render nodes are not."""
    import shutil
    import subprocess

    dev, sys_root, rocm = amd
    argv, _ = gpu.device_binds((0,), dev_root=str(dev), proc_root=str(sys_root / "noproc"),
                               sys_root=str(sys_root), rocm_globs=rocm)
    base = ["bwrap", "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
            "--symlink", "usr/lib64", "/lib64", "--proc", "/proc", "--dev", "/dev"]
    if not shutil.which("bwrap") or subprocess.run(base + ["--", "/bin/true"], capture_output=True).returncode:
        pytest.skip("bubblewrap cannot run here")
    rocm_dir = rocm[0][:-1] + "-6.2.0"  # bound at its own path
    out = subprocess.run(base + argv + ["--", "/bin/sh", "-c",
                         f"ls /dev/dri; test -e /dev/kfd && echo kfd; test -d {rocm_dir} && echo rocm;"
                         "cat /sys/class/kfd/kfd/topology/nodes/1/properties"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.split()
    assert lines[:3] == ["renderD129", "kfd", "rocm"]
    assert "drm_render_minor" in out.stdout and "renderD128" not in out.stdout
