"""Compatibility name: the OpenEvolve / ShinkaEvolve import lives in :mod:`tttd.evolve` (and the
registration of a problem folder in :mod:`tttd.registry`)."""

from tttd.evolve import EvaluatorTask, detect_layout  # noqa: F401
from tttd.registry import register_problem_dir  # noqa: F401
