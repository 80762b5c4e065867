"""Every benchmark command the README and docs/ give runs as written (issue 23, item 9).

The commands are read from the documents themselves (so a new or changed command is covered
without editing this file) and run with ``--smoke`` appended: each benchmark's tiny sizes, which
check that the command runs, not what it measures. Commands that need a GPU are skipped here (and
run by ``benchmarks/gpu_checks.sh`` on a GPU machine); the shell scripts (``first_command.sh``: a
fresh install from PyPI; ``gpu_checks.sh``: GPU) are not run.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMAND = re.compile(r"(?:PYTHONPATH=\.\s+)?python\s+benchmarks/\w+\.py(?:[^`#\n\\]|\\\n)*")


def _variants(cmd: str) -> list[str]:
    """``a|b`` alternatives and ``[optional]`` parts expanded into plain commands."""
    cmd = re.sub(r"\s+", " ", cmd.replace("\\\n", " ")).strip()
    optional = re.findall(r"\[([^\]]*)\]", cmd)
    base = re.sub(r"\s*\[[^\]]*\]", "", cmd)
    out = []
    for keep in itertools.product([False, True], repeat=len(optional)):
        c = base + "".join(" " + o for o, k in zip(optional, keep) if k)
        words = [w.split("|") for w in c.split(" ")]
        out += [" ".join(p) for p in itertools.product(*words)]
    return out


def documented_commands() -> list[str]:
    found: list[str] = []
    for doc in DOCS:
        for m in COMMAND.finditer(doc.read_text()):
            for c in _variants(m.group(0)):
                if c not in found:
                    found.append(c)
    return found


def _skip_reason(cmd: str) -> str | None:
    if "cuda" in cmd or "gpu" in cmd.lower():
        return "needs a GPU (run by benchmarks/gpu_checks.sh on a GPU machine)"
    return None


def test_the_documents_give_benchmark_commands():
    cmds = documented_commands()
    scripts = {re.search(r"benchmarks/(\w+)\.py", c).group(1) for c in cmds}
    assert {"archive_bench", "sandbox_bench", "policy_bench", "ahc_bench", "rollout_memory_bench",
            "speed_bench"} <= scripts, scripts
    assert any("--engine vllm" in c for c in cmds)


def _python_for(cmd: str) -> str | None:
    if "--engine vllm" not in cmd:
        return sys.executable
    py = ROOT / ".venv-vllm" / "bin" / "python"
    if py.exists() and subprocess.run([str(py), "-c", "import vllm"], capture_output=True).returncode == 0:
        return str(py)
    try:
        import vllm  # noqa: F401
    except ImportError:
        return None
    return sys.executable


@pytest.mark.parametrize("cmd", documented_commands())
def test_documented_benchmark_command_runs(cmd, tmp_path):
    reason = _skip_reason(cmd)
    if reason:
        pytest.skip(reason)
    python = _python_for(cmd)
    if python is None:
        pytest.skip("vLLM is not installed here (pip install 'tttd[vllm]')")
    if "--engine vllm" in cmd:
        pytest.importorskip("torch")
    words = shlex.split(cmd)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    words = [w for w in words if not w.startswith("PYTHONPATH=")]
    assert words[0] == "python"
    done = subprocess.run([python, *words[1:], "--smoke"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=1500)
    assert done.returncode == 0, f"{cmd} --smoke\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    assert done.stdout.strip(), "a benchmark prints its figures"
