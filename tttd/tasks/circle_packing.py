"""Circle packing: n disjoint circles in the unit square with the largest sum of radii (SPEC 5.4).

Registered as ``circle_packing_26`` and ``circle_packing_32``. The verifier follows the paper's:
shapes exactly (n, 2) and (n,), finite, radii >= 0, every circle inside [0, 1]^2 and every pair
disjoint, both up to a tolerance of 1e-12; the sum the program reports is ignored.

Roots are empty (no code, no construction, value None): the paper gave them value 0.0, which
tttd's archive would rank as a real state. With ``start_file`` (e.g.
shared/data/circle_packing/n26_ttt_discover_2026.json) the roots carry that packing, and tttd then
injects it as ``initial_circles`` (an (n, 3) array of x, y, r; the paper injects nothing but its
``validate_packing`` helper, which tttd does not put in the candidate's process).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tttd.registry import register_task
from tttd.task import Objective
from tttd.tasks._math import MathTask, as_matrix, as_vector, claim_note, claimed_number, paper_preset
from tttd.types import Evaluation, State

TOLERANCE = 1e-12

VERIFIER = """\
def sum_of_radii(centers, radii, n):    # centers: n x 2, radii: n (exact shapes), all finite
    centers = np.asarray(centers, dtype=float); radii = np.asarray(radii, dtype=float)
    tol = 1e-12
    assert np.all(radii >= 0)
    for (x, y), r in zip(centers, radii):          # inside the unit square
        assert x - r >= -tol and x + r <= 1 + tol and y - r >= -tol and y + r <= 1 + tol
    for i in range(n):                             # pairwise disjoint
        for j in range(i + 1, n):
            assert np.sqrt(np.sum((centers[i] - centers[j]) ** 2)) >= radii[i] + radii[j] - tol
    return np.sum(radii)                # the sum your program reports is ignored
"""


class CirclePackingTask(MathTask):
    """Pack n circles in the unit square, maximising the sum of radii."""

    n: int = 26
    record: str = ""
    objective = Objective(direction="maximize", transform="identity", failure_reward=0.0)
    # cp env default_config: 1 CPU, 305 s (SPEC 4.2); used as the paper preset here.
    presets = {"paper": paper_preset(eval_timeout_s=305.0, cpus=1)}
    entry = "run_packing"
    signature = "run_packing()"
    call_args = ()
    inject_name = "initial_circles"
    inject_doc = "the current packing as a numpy float array of shape (n, 3): rows (x, y, r)."
    default_eval_timeout_s = 305.0
    default_cpus = 1
    value_label = "sum of radii (higher is better)"
    verifier_source = VERIFIER
    # A grid packing: k x k cells, one circle of radius 1/(2k) per cell (valid, far from the record).
    example_body = ("    import math\n    n = {n}\n    k = math.ceil(math.sqrt(n))\n"
                    "    centers = [((i % k + 0.5) / k, (i // k + 0.5) / k) for i in range(n)]\n"
                    "    radii = [0.5 / k] * n\n    return centers, radii, sum(radii)")

    def example_answer(self, state: State) -> str | None:
        body = self.example_body.format(n=self.n)
        return f"A grid packing as a first answer.\n\n```python\ndef {self.signature}:\n{body}\n```\n"

    def draw(self, artifact: dict[str, Any], ax: Any) -> bool:
        xyr = (artifact or {}).get("construction")
        try:
            xyr = np.asarray(xyr, dtype=float).reshape(-1, 3)
        except (TypeError, ValueError):
            return False
        from matplotlib.patches import Circle, Rectangle

        ax.add_patch(Rectangle((0, 0), 1, 1, fill=False, linewidth=1.5))
        for i, (x, y, r) in enumerate(xyr):
            ax.add_patch(Circle((x, y), r, alpha=0.5, edgecolor="black"))
            ax.annotate(str(i), (x, y), ha="center", va="center", fontsize=7)
        ax.set_xlim(-0.02, 1.02)
        ax.set_ylim(-0.02, 1.02)
        ax.set_aspect("equal")
        ax.set_title(f"{len(xyr)} circles, sum of radii {xyr[:, 2].sum():.6f}")
        return True

    @property
    def returns(self) -> str:  # type: ignore[override]
        return (
            f"a tuple (centers, radii, sum_radii): centers of shape ({self.n}, 2), radii of shape "
            f"({self.n},), sum_radii your own sum (shown, never used)."
        )

    @property
    def problem(self) -> str:  # type: ignore[override]
        return (
            f"# Circle packing\n\nPlace {self.n} disjoint circles inside the unit square [0, 1] x "
            f"[0, 1] so that the SUM of their radii is as large as possible. Circles may touch "
            f"(tolerance 1e-12) but not overlap or leave the square. {self.record}\n"
        )

    def load_construction(self, obj: Any) -> Any:
        if isinstance(obj, dict) and "centers" in obj and "radii" in obj:
            return {"centers": obj["centers"], "radii": obj["radii"]}
        return {"circles_xyr": self.construction_from(obj, ("circles_xyr", "construction"))}

    def inject_value(self, construction: Any) -> Any:
        return np.asarray(construction, dtype=np.float64).reshape(self.n, 3)

    def _split(self, data: Any) -> tuple[Any, Any, float | None]:
        n = self.n
        if isinstance(data, dict):
            if "circles_xyr" in data:
                xyr = as_matrix(data["circles_xyr"], "circles_xyr", (n, 3))
                return xyr[:, :2], xyr[:, 2], None
            if "centers" in data and "radii" in data:
                return data["centers"], data["radii"], claimed_number(data.get("sum_radii"))
            raise ValueError("expected keys 'centers' and 'radii' (or 'circles_xyr')")
        if isinstance(data, (list, tuple)) and len(data) in (2, 3):
            claimed = claimed_number(data[2]) if len(data) == 3 else None
            return data[0], data[1], claimed
        raise ValueError(
            f"run_packing() must return (centers, radii, sum_radii), got {type(data).__name__}"
            + (f" of length {len(data)}" if isinstance(data, (list, tuple)) else "")
        )

    def verify(self, data: Any, state: State | None = None) -> Evaluation:
        n = self.n
        try:
            centers_raw, radii_raw, claimed = self._split(data)
            centers = as_matrix(centers_raw, "centers", (n, 2))
            radii = as_vector(radii_raw, "radii", max_len=n, min_len=n)
        except ValueError as exc:
            return self.invalid(str(exc))
        if np.any(radii < 0):
            i = int(np.flatnonzero(radii < 0)[0])
            return self.invalid(f"radius {i} is negative ({radii[i]!r})")
        x, y = centers[:, 0], centers[:, 1]
        out = (x - radii < -TOLERANCE) | (x + radii > 1 + TOLERANCE)
        out |= (y - radii < -TOLERANCE) | (y + radii > 1 + TOLERANCE)
        if out.any():
            i = int(np.flatnonzero(out)[0])
            return self.invalid(
                f"circle {i} (x={x[i]!r}, y={y[i]!r}, r={radii[i]!r}) leaves the unit square"
            )
        diff = centers[:, None, :] - centers[None, :, :]
        dist = np.sqrt(np.sum(diff**2, axis=-1))
        overlap = dist < radii[:, None] + radii[None, :] - TOLERANCE
        overlap[np.tril_indices(n)] = False
        if overlap.any():
            i, j = (int(v) for v in np.argwhere(overlap)[0])
            depth = radii[i] + radii[j] - dist[i, j]
            return self.invalid(f"circles {i} and {j} overlap by {depth:.3g}")
        total = float(np.sum(radii))
        construction = np.column_stack([centers, radii]).tolist()
        msg = f"sum of radii = {total:.10f} for {n} circles" + claim_note(claimed, total)
        metrics: dict[str, Any] = {"n": n, "archivable": True}
        if claimed is not None:
            metrics["claimed"] = claimed
        return self.valid(total, construction, msg, metrics)


@register_task("circle_packing_26")
class CirclePacking26(CirclePackingTask):
    """Circle packing, n = 26: maximise the sum of radii in the unit square."""

    name = "circle_packing_26"
    summary = "Pack 26 circles in the unit square, maximise the sum of radii (paper 2.635977)"
    n = 26
    record = "Known: Packomania 2.634, AlphaEvolve 2.63586, TTT-Discover 2.635977."
    target = "Target: a sum of radii above 2.636."


@register_task("circle_packing_32")
class CirclePacking32(CirclePackingTask):
    """Circle packing, n = 32: maximise the sum of radii in the unit square."""

    name = "circle_packing_32"
    summary = "Pack 32 circles in the unit square, maximise the sum of radii (AlphaEvolve 2.937)"
    n = 32
    record = "Known: AlphaEvolve 2.937."
    target = "Target: a sum of radii above 2.940."
