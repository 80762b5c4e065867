"""Run OpenEvolve and ShinkaEvolve problem folders unchanged: ``tttd run path/to/problem_dir``.

- :mod:`tttd.evolve.folder`: which framework, which files, which language;
- :mod:`tttd.evolve.settings`: what the folder's ``config.yaml`` / ``run_evo.py`` / YAML says
  (statement, time limit, cascade, edit format, sampling), with every key reported as used or
  ignored;
- :mod:`tttd.evolve.jail`: the driver that calls the evaluator inside the sandbox, and stand-ins
  for ``openevolve`` / ``shinka`` imports;
- :mod:`tttd.evolve.outcome`: value (metric choice), validity and feedback, in the trusted process;
- :mod:`tttd.evolve.rescore`: re-scoring the top candidates of noisy evaluators;
- :mod:`tttd.evolve.task`: :class:`EvaluatorTask`, the ProgramTask that ties them together.

docs/coming-from-openevolve.md maps the upstream concepts to tttd's.
"""

from __future__ import annotations

import hashlib
import inspect
import re
from pathlib import Path
from typing import Any, Callable

from tttd.evolve.folder import Layout, detect_layout, expected_layouts
from tttd.evolve.task import EvaluatorTask

__all__ = ["EvaluatorTask", "Layout", "detect_layout", "problem_dir_task"]


def problem_dir_task(path: str | Path) -> tuple[str, Callable[..., EvaluatorTask]]:
    """The task name and factory of the problem folder at ``path`` (ValueError when it is not
    one); :func:`tttd.registry.register_problem_dir` registers them."""
    folder = Path(path).resolve()
    layout = detect_layout(folder)
    if layout is None:
        raise ValueError(f"{path} is not a problem folder tttd knows: expected {expected_layouts()}")
    name = re.sub(r"[^A-Za-z0-9_.\-]", "_", folder.name).lstrip("._-") or "problem"

    def factory(**options: Any) -> EvaluatorTask:
        return EvaluatorTask(folder, layout, **options)

    # The declared options (so a wrong one is refused with the list of valid ones).
    params = [p for p in inspect.signature(EvaluatorTask.__init__).parameters.values()
              if p.kind is p.KEYWORD_ONLY]
    factory.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    factory.__module__ = "tttd_problem_dir_" + hashlib.sha1(str(folder).encode()).hexdigest()[:10]
    factory.__doc__ = f"{layout.title} problem {folder}"
    return name, factory
