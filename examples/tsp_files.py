"""A TSP solver split over several files, with two objectives: tour length and run time.

Run (see docs/own-problem.md, "Programs of several files" and "Several objectives"):

    tttd run examples/tsp_files.py --model tiny
    tttd run examples/tsp_files.py --rule "weighted:length=1@5..12,wall_s=0.5@0..2" --reuse pareto

The program is a directory: ``main.py`` (the entry), ``tsp/construct.py`` and ``tsp/improve.py``
(the model may change them) and ``tsp/geometry.py`` (read-only: the model sees it but may not
change it). ``length`` is computed here, in the trusted process, from the returned tour;
``wall_s`` is measured by tttd around the sandboxed run (never a time the program reports).
"""
import operator

import numpy as np

import tttd

CITIES = np.random.default_rng(1).random((60, 2)).round(4)  # one fixed instance in the unit square

FILES = {
    "main.py": '''from tsp.construct import nearest_neighbour
from tsp.improve import two_opt


def solve(cities):
    tour = nearest_neighbour(cities)
    return two_opt(cities, tour, rounds=1)
''',
    "tsp/__init__.py": "",
    "tsp/geometry.py": '''def dist(a, b):
    return ((a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2) ** 0.5


def length(cities, tour):
    return sum(dist(cities[tour[i]], cities[tour[i - 1]]) for i in range(len(tour)))
''',
    "tsp/construct.py": '''from tsp.geometry import dist


def nearest_neighbour(cities):
    tour, left = [0], set(range(1, len(cities)))
    while left:
        here = cities[tour[-1]]
        nxt = min(left, key=lambda j: dist(here, cities[j]))
        tour.append(nxt)
        left.remove(nxt)
    return tour
''',
    "tsp/improve.py": '''from tsp.geometry import dist


def two_opt(cities, tour, rounds=1):
    n = len(tour)
    for _ in range(rounds):
        for i in range(1, n - 1):
            for j in range(i + 1, n):
                a, b = cities[tour[i - 1]], cities[tour[i]]
                c, d = cities[tour[j]], cities[tour[(j + 1) % n]]
                if dist(a, c) + dist(b, d) < dist(a, b) + dist(c, d) - 1e-12:
                    tour[i:j + 1] = reversed(tour[i:j + 1])
    return tour
''',
}


def metrics(tour) -> dict:
    """The trusted score: the closed tour's length; ValueError unless each city is visited once.
    (``wall_s``, the other metric, is tttd's own measurement of the run.)"""
    order = [operator.index(i) for i in tour]
    if sorted(order) != list(range(len(CITIES))):
        raise ValueError(f"the tour must list each city 0..{len(CITIES) - 1} exactly once")
    p = CITIES[order]
    return {"length": float(np.linalg.norm(p - np.roll(p, -1, axis=0), axis=1).sum())}


tttd.register_task("tsp-files", tttd.ProgramTask(
    statement=f"Improve a heuristic for the travelling salesman problem on {len(CITIES)} cities in the unit "
              "square: a shorter closed tour, found quickly.",
    files=FILES, readonly=["tsp/geometry.py"], entry="solve", args={"cities": CITIES.tolist()},
    returns=f"the tour: a list of the {len(CITIES)} city indices, each exactly once (it returns to the start)",
    score=metrics, metrics={"length": ("minimize", (0, None)), "wall_s": ("minimize", (0, 10))},
    timeout_s=10, presets={"demo": {"max_tokens": 96}}))
