"""Text derived from candidates (completions, messages, statuses) made safe to print."""

from __future__ import annotations

import re

# C0/C1 control characters except tab and newline, DEL, and lone surrogates.
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def safe(s: str) -> str:
    """``s`` with control characters (but tab and newline) and lone surrogates escaped as
    ``\\xNN`` / ``\\uNNNN``, so a candidate cannot move a terminal's cursor or break a log."""
    if not isinstance(s, str):
        s = str(s)
    return _UNSAFE.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                       else f"\\u{ord(m.group()):04x}", s)
