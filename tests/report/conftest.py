"""Run directories to report on: fake-policy runs (fast) and a real tiny-model run (slow)."""

from __future__ import annotations

import pytest

from tests.fakes import FakeDigitPolicy
from tttd.config import resolve_config
from tttd.faults import FaultInjected
from tttd.loop import Discovery


def fake_run(path, fault: str | None = None, monkeypatch=None, **kw):
    values = dict(task="demo", steps=4, groups=3, group_size=6, learning_rate=0.5, workers=1, seed=1)
    values.update(kw)
    run = Discovery(resolve_config(flag_values=values), path, policy=FakeDigitPolicy())
    run.start()
    if fault:
        monkeypatch.setenv("TTTD_FAULT", fault)
        with pytest.raises(FaultInjected):
            run.run()
        monkeypatch.delenv("TTTD_FAULT")
    else:
        run.run()
    return path


@pytest.fixture(scope="module")
def fake_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return fake_run(root / "trained"), fake_run(root / "frozen", train=False)


@pytest.fixture(scope="module")
def tiny_runs(tiny_model_dir, tmp_path_factory):
    """A real run of the tiny local model on the demo task, trained and frozen (same seed)."""
    root = tmp_path_factory.mktemp("tiny-runs")
    out = []
    for name, train in (("trained", True), ("frozen", False)):
        cfg = resolve_config(flag_values=dict(
            task="demo", backend="local", model=str(tiny_model_dir), steps=2, groups=2, group_size=4,
            max_tokens=16, learning_rate=3e-3, lora_rank=8, kl_coef=0.0, workers=1, seed=0, train=train))
        run = Discovery(cfg, root / name)
        run.start()
        run.run()
        out.append(root / name)
    return tuple(out)
