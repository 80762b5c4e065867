"""The CI skip check (tests/conftest.py + tests/skip_allowlist.py): with CI=true an unlisted skip
fails the session, an allowed one does not; the allow-list is printed with its reasons."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.skip_allowlist import ALLOWED, allowed_reason

REPO = Path(__file__).resolve().parents[1]

BODY = '''
import pytest

def test_ok():
    pass

@pytest.mark.skip(reason="needs TINKER_API_KEY")
def test_live():
    pass
'''
UNLISTED = '''
@pytest.mark.skip(reason="g++ is not installed")
def test_unlisted():
    pass
'''


def _session(tmp_path, body, ci):
    (tmp_path / "test_probe.py").write_text(body)
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci:
        env["CI"] = "true"
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-p", "no:cacheprovider",
                           "--rootdir", str(tmp_path), str(tmp_path / "test_probe.py")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("ci", [True, False])
def test_an_unlisted_skip_fails_ci_only(tmp_path, ci):
    done = _session(tmp_path, BODY + UNLISTED, ci)
    assert done.returncode == (1 if ci else 0), done.stdout[-2000:]
    assert "NOT ALLOWED: test_probe.py::test_unlisted: g++ is not installed" in done.stdout
    assert "allowed: test_probe.py::test_live: needs TINKER_API_KEY" in done.stdout


def test_allowed_skips_pass_ci_and_the_list_is_printed(tmp_path):
    done = _session(tmp_path, BODY, ci=True)
    assert done.returncode == 0, done.stdout[-2000:]
    assert "skips seen: 1 allowed, 0 not allowed" in done.stdout
    for _, why in ALLOWED:
        assert why in done.stdout


def test_allow_list_matches_only_what_it_names():
    assert allowed_reason("needs TINKER_API_KEY") and allowed_reason("needs a CUDA GPU")
    for reason in ("needs g++", "no headless Chromium (Debian package 'chromium') on this machine",
                   "no SkyRL server environment (.venv-skyrl, made by .ci/run; or TTTD_SKYRL_PYTHON)",
                   "vllm is not importable here and no vLLM environment exists",
                   "the celltypist sample is not available offline here: x", "the CPU path is slow"):
        assert allowed_reason(reason) is None, reason
