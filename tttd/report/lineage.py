"""The archive as a lineage tree: which state improved from which, the best path highlighted.

Layout: x is the step a state was found in, numbered as everywhere (initial states at 0); y orders the leaves of a depth-first walk
(children sorted by value), an inner state sits at the height of its best child (a child is
found in a later step than its parent, so no two states share a dot). A state whose
parent was evicted from the archive hangs from its nearest ancestor still present.
"""

from __future__ import annotations

import math
from typing import Any

from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

MAX_NODES = 800


def _oriented(v: float | None, maximize: bool) -> float:
    if v is None:
        return -math.inf
    return float(v) if maximize else -float(v)


def tree(states: list[dict[str, Any]], maximize: bool) -> dict[str, Any]:
    """Nodes (id, parent, step, value), the best path and the layout positions."""
    nodes = {e["state"]["id"]: e["state"] for e in states}
    parent: dict[str, str | None] = {}
    for sid, s in nodes.items():
        p = None
        for a in ([s.get("parent_id")] if s.get("parent_id") else []) + list(s.get("ancestors") or []):
            if a in nodes:
                p = a
                break
        parent[sid] = p
    best = max(nodes, key=lambda i: (_oriented(nodes[i].get("value"), maximize)), default=None)
    path: list[str] = []
    cur = best
    while cur is not None:
        path.append(cur)
        cur = parent[cur]
    if len(nodes) > MAX_NODES:  # keep the best path, the best states and their ancestors
        ranked = sorted(nodes, key=lambda i: _oriented(nodes[i].get("value"), maximize), reverse=True)
        keep = set(path)
        for sid in ranked:
            if len(keep) >= MAX_NODES:
                break
            cur = sid
            while cur is not None and cur not in keep:
                keep.add(cur)
                cur = parent[cur]
        nodes = {i: nodes[i] for i in nodes if i in keep}
        parent = {i: parent[i] for i in nodes}
    children: dict[str | None, list[str]] = {}
    for sid in nodes:
        children.setdefault(parent[sid], []).append(sid)
    for lst in children.values():
        lst.sort(key=lambda i: _oriented(nodes[i].get("value"), maximize), reverse=True)
    pos: dict[str, tuple[float, float]] = {}
    counter = [0]

    def place(sid: str) -> float:
        kids = children.get(sid, [])
        if kids:  # at its best child's height: a child is found after its parent, so no two
            ys = [place(k) for k in kids]  # states share a position (one dot per state)
            y = ys[0]
        else:
            y = float(counter[0])
            counter[0] += 1
        pos[sid] = (float(nodes[sid].get("step", -1)) + 1, y)  # steps as shown: from 1, roots 0
        return y

    import sys

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 4 * len(nodes) + 100))
    for root in children.get(None, []):
        place(root)
    return {"nodes": nodes, "parent": parent, "pos": pos, "best_path": path, "best": best}


def lineage_figure(states: list[dict[str, Any]], maximize: bool) -> Figure:
    t = tree(states, maximize)
    nodes, parent, pos, path = t["nodes"], t["parent"], t["pos"], set(t["best_path"])
    height = min(12.0, max(3.5, 0.12 * (max((y for _, y in pos.values()), default=0) + 1)))
    fig = Figure(figsize=(10, height), layout="constrained")
    ax = fig.subplots()
    if not nodes:
        ax.text(0.5, 0.5, "empty archive", ha="center", va="center", transform=ax.transAxes)
        return fig
    edges = [(pos[parent[i]], pos[i]) for i in nodes if parent[i] is not None and parent[i] in pos]
    best_edges = [(pos[parent[i]], pos[i]) for i in path if parent.get(i) is not None and parent[i] in pos]
    ax.add_collection(LineCollection(edges, colors="0.7", linewidths=0.8, zorder=1))
    ax.add_collection(LineCollection(best_edges, colors="red", linewidths=2.2, zorder=2))
    ids = list(pos)
    values = [nodes[i].get("value") for i in ids]
    xs = [pos[i][0] for i in ids]
    ys = [pos[i][1] for i in ids]
    known = [v for v in values if v is not None]
    colours = [float(v) if v is not None else math.nan for v in values]
    rows = max(ys) - min(ys) + 1 if ys else 1
    size = max(4.0, min(22.0, (0.8 * 72 * height / rows) ** 2))  # one dot per state, not overlapping
    sc = ax.scatter(xs, ys, c=colours, cmap="viridis" if maximize else "viridis_r", s=size, zorder=3,
                    plotnonfinite=True,
                    edgecolors=["red" if i in path else "none" for i in ids], linewidths=1.2)
    if known:
        cb = fig.colorbar(sc, ax=ax, pad=0.01)
        cb.set_label("value (brighter is better)")
    best = t["best"]
    best_text = ""
    if best is not None and best in pos and nodes[best].get("value") is not None:
        # Marked by a star and named in the title, not by a label beside the dot, which covered
        # the neighbouring points (issue 36).
        ax.plot([pos[best][0]], [pos[best][1]], marker="*", markersize=max(9.0, 2 * math.sqrt(size)),
                color="red", markeredgecolor="black", markeredgewidth=0.6, linestyle="none", zorder=4)
        best_text = f"; star: the best, {nodes[best]['value']:.6g} (step {pos[best][0]:.0f})"
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("step found (initial states at 0)")
    ax.set_yticks([])
    roots = sum(1 for i in ids if parent.get(i) is None)
    ax.set_title(f"Archive lineage: {len(ids)} states, one dot each ({roots} without a parent in the archive)\n"
                 f"red: the path to the best state{best_text}", fontsize=10)
    ax.autoscale_view()
    # Whole steps with half a step of margin: a run whose states are all at step 0 drew an axis
    # from -0.045 to 0.045 (issue 36).
    ax.set_xlim(min(xs) - 0.5, max(max(xs), min(xs) + 1) + 0.5)
    lo, hi = min(ys), max(ys)
    ax.set_ylim(lo - 0.5 - 0.02 * (hi - lo), hi + 0.5 + 0.02 * (hi - lo))
    return fig
