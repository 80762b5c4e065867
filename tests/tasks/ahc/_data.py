"""Where the AHC public inputs are: <repo>/../shared/data/ahc, as the other task tests find
shared/data (``TTTD_SHARED_DATA`` may point elsewhere, e.g. when the repo is a worktree)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
DATA = Path(os.environ.get("TTTD_SHARED_DATA") or (REPO / ".." / "shared" / "data")) / "ahc"


def inputs_dir(problem: str) -> Path | None:
    d = DATA / problem / "inputs"
    return d if d.is_dir() else None
