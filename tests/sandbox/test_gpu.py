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
