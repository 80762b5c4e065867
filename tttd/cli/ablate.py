"""``tttd ablate TASK``: the command's parser and body live with the ablation machinery
(:mod:`tttd.ablate.cli`); this module only gives it its place among the commands."""

from __future__ import annotations

from typing import Any


def add_parser(sub: Any) -> None:
    from tttd.ablate.cli import add_ablate_parser

    add_ablate_parser(sub)
