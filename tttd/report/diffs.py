"""The report's per-state file diffs for multi-file programs (issue 37): for each archived state,
the unified diff of the files it changed against its parent (escaped: the text is the model's)."""

from __future__ import annotations

import difflib
from typing import Any

DIFF_STATES = 40  # states shown (the best by value first would need the direction: newest first)
DIFF_CHARS = 6000


def _files(entry: dict[str, Any]) -> dict[str, str] | None:
    files = ((entry.get("state") or {}).get("artifact") or {}).get("files")
    return files if isinstance(files, dict) else None


def state_diffs(states: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per archived child state (newest first, at most :data:`DIFF_STATES`): id, step, value, a
    one-line summary and the diff against its parent. Empty when no state has several files."""
    from tttd.text import safe
    from tttd.wording import shown_step

    by_id = {(e.get("state") or {}).get("id"): e for e in states}
    out = []
    for entry in reversed(states):
        st = entry.get("state") or {}
        files, parent = _files(entry), by_id.get(st.get("parent_id"))
        if files is None or parent is None or _files(parent) is None:
            continue
        before = _files(parent) or {}
        changed = [p for p in sorted(set(files) | set(before)) if files.get(p) != before.get(p)]
        text = "".join(
            "".join(difflib.unified_diff((before.get(p) or "").splitlines(True), (files.get(p) or "").splitlines(True),
                                         f"a/{p}", f"b/{p}"))
            for p in changed)
        cut = len(text) > DIFF_CHARS
        value = st.get("value")
        out.append({"id": safe(str(st.get("id"))), "step": shown_step(st.get("step")),
                    "value": "-" if value is None else f"{value:.6g}",
                    "summary": safe(f"{len(changed)} file{'s' if len(changed) != 1 else ''} changed: "
                                    + (", ".join(changed[:6]) or "none") + (" ..." if len(changed) > 6 else "")),
                    "diff": safe(text[:DIFF_CHARS] + ("\n... (diff cut)" if cut else ""))})
        if len(out) >= DIFF_STATES:
            break
    return out
