"""The ``tttd`` command line: one module per command, the parser assembled in :mod:`tttd.cli.main`.

==================  ==========================================================================
module              what it holds
==================  ==========================================================================
``main``            :func:`main` (the ``tttd`` console script), ``build_parser``, ``COMMANDS``
``common``          shared pieces: ``execute`` (the loop with live ``Progress``),
                    ``print_summary``, ``default_out``, ``parse_kv``, ``handle_errors``
``run``             ``tttd run TASK`` (``--dry-run``: ``dryrun``; options checked: ``preflight``)
``resume``          ``tttd resume RUN``
``demo``            ``tttd demo``: trained vs frozen tiny model, with a verdict
``verify``          ``tttd verify TASK FILE``; also ``verify_program``/``verify_construction``
``show``, ``runs``  ``tttd show RUN``, ``tttd runs [DIR]`` (read through :mod:`tttd.runinfo`)
``tasks``           ``tttd tasks``
``prompt``          ``tttd prompt TASK`` (the dry run without the estimate)
``new_task``        ``tttd new-task NAME``: a commented task template and its check
``report``          ``tttd report RUN...`` (its body: :mod:`tttd.report.cli`)
``ablate``          ``tttd ablate TASK`` (its body: :mod:`tttd.ablate.cli`)
==================  ==========================================================================

The engine (``tttd.loop``, ``archive``, ``objective``, ``puct``, ``losses``, ``rundir``, ``ledger``,
``executor``, ``config``) stays at the top level of the package; commands only call into it.
"""

from __future__ import annotations

from tttd.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
