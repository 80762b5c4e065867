"""An example of your own task: spread 12 points in the unit square as far apart as possible.

Run it with:   tttd run examples/spread_points.py --model tiny --steps 5 --max-tokens 256
               (or --backend tinker / --backend api for a real model)
Re-verify:     the `tttd verify ...` command in the run's best/best.json

This is the full Task protocol (README "The full Task contract"); for a program-search problem
tttd.ProgramTask needs far less code (examples/tsp.py).

A task is four things, all in this file:
1. the prompt: what the model is asked, with the current solution and its score;
2. parsing: how a completion becomes a program (the last ```python block);
3. the program contract: which function the sandbox calls and what it must return (data only);
4. the scoring: a trusted verifier that recomputes the score from the returned data.
"""

from __future__ import annotations

import numpy as np

import tttd
from tttd.task import Objective, Task, artifact_key, extract_code_block
from tttd.types import Candidate, Evaluation, Limits, Program, State

N_POINTS = 12


def min_distance(points) -> float:
    """The smallest pairwise distance; ValueError if the points are not N_POINTS in [0, 1]^2."""
    p = np.asarray(points, dtype=float)
    if p.shape != (N_POINTS, 2):
        raise ValueError(f"expected {N_POINTS} points as [[x, y], ...], got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError("coordinates must be finite")
    if p.min() < 0 or p.max() > 1:
        raise ValueError("every point must lie in the unit square [0, 1]^2")
    d = np.sqrt(((p[:, None, :] - p[None, :, :]) ** 2).sum(-1))
    return float(d[np.triu_indices(N_POINTS, 1)].min())


@tttd.register_task("spread-points")
class SpreadPoints(Task):
    """Place 12 points in the unit square maximising their smallest pairwise distance."""

    # 1. the objective: raw value (min distance), its direction, and the reward fed to learning
    objective = Objective(direction="maximize", transform="identity", failure_reward=0.0)

    def initial_states(self, n: int, rng: np.random.Generator) -> list[State]:
        roots = []
        for i in range(n):
            pts = rng.random((N_POINTS, 2)).round(4).tolist()
            value = min_distance(pts)
            roots.append(State(id=f"root{i}", value=value, artifact={"construction": pts},
                               key=artifact_key(pts), reward=value))
        return roots

    # 2. the prompt
    def prompt(self, state: State, parent: State | None = None):
        text = (
            f"Place {N_POINTS} points in the unit square so that the smallest distance between "
            f"two points is as large as possible.\n"
            f"Current points (smallest distance {state.value:.6f}): {state.artifact['construction']}\n"
            f"The current points are available to your code as the numpy array `current_points`.\n"
            f"Write a Python function `solve()` that returns the points as [[x, y], ...]. "
            f"Answer with one ```python code block."
        )
        return [{"role": "user", "content": text}]

    # 3. parsing and the program contract: call solve(), with the state's points injected
    def parse(self, completion: str, state: State) -> Candidate:
        code = extract_code_block(completion)
        if code is None:
            return Candidate(text=completion, error="no ```python block in the answer")
        program = Program(source=code, entry="solve",
                          inject={"current_points": np.asarray(state.artifact["construction"])},
                          limits=Limits(wall_s=10, memory_mb=1024))
        return Candidate(text=completion, code=code, program=program)

    # 4. the trusted scoring of the returned data
    def verify(self, data, state: State | None = None) -> Evaluation:
        try:
            value = min_distance(data)
        except (ValueError, TypeError) as exc:
            return self.invalid(str(exc))
        pts = np.asarray(data, dtype=float).tolist()
        return Evaluation(valid=True, value=value, reward=self.objective.reward(value),
                          message=f"smallest distance {value:.6f}",
                          artifact={"construction": pts}, key=artifact_key(pts))
