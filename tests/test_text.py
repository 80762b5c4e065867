"""Safe text (issue 9, item 8): nothing a candidate writes reaches the terminal raw."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tttd.text import safe, safe_lines

HOSTILE = "ok\x1b]0;pwned\x07\x1b[2J\x1b[1A\r\x08\x9b31m\u202eevil\u2066\ufeff\x00\x7f"


def test_safe_escapes_controls_bidi_and_surrogates():
    out = safe(HOSTILE + "\udc80", multiline=False)
    assert out.isprintable() and "\x1b" not in out and "\u202e" not in out
    assert out.startswith("ok\\x1b]0;pwned\\x07\\x1b[2J") and out.endswith("\\udc80")
    out.encode("utf-8")  # a lone surrogate would raise here
    assert safe("a\tb\nc", multiline=False) == "a\\tb\\nc"
    assert safe("a\tb\nc") == "a\tb\nc"
    assert safe("plain text, é, 漢字") == "plain text, é, 漢字"
    assert safe("x" * 50, limit=10) == "x" * 10 + "..."
    assert safe_lines("a\x1b\nb", indent="  ") == ["  a\\x1b", "  b"]


PROGRAM = r'''
import sys
def run(**kwargs):
    sys.stdout.write("tail \x1b]0;pwned\x07\x1b[2J\x1b[31mRED\u202eevil\n")
    sys.stdout.write("surrogate \udc80 end\n")
    return {"\x1b[2Jkey": [1.0], "\udcff": 2}
'''


@pytest.mark.parametrize("as_json", [False, True])
def test_verify_never_prints_raw_control_bytes(tmp_path, as_json):
    prog = tmp_path / "prog.py"
    prog.write_text(PROGRAM.replace("def run", "def " + _entry("erdos")))
    cmd = [sys.executable, "-m", "tttd.cli", "verify", "erdos", str(prog)] + (["--json"] if as_json else [])
    done = subprocess.run(cmd, capture_output=True, timeout=300)
    assert done.returncode == 1, done.stderr[-2000:]
    assert b"Traceback" not in done.stderr
    for stream in (done.stdout, done.stderr):
        assert not any(b < 0x20 and b not in (0x0A,) or b == 0x7F for b in stream), stream[-500:]
        assert b"\xe2\x80\xae" not in stream  # U+202E as UTF-8
        stream.decode("utf-8")  # well-formed: no surrogates leaked
    if not as_json:
        assert b"\\x1b" in done.stdout  # shown, escaped


def _entry(task_name: str) -> str:
    from tttd.registry import get_task

    import numpy as np

    state = get_task(task_name).initial_states(1, np.random.default_rng(0))[0]
    cand = get_task(task_name).parse("```python\ndef f():\n    pass\n```", state)
    return cand.program.entry
