"""Task.draw: the built-in tasks draw their constructions on a matplotlib Axes."""

import numpy as np
import pytest

from tttd.registry import get_task

pytest.importorskip("matplotlib")
from matplotlib.figure import Figure  # noqa: E402


@pytest.mark.parametrize("name", ["demo", "erdos", "ac1", "ac2"])
def test_roots_are_drawn(name):
    task = get_task(name)
    root = task.initial_states(1, np.random.default_rng(0))[0]
    ax = Figure().subplots()
    assert task.draw(root.artifact, ax) is True
    assert ax.patches  # the step function


@pytest.mark.parametrize("name", ["circle_packing_26", "circle_packing_32"])
def test_packings_are_drawn(name):
    task = get_task(name)
    k = int(np.ceil(np.sqrt(task.n)))
    centers = [((i % k + 0.5) / k, (i // k + 0.5) / k) for i in range(task.n)]
    ev = task.verify((centers, [0.5 / k] * task.n))
    assert ev.valid
    ax = Figure().subplots()
    assert task.draw(ev.artifact, ax) is True
    assert len(ax.patches) == task.n + 1  # the circles and the square


def test_what_cannot_be_drawn():
    ax = Figure().subplots()
    assert get_task("erdos").draw({"code": "x"}, ax) is False
    assert get_task("circle_packing_26").draw({"construction": "junk"}, ax) is False
    assert get_task("demo").draw({}, ax) is False
