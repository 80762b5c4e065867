"""Circle packing (n = 26, 32): exact containment/overlap checks, empty roots, prompt, sandbox runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tttd.registry import get_task
from tttd.types import State

from ._helpers import data_params, load, run_code


def grid_packing(n: int) -> tuple[list, list]:
    """n circles of radius 1/12 on a 6 x 6 grid: valid, touching neighbours exactly."""
    r = 1 / 12
    centers = [[r + 2 * r * (k % 6), r + 2 * r * (k // 6)] for k in range(n)]
    return centers, [r] * n


@pytest.fixture(params=[26, 32])
def task(request):
    return get_task(f"circle_packing_{request.param}", eval_timeout_s=30)


@pytest.mark.parametrize("path", data_params("circle_packing"))
def test_published_packings_verify_to_their_recorded_value(path):
    obj = load(path)
    task = get_task(f"circle_packing_{obj['n']}")
    ev = task.verify(task.load_construction(obj))  # its speed: benchmarks/verify_bench.py
    assert ev.valid, ev.message
    assert ev.value == pytest.approx(obj["value"], rel=1e-9, abs=0)
    assert ev.artifact["construction"] == obj["circles_xyr"]
    other = get_task("circle_packing_32" if obj["n"] == 26 else "circle_packing_26")
    bad = other.verify(other.load_construction(obj))
    assert not bad.valid and "shape" in bad.message


def test_valid_grid_and_return_forms(task):
    n = task.n
    centers, radii = grid_packing(n)
    for data in [(centers, radii, 99.0), [centers, radii], {"centers": centers, "radii": radii},
                 (np.array(centers), np.array(radii), np.float64(99.0))]:
        ev = task.verify(data)
        assert ev.valid, ev.message
        assert ev.value == pytest.approx(n / 12, rel=1e-12)
        assert ev.reward == ev.value
    ev = task.verify((centers, radii, 99.0))
    assert ev.metrics["claimed"] == 99.0 and "claimed" in ev.message  # reported, never used
    assert np.array(ev.artifact["construction"]).shape == (n, 3)


def _moved(task, k, dx=0.0, dy=0.0, dr=0.0):
    centers, radii = grid_packing(task.n)
    centers[k] = [centers[k][0] + dx, centers[k][1] + dy]
    radii[k] += dr
    return centers, radii


@pytest.mark.parametrize(
    "change, why",
    [
        (dict(k=0, dx=-1e-9), "leaves the unit square"),
        (dict(k=5, dx=1e-9), "leaves the unit square"),  # right edge
        (dict(k=0, dy=-1e-9), "leaves the unit square"),
        (dict(k=7, dr=1e-9), "overlap"),
        (dict(k=7, dx=0.05), "overlap"),
        (dict(k=3, dr=-1.0), "negative"),
    ],
)
def test_escaping_overlapping_and_negative_circles_are_rejected(task, change, why):
    centers, radii = _moved(task, **change)
    ev = task.verify((centers, radii, 100.0))
    assert not ev.valid and why in ev.message, ev.message
    assert ev.reward == 0.0


def test_tolerance_is_1e12(task):
    centers, radii = _moved(task, k=7, dr=5e-13)  # overlaps neighbours by 5e-13 < 1e-12
    assert task.verify((centers, radii)).valid
    centers, radii = _moved(task, k=0, dx=-5e-13)
    assert task.verify((centers, radii)).valid


@pytest.mark.parametrize("bad", ["nan", "inf", "short", "wide", "radii2d", "scalar", "string", "bools"])
def test_wrong_shapes_and_values_are_rejected(task, bad):
    centers, radii = grid_packing(task.n)
    if bad == "nan":
        centers[2][0] = float("nan")
    elif bad == "inf":
        radii[1] = float("inf")
    elif bad == "short":
        centers, radii = centers[:-1], radii[:-1]
    elif bad == "wide":
        centers = [c + [0.0] for c in centers]
    elif bad == "radii2d":
        radii = [[r] for r in radii]
    elif bad == "scalar":
        centers = 0.5
    elif bad == "string":
        radii[0] = "0.1"
    elif bad == "bools":
        centers[0] = [True, False]
    ev = task.verify((centers, radii, 1.0))
    assert not ev.valid and ev.message
    assert not task.verify("nonsense").valid
    assert not task.verify({"centres": centers}).valid


def test_roots_are_empty_with_no_value(task):
    roots = task.initial_states(3, np.random.default_rng(0))
    assert len(roots) == 3 and len({r.id for r in roots}) == 3
    for r in roots:
        assert r.value is None and r.key is None and r.artifact == {"code": "", "construction": None}
    text = task.prompt(roots[0])[0]["content"]
    assert "no solution yet" in text and "initial_circles" not in text
    assert f"{task.n} disjoint circles" in text and "run_packing()" in text
    prog = task.parse("```python\ndef run_packing():\n    pass\n```", roots[0]).program
    assert prog.inject == {} and prog.args == {} and prog.limits.threads == 1


def test_start_file_roots_inject_initial_circles(tmp_path):
    centers, radii = grid_packing(26)
    f = tmp_path / "p.json"
    f.write_text(json.dumps({"circles_xyr": [c + [r] for c, r in zip(centers, radii)]}))
    task = get_task("circle_packing_26", start_file=str(f))
    root = task.initial_states(2, np.random.default_rng(0))[0]
    assert root.value == pytest.approx(26 / 12)
    prog = task.parse("```python\ndef run_packing():\n    pass\n```", root).program
    assert prog.inject["initial_circles"].shape == (26, 3)
    state = State(id="c", value=2.2, artifact={"code": "pass", "construction": root.artifact["construction"]})
    text = task.prompt(state, root)[0]["content"]
    assert f"{26 / 12:.10f} -> 2.2000000000" in text and "initial_circles" in text


def test_a_program_that_lies_about_its_sum_is_rejected(sandbox_run):
    task = get_task("circle_packing_26")
    root = task.initial_states(1, np.random.default_rng(0))[0]
    code = (
        "import numpy as np\n"
        "def run_packing():\n"
        "    centers = np.full((26, 2), 0.5)\n"
        "    radii = np.full(26, 0.5)\n"
        "    return centers, radii, 13.0\n"
    )
    ev, result = run_code(task, code, root, sandbox_run)
    assert result.ok, result.message + result.stderr
    assert not ev.valid and "overlap" in ev.message and ev.reward == 0.0
    honest = (
        "def run_packing():\n"
        "    r = 1 / 12\n"
        "    c = [[r + 2 * r * (k % 6), r + 2 * r * (k // 6)] for k in range(26)]\n"
        "    return c, [r] * 26, 100.0\n"
    )
    ev, _ = run_code(task, honest, root, sandbox_run)
    assert ev.valid and ev.value == pytest.approx(26 / 12) and ev.metrics["claimed"] == 100.0
