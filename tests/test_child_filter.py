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


def test_the_filter_drops_duplicates_and_all_but_the_top_k():
    """The other half of the contract: the filter does drop what cannot be kept (else the memory
    bound is silently off). topk_children=2, lower is better: after six distinct children only the
    two best remain held; a key already in the archive or offered before is dropped at once."""
    a = Archive(maximize=False, topk_children=2)
    a.add_roots([State(id="r", value=1.0, key="root-key")])
    f = a.child_filter()
    dropped = []
    for i, v in enumerate([0.5, 0.4, 0.6, 0.3, 0.7, 0.45]):
        dropped += f.offer(i, v, f"k{i}")
    assert sorted(dropped) == [0, 2, 4, 5]  # 0.4 (1) and 0.3 (3) are held
    assert f.offer(6, 0.1, "root-key") == [6]  # a duplicate of the archive
    assert f.offer(7, 0.1, "k3") == [7]  # a duplicate within the group
    assert f.offer(8, 0.2, None) == [1]  # no key: ranks by value; 0.4 leaves


def test_prune_children_drops_the_children_beyond_top_k_at_once():
    """Within a step, a parent's children beyond ``topk_children`` leave the archive (and their
    artifacts the memory) as soon as its group is recorded, not only at the step's flush."""
    a = Archive(maximize=True, topk_children=2)
    a.add_roots([State(id="r", value=0.0), State(id="q", value=0.0)])
    a.update("r", [State(id="", value=v, key=f"k{v}", artifact={"big": "x" * 100}) for v in (0.3, 0.9, 0.1, 0.5)], 0)
    assert len([s for s in a if s.parent_id == "r"]) == 4
    a.prune_children("r")
    kept = sorted(s.value for s in a if s.parent_id == "r")
    assert kept == [0.5, 0.9]  # the best two, before any flush
    assert a.stats()["evicted"] == 2
