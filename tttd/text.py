"""Safe text: everything derived from a candidate is escaped before it reaches a terminal.

A candidate controls its output tail, its returned data (dict keys, strings) and therefore the
messages built from them. Printed raw, those could carry terminal control sequences (clear the
screen, rewrite the window title, move the cursor to overwrite a verdict, OSC 52 clipboard
writes), bidirectional-override characters that make text read differently than it is, or lone
surrogates that crash ``print`` with ``UnicodeEncodeError``. :func:`safe` maps each such code
point to a visible escape (``\\x1b``, ``\\u202e``, ``\\udc80``), so what is printed is exactly
what the candidate produced, made visible, and never interpreted by the terminal.
"""

from __future__ import annotations

import re

__all__ = ["safe", "safe_lines"]

# C0 controls (tab and newline handled by the caller's choice), DEL, C1 controls, the Unicode
# bidirectional controls and zero-width/format characters that change how text reads, the line
# and paragraph separators, and every surrogate (a str only holds lone ones).
_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff"
    "\ufff9-\ufffb\ud800-\udfff]"
)
_UNSAFE_ONE_LINE = re.compile(_UNSAFE.pattern[:1] + "\t\n" + _UNSAFE.pattern[1:])


def _escape(m: re.Match[str]) -> str:
    cp = ord(m.group(0))
    if cp == 0x0A:
        return "\\n"
    if cp == 0x09:
        return "\\t"
    return f"\\x{cp:02x}" if cp < 0x100 else f"\\u{cp:04x}"


def safe(text: object, *, multiline: bool = True, limit: int | None = None) -> str:
    """``text`` (any object, via ``str``) with every control, bidi and surrogate code point
    escaped. Newlines and tabs are kept unless ``multiline=False`` (one-line contexts such as an
    error line); ``limit`` caps the length (applied before escaping, so the result may be a few
    times longer)."""
    s = text if isinstance(text, str) else str(text)
    if limit is not None and len(s) > limit:
        s = s[:limit] + "..."
    return (_UNSAFE if multiline else _UNSAFE_ONE_LINE).sub(_escape, s)


def safe_lines(text: object, indent: str = "") -> list[str]:
    """A multi-line text as escaped lines (for output tails)."""
    return [indent + safe(line, multiline=False) for line in str(text).splitlines()]
