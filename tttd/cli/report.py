"""``tttd report RUN...``: the command's parser and body live with the report it builds
(:mod:`tttd.report.cli`); this module only gives it its place among the commands."""

from __future__ import annotations

from typing import Any


def add_parser(sub: Any) -> None:
    from tttd.report.cli import add_report_parser

    add_report_parser(sub)
