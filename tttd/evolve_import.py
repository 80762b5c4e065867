"""Compatibility name: the OpenEvolve / ShinkaEvolve import lives in :mod:`tttd.evolve`."""

from tttd.evolve import EvaluatorTask, detect_layout, register_problem_dir  # noqa: F401
