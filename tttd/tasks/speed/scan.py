"""Static flags: a cheap scan of a speed candidate's source for the known gaming patterns.

Evidence, not the defence: the two-process harness must hold without them (honest kernels use
streams, threads and ctypes too). Each evaluation records the names of the patterns found in its
message and metrics (``flags``), so ``tttd show``, the report, ``tttd verify`` and ``tttd audit``
show them; a task may name flags that make a candidate invalid (``SpeedSpec.invalid_flags``,
default none).
"""

from __future__ import annotations

import re

#: flag name -> (pattern, what it means)
RULES: dict[str, tuple[str, str]] = {
    "sys_modules": (r"\bsys\.modules\b", "reaches into loaded modules"),
    "frames": (r"\bsys\._getframe\b|\binspect\.(currentframe|stack|getouterframes)\b|\.f_back\b|\.f_locals\b|"
               r"\bgc\.get_(referrers|referents|objects)\b", "inspects frames or the heap"),
    "ctypes": (r"\bimport\s+ctypes\b|\bfrom\s+ctypes\b|\bcffi\b", "calls C directly"),
    "threads": (r"\bthreading\b|\bmultiprocessing\b|\bos\.fork\b|\bsubprocess\b|\bconcurrent\.futures\b|"
                r"\b_thread\b", "starts threads or processes"),
    "streams": (r"\bcuda\.Stream\b|\bcuda\.stream\s*\(|\bExternalStream\b", "creates CUDA streams"),
    "tensor_subclass": (r"class\s+\w+\s*\(\s*(torch\.)?Tensor\s*\)|__torch_function__|__torch_dispatch__|"
                        r"\bas_subclass\b|np\.ndarray\s*\)", "subclasses tensors or arrays"),
    "monkeypatch": (r"(?m)^\s*(time|torch|numpy|np|os|builtins|sys|F|math)(\.\w+)+\s*=(?!=)|\bsetattr\s*\(",
                    "rebinds library functions"),
    "harness": (r"\bsys\.argv\b|/proc/|\bharness\b|\btttd\b|\bos\.getppid\b", "looks at the harness or its process"),
}


def scan(source: str) -> list[str]:
    """The flags whose pattern occurs in ``source`` (sorted)."""
    return sorted(name for name, (pat, _) in RULES.items() if re.search(pat, source or ""))


def check_flags(names) -> tuple[str, ...]:
    """Validate flag names given as an option (a comma-separated string or a sequence)."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    names = tuple(names or ())
    bad = [n for n in names if n not in RULES]
    if bad:
        raise ValueError(f"unknown static flag(s) {bad}; known: {', '.join(RULES)}")
    return names
