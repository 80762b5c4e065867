"""``tttd tasks``: the registered tasks, one line each."""

from __future__ import annotations

import argparse
from typing import Any


def add_parser(sub: Any) -> None:
    t = sub.add_parser("tasks", help="list registered tasks")
    t.set_defaults(func=cmd_tasks)


def cmd_tasks(args: argparse.Namespace) -> int:
    from tttd.registry import list_tasks

    tasks = list_tasks()
    width = max(len(n) for n in tasks) if tasks else 0
    for name, summary in tasks.items():
        print(f"{name.ljust(width)}  {summary}")
    return 0
