"""``tttd report``: an offline HTML report (and PNGs) of one run or several runs.

Needs the ``plot`` extra (matplotlib, jinja2); nothing here is imported by the core.
"""

from __future__ import annotations

__all__ = ["build_report"]


def build_report(paths, out):
    from tttd.report.build import build_report as _build

    return _build(paths, out)
