"""Erdős minimum overlap problem: find a step function h with a small C5 bound (SPEC 5.1).

Deviations from the paper's code, on purpose:
- The verified C5 is recomputed here and is the value and reward; the paper accepted the program's
  reported C5 within atol 1e-4 and returned *that* (SPEC 7.3 item 7). The report is only shown.
- The current construction really is injected as ``initial_h_values`` (the paper promised it but
  never injected it, SPEC 7.2 item 5); the verifier is not injected into the program.
- The stored construction is the normalised h (rescaled to sum n/2), so it re-verifies to the
  stored value.
- Constructions longer than 1000 steps are valid but carry ``metrics["archivable"] = False``
  (the paper does not buffer them).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tttd.registry import register_task
from tttd.task import Objective
from tttd.tasks._math import (
    MathTask,
    as_vector,
    claim_note,
    claimed_number,
    max_convolution,
    paper_preset,
    sequence_key,
)
from tttd.types import Evaluation, State

#: The paper does not buffer Erdős constructions longer than this (SPEC 3.3).
MAX_ARCHIVE_LEN = 1000

PROBLEM = """\
# Erdős minimum overlap problem

Find a step function h: [0, 2] -> [0, 1] with integral 1 (n equal steps of width 2/n with
values h_0 .. h_{n-1} in [0, 1], so sum(h) = n/2) that makes the upper bound

    C5 = max_k  sum_i h_i (1 - h_{i+k}) * (2/n)

(the maximum of the cross-correlation of h and 1 - h, times the step width 2/n) as SMALL as
possible. Any such h proves M(n) <= C5 for the Erdős minimum overlap constant. Known upper
bounds: Haugland 2016 0.380927, AlphaEvolve 2025 0.380924, TTT-Discover 2026 0.380876.
"""

VERIFIER = """\
def c5_bound(h):                        # h: 1-D list of floats
    h = np.asarray(h, dtype=float)
    n = len(h)                          # 1 <= n <= 1_000_000, all finite, 0 <= h <= 1
    if h.sum() != n / 2:                # normalise the integral
        h = h * ((n / 2) / h.sum())     # must still lie in [0, 1]
    return np.max(np.correlate(h, 1 - h, mode="full")) * 2 / n
"""


@register_task("erdos")
class ErdosTask(MathTask):
    """Erdős minimum overlap: minimise the C5 upper bound of a step function (reward 1/C5)."""

    name = "erdos"
    summary = "Erdős minimum overlap: minimise the C5 upper bound (paper best 0.380876)"
    objective = Objective(direction="minimize", transform="reciprocal", failure_reward=0.0)
    # erdos env default_config: 2 CPUs, 1100 s; the paper's CLI overrides to 1000 s (SPEC 4.2).
    presets = {"paper": paper_preset(eval_timeout_s=1000.0, cpus=2)}
    entry = "run"
    signature = "run(seed=42, budget_s=1000, **kwargs)"
    returns = (
        "a tuple (h_values, c5_bound, n_points): h_values a list of n floats in [0, 1], "
        "c5_bound your own estimate (shown, never used), n_points = n."
    )
    call_args = ("budget_s",)
    inject_name = "initial_h_values"
    inject_doc = "the current construction h as a 1-D numpy float array (already normalised)."
    default_eval_timeout_s = 1000.0
    default_cpus = 2
    value_label = "C5 bound (lower is better)"
    problem = PROBLEM
    verifier_source = VERIFIER
    target = "The record is C5 <= 0.380876; lower it to at least 0.3808."
    example_body = "    h = [float(v) for v in {inject}]\n    return h, None, len(h)"

    def random_construction(self, rng: np.random.Generator) -> Any:
        """SPEC 3.4: n ~ U{40..99}, h = 0.5 + (u - mean u), u ~ U(-0.4, 0.4)."""
        while True:  # |u - mean u| < 0.5 in practice; redraw in the (astronomically rare) other case
            n = int(rng.integers(40, 100))
            u = rng.uniform(-0.4, 0.4, n)
            h = 0.5 + (u - u.mean())
            if h.min() >= 0.0 and h.max() <= 1.0:
                return h.tolist()

    def load_construction(self, obj: Any) -> Any:
        return self.construction_from(obj, ("h", "h_values", "construction"))

    def _split(self, data: Any) -> tuple[Any, float | None, Any]:
        """(h, claimed C5, n_points) from the program's return value or a construction."""
        if isinstance(data, dict):
            h_raw = self.construction_from(data, ("h_values", "h"))
            return h_raw, claimed_number(data.get("c5_bound")), data.get("n_points")
        if (
            isinstance(data, (list, tuple))
            and 2 <= len(data) <= 3
            and isinstance(data[0], (list, tuple, np.ndarray))
            and not isinstance(data[1], (list, tuple, np.ndarray))
        ):  # (h_values, c5_bound[, n_points]); a list of rows is nested data, rejected later
            return data[0], claimed_number(data[1]), (data[2] if len(data) == 3 else None)
        return data, None, None

    def verify(self, data: Any, state: State | None = None) -> Evaluation:
        try:
            h_raw, claimed, n_points = self._split(data)
            h = as_vector(h_raw, "h_values")
        except ValueError as exc:
            return self.invalid(str(exc))
        n = h.size
        if n_points is not None:
            if isinstance(n_points, bool) or claimed_number(n_points) != float(n):
                return self.invalid(f"n_points is {n_points!r} but h_values has {n} entries")
        if h.min() < 0.0 or h.max() > 1.0:
            i = int(np.argmax((h < 0.0) | (h > 1.0)))
            return self.invalid(f"h_values must lie in [0, 1]; h_values[{i}] = {h[i]!r}")
        total = float(h.sum())
        if total <= 0.0:
            return self.invalid("h_values sum to 0; the integral of h must be 1 (sum n/2)")
        rescaled = False
        if total != n / 2:
            h = h * ((n / 2) / total)
            rescaled = True
            if h.max() > 1.0:
                return self.invalid(
                    f"after rescaling h to sum n/2 = {n / 2:g} (factor {(n / 2) / total:.6g}), "
                    f"its maximum {h.max():.6g} exceeds 1"
                )
        c5 = max_convolution(h, (1.0 - h)[::-1])[0] * 2.0 / n  # = max(np.correlate(h, 1-h, full))
        archivable = n <= MAX_ARCHIVE_LEN
        msg = f"C5 = {c5:.10f} with n = {n} steps" + (" (rescaled to sum n/2)" if rescaled else "")
        if not archivable:
            msg += f"; not archivable (longer than {MAX_ARCHIVE_LEN} steps)"
        msg += claim_note(claimed, c5)
        metrics = {"n": n, "archivable": archivable, "rescaled": rescaled}
        if claimed is not None:
            metrics["claimed"] = claimed
        return self.valid(c5, h.tolist(), msg, metrics, key=sequence_key(h))
