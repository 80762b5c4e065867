"""A 50-city TSP heuristic as a tttd.ProgramTask.  Run: tttd run examples/tsp.py --model tiny"""
import operator

import numpy as np

import tttd

CITIES = np.random.default_rng(0).random((50, 2)).round(4)  # one fixed instance in the unit square


def tour_length(tour) -> float:
    """The trusted score: length of the closed tour; ValueError unless it visits each city once."""
    order = [operator.index(i) for i in tour]
    if sorted(order) != list(range(len(CITIES))):
        raise ValueError("the tour must list each city 0..49 exactly once")
    p = CITIES[order]
    return float(np.linalg.norm(p - np.roll(p, -1, axis=0), axis=1).sum())


INITIAL = '''
def solve(cities):
    """Nearest neighbour from city 0."""
    tour, left = [0], set(range(1, len(cities)))
    while left:
        x, y = cities[tour[-1]]
        nxt = min(left, key=lambda j: (cities[j][0] - x) ** 2 + (cities[j][1] - y) ** 2)
        tour.append(nxt)
        left.remove(nxt)
    return tour
'''

tttd.register_task("tsp-50", tttd.ProgramTask(
    statement="Write a heuristic for the travelling salesman problem on 50 cities in the unit square.",
    initial_program=INITIAL, entry="solve", args={"cities": CITIES.tolist()},
    returns="the tour: a list of the 50 city indices 0..49, each exactly once (it returns to the start)",
    score=tour_length, direction="minimize", timeout_s=10, value_label="tour length"))
