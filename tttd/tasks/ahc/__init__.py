"""AtCoder Heuristic Contest tasks (AHC039, AHC058): C++ candidates compiled once and run per case.

- :mod:`~tttd.tasks.ahc.generators`: the official input generators, ported exactly;
- :mod:`~tttd.tasks.ahc.scorers`: the testers' rules, in the trusted process (:func:`score_case`);
- :mod:`~tttd.tasks.ahc.cpp`: the jailed compile and the jailed per-case runs;
- :mod:`~tttd.tasks.ahc.runner`: one candidate over many cases on the executor, early stop, racing;
- :mod:`~tttd.tasks.ahc.tasks`: the registered tasks ``ahc039`` and ``ahc058``.
"""

from tttd.tasks.ahc.generators import generate
from tttd.tasks.ahc.scorers import CaseScore, score_case
from tttd.tasks.ahc.tasks import Ahc039Task, Ahc058Task, AhcTask

__all__ = ["generate", "score_case", "CaseScore", "AhcTask", "Ahc039Task", "Ahc058Task"]
