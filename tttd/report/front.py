"""The report's Pareto front (several objectives, issue 37): a 2-D scatter of the archive's states
with the front highlighted when the task has two metrics, and a table of the front's states (the
only view beyond two metrics: every metric of every front state, sortable by eye)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FRONT_ROWS = 60


def load_front(archive_path: Path) -> dict[str, Any] | None:
    """Directions, every state's metrics and the front's state ids; None for one objective."""
    from tttd.archive import Archive

    if not archive_path.is_file():
        return None
    try:
        data = json.loads(archive_path.read_text())
        directions = (data.get("config") or {}).get("directions")
        if not directions:
            return None
        arch = Archive.from_dict(data)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    points = [(s.id, s.step, s.value, dict(s.metrics.get("objectives") or {})) for s in arch.states]
    return {"directions": dict(directions), "points": points, "front": [s.id for s in arch.front()]}


def front_figure(front: dict[str, Any]):
    """Scatter of the first two metrics: every state, the front highlighted and joined."""
    from tttd.report.plots import _fig

    names = list(front["directions"])[:2]
    fig, axes = _fig(1, 1, w=6.5, h=4.6)
    ax = axes[0][0]
    on = set(front["front"])
    xs, ys, fx, fy = [], [], [], []
    for sid, _, _, obj in front["points"]:
        if all(isinstance(obj.get(n), (int, float)) for n in names):
            (fx if sid in on else xs).append(float(obj[names[0]]))
            (fy if sid in on else ys).append(float(obj[names[1]]))
    ax.scatter(xs, ys, s=14, c="#bbbbbb", label="archived states")
    order = sorted(range(len(fx)), key=lambda i: fx[i])
    ax.plot([fx[i] for i in order], [fy[i] for i in order], "-o", c="#d62728", ms=6, lw=1.2,
            label=f"Pareto front ({len(fx)})")
    d = front["directions"]
    ax.set_xlabel(f"{names[0]} ({'higher' if d[names[0]] == 'maximize' else 'lower'} is better)")
    ax.set_ylabel(f"{names[1]} ({'higher' if d[names[1]] == 'maximize' else 'lower'} is better)")
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def front_section(archive_path: Path, images: Any, slug: str) -> dict[str, Any] | None:
    """What the template shows: the scatter (two metrics) or None, and the front's table."""
    from tttd.text import safe
    from tttd.wording import shown_step

    front = load_front(archive_path)
    if front is None:
        return None
    names = list(front["directions"])
    on = set(front["front"])
    rows = []
    for sid, step, value, obj in front["points"]:
        if sid in on and len(rows) < FRONT_ROWS:
            rows.append([safe(sid), str(shown_step(step)), "-" if value is None else f"{value:.6g}"]
                        + ["-" if not isinstance(obj.get(n), (int, float)) else f"{float(obj[n]):.6g}" for n in names])
    image = images.add(front_figure(front), f"{slug}-front") if len(names) == 2 else None
    header = ["state", "step", "value"] + [f"{n} ({'max' if front['directions'][n] == 'maximize' else 'min'})"
                                          for n in names]
    return {"image": image, "header": header, "rows": rows, "size": len(on), "metrics": len(names)}
