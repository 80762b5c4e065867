"""Archive.child_filter: a child it lets the caller drop is never one that update + prune keep."""

from __future__ import annotations

import random

from tttd.archive import Archive
from tttd.types import State


def test_dropped_children_never_survive():
    rng = random.Random(0)
    for trial in range(200):
        maximize = rng.random() < 0.5
        a = Archive(maximize=maximize, topk_children=rng.choice([1, 2, 3]))
        a.add_roots([State(id="r", value=None), State(id="s", value=0.5, key="root-key")])
        for step in range(3):
            n = rng.randint(1, 12)
            children, dropped = [], set()
            f = a.child_filter()
            for i in range(n):
                if rng.random() < 0.2:
                    children.append(None)
                    continue
                v = float(rng.choice([0.1, 0.2, 0.3, rng.random()]))
                key = rng.choice(["k1", "k2", "root-key", None, f"u{trial}-{step}-{i}"])
                children.append(State(id="", value=v, key=key, artifact={"i": i}))
                dropped.update(f.offer(i, v, key))
            a.update("r", children, step)
            ids = list(a.last_added)
            a.prune_children("r")
            a.flush()
            alive = {s.id for s in a}
            for i, cid in enumerate(ids):
                if cid is not None and cid in alive:
                    assert i not in dropped, (trial, step, i)
