"""Denoising's held-out split cannot be rebuilt by the candidate (issue 31).

The synthetic generator and the split are public code; with the public seeds a candidate that
regenerates the full counts knows the held-out molecules exactly (test = X - train) and can blend
that truth with its input to stay under the leak ceiling: far above every honest method. A run
draws a per-run secret instead (``split_secret``, kept in the trusted process and the run's
config): the same cheat then scores no better than the honest MAGIC-like root program."""

from __future__ import annotations

import secrets

import numpy as np

from tttd.tasks.denoising import metrics as M
from tttd.tasks.denoising.problem import LEAK_CEILING
from tttd.tasks.denoising.synthetic import SyntheticConfig, generate
from tttd.tasks.denoising.task import DenoisingTask

SIZE = dict(n_cells=200, n_genes=1000)


def cheat(train: np.ndarray) -> np.ndarray:
    """What a candidate can compute from public information only: the documented generator with
    its default seed, the public split seed, then a blend of the rebuilt truth with the input."""
    X, _ = generate(SyntheticConfig(seed=0, **SIZE))
    _, _, kept = M.split_counts(X, 0)
    truth = X[:, kept] - train if X[:, kept].shape == train.shape else np.zeros_like(train)
    truth = np.clip(truth, 0, None)
    return 0.6 * truth + 0.4 * train * (1 - M.TRAIN_FRACTION) / M.TRAIN_FRACTION


def test_public_seeds_are_rebuilt_but_a_runs_secret_split_is_not():
    public = DenoisingTask(dataset="synthetic", metric="hardened", **SIZE)
    leaked = public.verify(cheat(public.problem.train))
    honest_public = public.root_evaluation()
    assert leaked.valid and leaked.value < LEAK_CEILING, leaked.message  # under the ceiling...
    assert leaked.value > honest_public.value + 0.3, (leaked.value, honest_public.value)  # ...and far above honest

    token = secrets.token_hex(16)
    secret = DenoisingTask(dataset="synthetic", metric="hardened", split_secret=token, **SIZE)
    ev = secret.verify(cheat(secret.problem.train))
    honest = secret.root_evaluation()
    identity = 0.0  # returning the input unchanged: the normalised scale's zero
    assert not ev.valid or ev.value <= max(honest.value or 0.0, identity) + 1e-9, (ev.value, honest.value)
    # the secret is in no text the candidate (or its later prompts) can see
    state = secret.initial_states(1, np.random.default_rng(0))[0]
    shown = " ".join(m["content"] for m in secret.prompt(state)) + ev.message + repr(ev.metrics) + honest.message
    assert token not in shown and "secret split" in honest.message
    assert secret.problem.train.shape[0] == SIZE["n_cells"]


def test_a_new_run_gets_a_fresh_secret_unless_a_public_split_is_asked_for():
    from tttd.cli.run import add_run_secrets
    from tttd.config import resolve_config

    task = DenoisingTask(dataset="synthetic", **SIZE)
    runs = []
    for _ in range(2):
        cfg = resolve_config(task.presets, flag_values={"task": "denoising", "task_options": {"dataset": "synthetic"}})
        add_run_secrets(task, cfg)
        runs.append(cfg.task_options.get("split_secret"))
    assert all(isinstance(s, str) and len(s) == 32 for s in runs) and runs[0] != runs[1]
    cfg = resolve_config(task.presets, preset="paper", flag_values={"task": "denoising"})
    add_run_secrets(task, cfg)  # the paper's pancreas split seed 42 stays the paper's
    assert "split_secret" not in cfg.task_options and cfg.task_options["split_seed"] == 42


def test_a_run_started_by_tttd_ablate_gets_its_own_secret_too(monkeypatch, tmp_path):
    """The ablation worker starts runs without ``tttd run``'s command line: it must draw the same
    secret, or ``tttd ablate denoising`` would score against the public split."""
    from tttd.ablate import worker
    from tttd.config import resolve_config

    started = []

    class Recorder:  # stands in for the loop: records the config the run would start with
        def __init__(self, cfg, path, on_step=None):
            started.append(cfg)

        def start(self):
            pass

        def run(self):
            return {}

    monkeypatch.setattr("tttd.loop.Discovery", Recorder)
    monkeypatch.setattr("tttd.sandbox.report.check_isolation", lambda *a, **k: None)
    task = DenoisingTask(dataset="synthetic", **SIZE)
    opts = {"dataset": "synthetic", **SIZE}
    cfg = resolve_config(task.presets, flag_values={"task": "denoising", "task_options": opts, "backend": "local"})
    worker.run_one(str(tmp_path / "run"), cfg.to_dict(), lambda m: None)
    secret = started[0].task_options.get("split_secret")
    assert isinstance(secret, str) and len(secret) == 32
