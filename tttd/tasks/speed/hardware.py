"""Shared bits of the GPU kernel tasks: the hardware their prompts name, and their boolean options."""

from __future__ import annotations


def gpu_and_triton(default_gpu: str, default_triton: str) -> tuple[str, str]:
    """(GPU name, Triton version): the first GPU ``nvidia-smi`` (or, on AMD, ``rocm-smi``) lists and
    the installed Triton, or the given defaults (the paper's hardware) when either is unknown.
    Never imports torch."""
    gpu, triton = default_gpu, default_triton
    try:
        from importlib.metadata import version

        triton = version("triton")
    except Exception:
        pass
    return gpu_name() or gpu, triton


def gpu_name(run=None) -> str | None:
    """The first GPU's name from ``nvidia-smi``, else from ``rocm-smi --showproductname`` (its
    "Card Series" line, e.g. "AMD Instinct MI300X"); None when neither answers."""
    import subprocess

    run = run or subprocess.run
    try:
        out = run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                  capture_output=True, text=True, timeout=10).stdout.strip().splitlines()
        if out and out[0].strip():
            return out[0].strip()
    except Exception:
        pass
    try:
        out = run(["rocm-smi", "--showproductname"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            key = "card series:"
            at = line.lower().find(key)
            if at >= 0 and line[at + len(key):].strip():
                return line[at + len(key):].strip()
    except Exception:
        pass
    return None


def bool_option(name: str, value: object) -> bool:
    """A task option that must be a boolean (``--task-option NAME=true``; the string "False" is not one)."""
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return value
