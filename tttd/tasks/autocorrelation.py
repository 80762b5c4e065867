"""The two autocorrelation inequalities of AlphaEvolve (SPEC 5.2 and 5.3).

- ``ac1``: the first inequality, an UPPER bound 2n max(a*a) / (sum a)^2 to minimise (reward 1/bound).
- ``ac2``: the second inequality, a LOWER bound ||a*a||_2^2 / (||a*a||_1 ||a*a||_inf) (with the
  piecewise-linear L2 norm) to maximise (reward = C).

Both verifiers follow the paper's formulas: entries are clipped to [0, 1000] (negative entries
are clipped to 0, not rejected), the sum must be at least 0.01, and the stored construction is the
clipped sequence (so it re-verifies to the stored value). Deviations: the state's construction is
injected as ``height_sequence_1`` for both tasks but the verifier (``evaluate_sequence``) is not
injected into the program; the random roots carry no code (the paper starts from an LP program for
AC1 and a ThetaEvolve Adam program for AC2, whose sources are not part of tttd). Sequences shorter
than 1000 or longer than 100000 are valid but carry ``metrics["archivable"] = False`` (the paper
does not buffer them); sequences longer than 1,000,000 are rejected.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tttd.registry import register_task
from tttd.task import Objective
from tttd.tasks._math import MathTask, as_vector, max_convolution, paper_preset, sequence_key
from tttd.types import Evaluation, State

#: The paper buffers AC constructions only with MIN <= len <= MAX (SPEC 3.3).
MIN_ARCHIVE_LEN = 1000
MAX_ARCHIVE_LEN = 100_000
CLIP_MAX = 1000.0
MIN_SUM = 0.01

_INJECT_DOC = (
    "the current construction (the clipped step heights) as a 1-D numpy float array; start "
    "from it or ignore it."
)


def clipped_sequence(data: Any) -> tuple[np.ndarray, int]:
    """The validated sequence clipped to [0, 1000], and how many entries were clipped."""
    a = as_vector(data, "sequence")
    clipped = np.clip(a, 0.0, CLIP_MAX)
    changed = int(np.count_nonzero(clipped != a))
    total = float(clipped.sum())
    if total < MIN_SUM:
        raise ValueError(
            f"the sum of the (clipped) sequence is {total:.3g}; it must be at least {MIN_SUM}"
        )
    return clipped, changed


class _AutocorrelationTask(MathTask):
    inject_name = "height_sequence_1"
    inject_doc = _INJECT_DOC
    default_eval_timeout_s = 1000.0
    default_cpus = 2
    example_body = "    return [float(v) for v in {inject}]"

    def random_construction(self, rng: np.random.Generator) -> Any:
        """SPEC 3.4: a constant sequence, value u ~ U(0, 1) repeated L ~ U{1000..7999} times."""
        u = float(rng.uniform(0.0, 1.0))
        length = int(rng.integers(1000, 8000))
        return [u] * length

    def load_construction(self, obj: Any) -> Any:
        return self.construction_from(obj, ("a", "values", "heights", "construction"))

    def score(self, a: np.ndarray) -> float:
        raise NotImplementedError

    def verify(self, data: Any, state: State | None = None) -> Evaluation:
        if isinstance(data, np.ndarray) and data.ndim != 1:
            return self.invalid(f"the program must return a flat list, got shape {data.shape}")
        if not isinstance(data, (list, np.ndarray)):
            kind = type(data).__name__
            return self.invalid(f"the program must return a list of floats, got {kind}")
        try:
            a, changed = clipped_sequence(data)
        except ValueError as exc:
            return self.invalid(str(exc))
        value = self.score(a)
        n = a.size
        archivable = MIN_ARCHIVE_LEN <= n <= MAX_ARCHIVE_LEN
        msg = f"{self.value_label.split(' (')[0]} = {value:.10f} with n = {n}"
        if changed:
            msg += f"; {changed} entries clipped to [0, {CLIP_MAX:g}]"
        if not archivable:
            msg += f"; not archivable (length outside [{MIN_ARCHIVE_LEN}, {MAX_ARCHIVE_LEN}])"
        metrics = {"n": n, "archivable": archivable, "clipped": changed}
        return self.valid(value, a.tolist(), msg, metrics, key=sequence_key(a))


AC1_PROBLEM = """\
# First autocorrelation inequality (upper bound)

For a non-negative step function f on [-1/4, 1/4] with n equal steps of heights a_0 .. a_{n-1},

    max_t (f*f)(t) >= C1 (integral f)^2,

and every sequence gives the upper bound C1 <= 2n * max(a*a) / (sum a)^2, where a*a is the full
discrete convolution of a with itself. Find a sequence that makes this bound as SMALL as
possible. Known bounds: Matolcsi-Vinuesa 1.50972, AlphaEvolve 1.50316, TTT-Discover 1.50286.
A classic method alternates linear programs: fix the peak locations, solve an LP for heights
that lower the maximum of the autoconvolution, and repeat (scipy.optimize.linprog).
"""

AC1_VERIFIER = """\
def upper_bound(a):                     # a: list of floats, 1 <= len(a) <= 1_000_000
    a = np.clip(np.asarray(a, dtype=float), 0, 1000)   # NaN / inf / bools / non-numbers: invalid
    if a.sum() < 0.01: invalid
    n = len(a)
    return 2 * n * np.max(np.convolve(a, a)) / a.sum() ** 2
"""


@register_task("ac1")
class AC1Task(_AutocorrelationTask):
    """First autocorrelation inequality: minimise the upper bound 2n max(a*a)/(sum a)^2."""

    name = "ac1"
    summary = "First autocorrelation inequality: minimise the upper bound (paper best 1.502863)"
    objective = Objective(direction="minimize", transform="reciprocal", failure_reward=0.0)
    # ac1 env default_config: 2 CPUs, 1100 s; the paper's CLI overrides to 1000 s (SPEC 4.2).
    presets = {"paper": paper_preset(eval_timeout_s=1000.0, cpus=2)}
    entry = "propose_candidate"
    signature = "propose_candidate(seed=42, budget_s=1000, **kwargs)"
    returns = "a Python list of n non-negative floats (the step heights)."
    call_args = ("budget_s",)
    value_label = "upper bound (lower is better)"
    problem = AC1_PROBLEM
    verifier_source = AC1_VERIFIER
    target = "Target: an upper bound below 1.5030."

    def score(self, a: np.ndarray) -> float:
        top, _ = max_convolution(a, a)
        return 2.0 * a.size * top / float(a.sum()) ** 2


AC2_PROBLEM = """\
# Second autocorrelation inequality (lower bound)

For a non-negative step function f with n equal steps of heights a_0 .. a_{n-1}, let g = f*f
(sampled as c = the full discrete convolution a*a, linear between samples, zero at both ends).
Every sequence gives the lower bound

    C2 >= ||g||_2^2 / (||g||_1 * ||g||_inf).

Find a sequence that makes this bound as LARGE as possible. Known bounds: best human 0.9015,
AlphaEvolve 0.961021, TTT-Discover 0.959180. Gradient ascent (e.g. Adam on a parametrisation
such as a = x**2) with upsampling to longer sequences works well.
"""

AC2_VERIFIER = """\
def lower_bound(a):                     # a: list of floats, 1 <= len(a) <= 1_000_000
    a = np.clip(np.asarray(a, dtype=float), 0, 1000)   # NaN / inf / bools / non-numbers: invalid
    if a.sum() < 0.01: invalid
    c = np.convolve(a, a); M = len(c)
    y = np.concatenate(([0.0], c, [0.0])); h = 1 / (M + 1)
    l2_sq = np.sum(h / 3 * (y[:-1] ** 2 + y[:-1] * y[1:] + y[1:] ** 2))
    l1 = np.sum(np.abs(c)) / (M + 1)
    return l2_sq / (l1 * np.max(np.abs(c)))
"""


@register_task("ac2")
class AC2Task(_AutocorrelationTask):
    """Second autocorrelation inequality: maximise the lower bound ||g||_2^2/(||g||_1 ||g||_inf)."""

    name = "ac2"
    summary = "Second autocorrelation inequality: maximise the lower bound (record 0.961021)"
    objective = Objective(direction="maximize", transform="identity", failure_reward=0.0)
    presets = {"paper": paper_preset(eval_timeout_s=1000.0, cpus=2)}
    entry = "construct_function"
    signature = "construct_function()"
    returns = "a Python list of n non-negative floats (the step heights)."
    call_args = ()
    value_label = "lower bound (higher is better)"
    problem = AC2_PROBLEM
    verifier_source = AC2_VERIFIER
    target = "Target: a lower bound above 0.97."

    def score(self, a: np.ndarray) -> float:
        top, c = max_convolution(a, a)
        m = c.size
        y = np.concatenate(([0.0], c, [0.0]))
        y1, y2 = y[:-1], y[1:]
        h = 1.0 / (m + 1)  # the paper's np.diff(np.linspace(-0.5, 0.5, m + 2)), up to rounding
        l2_sq = float(np.sum((h / 3.0) * (y1 * y1 + y1 * y2 + y2 * y2)))
        l1 = float(np.sum(np.abs(c))) / (m + 1)
        # a >= 0, so c >= 0 and max|c| = max c (FFT rounding only leaves tiny negatives)
        return l2_sq / (l1 * top)
