"""How the report's tables print numbers and messages (issue 36).

- :func:`same_decimals`: a column of values with one number of decimals (``0.4163`` and
  ``0.416321`` in one table read as different precisions, not as different values);
- :func:`group_messages`: failure messages that differ only in their numbers ("need at least 8
  digits, got 3", "... got 5") are one row, the numbers that vary shown as ``N``.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Sequence

#: significant digits of the largest value in a column
DIGITS = 6
NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def same_decimals(values: Sequence[float | None], digits: int = DIGITS) -> list[str]:
    """Each value with the decimals that give the column's largest value ``digits`` significant
    digits (at most 12); None is ``-``. Very large or very small columns use one exponent form."""
    finite = [abs(float(v)) for v in values if v is not None and math.isfinite(float(v))]
    if not finite:
        return ["-" if v is None else str(v) for v in values]
    top = max(finite)
    exp = math.floor(math.log10(top)) if top > 0 else 0
    if exp >= 9 or exp <= -5:
        return ["-" if v is None else f"{float(v):.{digits - 1}e}" for v in values]
    decimals = max(0, min(12, digits - 1 - exp))
    return ["-" if v is None else f"{float(v):.{decimals}f}" for v in values]


def group_messages(messages: Counter, top: int = 12) -> list[tuple[str, int, str]]:
    """(status, count, message) rows, most common first: messages of one status that differ only
    in numbers are one row; a number that differs between them is shown as ``N``."""
    groups: dict[tuple[str, str], dict] = {}
    for (status, message), count in messages.items():
        key = (status, NUMBER.sub("N", message))
        nums = NUMBER.findall(message)
        g = groups.setdefault(key, {"count": 0, "message": message, "nums": nums, "vary": set()})
        g["count"] += count
        g["vary"] |= {i for i, (a, b) in enumerate(zip(g["nums"], nums)) if a != b}
    rows = []
    for (status, _), g in groups.items():
        i = iter(range(len(g["nums"])))
        text = NUMBER.sub(lambda m: "N" if next(i) in g["vary"] else m.group(0), g["message"])
        rows.append((status, g["count"], text or "(no message)"))
    rows.sort(key=lambda r: (-r[1], r[0], r[2]))
    return rows[:top]
