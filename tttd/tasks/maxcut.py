"""A second CPU toy for the tiny model: weighted max-cut of one fixed graph, written as digits.

The answer is a string of digits; the first :data:`NODES` digits put node i on side ``d_i mod 2``
(even digits one side, odd digits the other; characters other than digits are ignored, at least
NODES digits are needed). The value is the weight of the edges that cross the cut divided by the
graph's total weight (higher is better; a random split cuts about half, the graph's best cut
:data:`BEST_CUT`). Reward: the value itself.

Why it is a fair miniature of the paper's problems, and not a copy of the demo:

- It is a discrete combinatorial construction (a partition of a fixed weighted graph, an NP-hard
  problem in general), where the demo is a continuous function with a min-max score: a single
  flipped digit changes the value by a discrete jump, and many digit strings are the same cut.
- As in the paper, the verifier is exact and cheap, the model never sees the instance (only its
  own previous answer and its score), so everything it learns comes from the reward: it has to
  learn, at test time, which edits of an answer pay off on *this* graph.
- The tiny model can write the answers: it was pretrained on digit lines (``tttd.policy.tiny``'s
  digit documents hold runs of 4-24 digits) and on short chat answers made of digits, so a frozen
  model already produces valid cuts for a part of its samples (the valid rate is measured by
  ``tttd ablate maxcut``) and copying the shown answer is enough to stay valid.
- It is small enough that the optimum is known (:data:`BEST_CUT`, by exhaustive search over the
  2^19 cuts that fix node 0's side), so "how far from the best" is measurable, unlike the demo.

The graph (:func:`graph`) is built from a fixed hash, independent of numpy's random streams, so it
is the same on every machine and version: 20 nodes, each of the 190 pairs an edge with probability
1/2, weights 1-9.
"""

from __future__ import annotations

import hashlib

import numpy as np

from tttd.registry import register_task
from tttd.tasks.digits import digit_prompt, parse_digits
from tttd.task import Objective, Task, artifact_key
from tttd.types import Candidate, Evaluation, Message, State

NODES = 20
#: The best cut value of :func:`graph`: exhaustive search over all 2^19 splits that put node 0 on
#: side 0 (``tests/tasks/test_maxcut.py::test_best_cut_is_the_optimum`` repeats it in about a
#: second). For scale: 2,000 random digit strings averaged 0.50 and their best was 0.68.
BEST_CUT = 320 / 437  # 0.7323, e.g. 00011100101111001001


def graph(nodes: int = NODES) -> np.ndarray:
    """The fixed weighted graph: a symmetric integer weight matrix with a zero diagonal."""
    w = np.zeros((nodes, nodes), dtype=np.int64)
    for i in range(nodes):
        for j in range(i + 1, nodes):
            h = hashlib.sha256(f"tttd-maxcut:{i}:{j}".encode()).digest()
            if h[0] & 1:
                w[i, j] = w[j, i] = 1 + h[1] % 9
    return w


_W = graph()
_TOTAL = float(_W.sum() / 2)


def sides(digits: str) -> np.ndarray:
    """Node sides (0/1) of an answer's first NODES digits (ValueError if there are fewer)."""
    if not digits.isascii() or not digits.isdigit():
        raise ValueError("the answer must be digits 0-9")
    if len(digits) < NODES:
        raise ValueError(f"need {NODES} digits (one per node), got {len(digits)}")
    return (np.frombuffer(digits[:NODES].encode(), dtype=np.uint8) - 48) % 2


def cut_fraction(digits: str) -> float:
    """The share of the graph's edge weight that crosses the cut written by ``digits``."""
    s = sides(digits).astype(np.int64)
    crossing = s[:, None] != s[None, :]
    return float((_W * crossing).sum() / 2 / _TOTAL)


def canonical(digits: str) -> str:
    """The cut as a 0/1 string with node 0 on side 0 (a cut and its mirror are one answer)."""
    s = sides(digits)
    if s[0]:
        s = 1 - s
    return "".join(map(str, s))


@register_task("maxcut", summary="toy (CPU): split a fixed 20-node weighted graph in two, written as digits")
class MaxCutTask(Task):
    """Toy combinatorial problem for CPU ablations: the best cut of a fixed weighted graph."""

    objective = Objective(direction="maximize", transform="identity", failure_reward=0.0, bounds=(0.0, 1.0))
    presets = {"demo": dict(steps=48, learning_rate=3e-3, max_tokens=40)}

    def initial_states(self, n: int, rng: np.random.Generator) -> list[State]:
        roots = []
        for k in range(n):
            digits = "".join(str(d) for d in rng.integers(0, 10, NODES))
            value = cut_fraction(digits)
            roots.append(State(id=f"root{k}", value=value, artifact={"digits": digits},
                               key=artifact_key(canonical(digits)), reward=self.objective.reward(value)))
        return roots

    def prompt(self, state: State, parent: State | None = None) -> list[Message]:
        return digit_prompt(f"Split {NODES} nodes in two: write {NODES} digits, even = one side, odd = the other.",
                            state, parent, "cut", "Higher cut is better.")

    def parse(self, completion: str, state: State) -> Candidate:
        return parse_digits(completion, NODES, NODES)

    def example_answer(self, state: State) -> str | None:
        return state.artifact.get("digits") or "01" * (NODES // 2)

    def verify(self, data, state: State | None = None) -> Evaluation:
        if isinstance(data, dict):
            data = data.get("digits")
        if not isinstance(data, str):
            return self.invalid("expected a string of digits")
        try:
            value = cut_fraction(data)
            key = artifact_key(canonical(data))
        except ValueError as exc:
            return self.invalid(str(exc))
        return Evaluation(valid=True, value=value, reward=self.objective.reward(value),
                          message=f"cut {value:.6f}", artifact={"digits": data[:NODES]}, key=key)
