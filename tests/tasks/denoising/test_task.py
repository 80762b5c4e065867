"""The registered ``denoising`` task: the trusted verdict (validity rules, the paper's gate, the
leak ceiling, both metrics, baselines in every message), prompts, parsing and the root states."""

from __future__ import annotations

import numpy as np
import pytest

from tests.tasks.denoising._reference import hardened_norm, printed_hardened
from tttd.registry import get_task, list_tasks
from tttd.tasks.denoising.task import ROOT_SOURCE, DenoisingTask


@pytest.fixture(scope="module")
def task(celltypist_counts):
    return get_task("denoising")  # default: the celltypist sample, split seed 0, paper metric


def test_registered():
    assert "denoising" in list_tasks()
    assert isinstance(get_task("denoising", dataset="synthetic"), DenoisingTask)
    with pytest.raises(ValueError, match="metric"):
        DenoisingTask(metric="mine")
    with pytest.raises(ValueError, match="synthetic"):
        DenoisingTask(dataset="celltypist", n_cells=10)


@pytest.mark.parametrize("bad, why", [
    ([[0.0]], "numpy array"),
    (np.zeros((3, 3)), "shape"),
    ("nan", "non-finite"),
    ("neg", "negative"),
    ("huge", "exceeds"),
    ("bool", "dtype"),
])
def test_invalid_outputs_are_rejected_with_a_reason(task, bad, why):
    p = task.problem
    if isinstance(bad, str):
        D = p.train.copy()
        if bad == "nan":
            D[0, 0] = np.nan
        elif bad == "neg":
            D[1, 2] = -1.0
        elif bad == "huge":
            D[0, 0] = p.train_total * 2
        else:
            D = D > 0
        bad = D
    ev = task.verify(bad)
    assert not ev.valid and ev.reward == 0.0 and why in ev.message


def test_zeros_pass_the_paper_gate_and_are_reported_beside_the_baselines(task):
    ev = task.verify(np.zeros(task.problem.shape))
    assert ev.valid and ev.value == pytest.approx(0.220, abs=0.005) and ev.reward == ev.value
    for text in ("baselines on this split", "identity 0.000/0.000/0.000", "perfect 1.000/1.000/1.000",
                 "zeros 0.220/0.983/", "train_sq 0.410/0.983/", "hardened"):
        assert text in ev.message
    p = task.problem  # the hardened figures, recomputed independently (tests/tasks/denoising/_reference.py)
    for name, D in (("zeros", np.zeros(p.shape)), ("train_sq", 1e-9 * p.train**2)):
        want = hardened_norm(p, D)
        assert want < 0  # neither does any denoising: both score below "no denoising"
        assert printed_hardened(ev.message, name) == pytest.approx(want, abs=5e-4), name
    assert {"identity", "perfect", "zeros", "train_sq"} <= set(ev.metrics["baselines"])
    assert ev.metrics["scores"]["poisson_norm"] == pytest.approx(0.983, abs=0.005)


def test_identity_fails_the_poisson_gate_and_perfect_is_a_leak(task):
    ev = task.verify(task.problem.train.copy())
    assert not ev.valid and "Poisson gate" in ev.message
    ev = task.verify(task.problem.test.copy())
    assert not ev.valid and "leak" in ev.message
    ev = task.verify(task.problem.test + 0.5 * task.problem.train)  # "mostly the answer"
    assert not ev.valid


def test_the_hardened_metric_does_not_reward_trivial_transforms(task):
    hard = get_task("denoising", metric="hardened")
    p = hard.problem
    assert hardened_norm(p, np.zeros(p.shape)) < 0  # (independently computed) below "no denoising"
    assert hard.verify(np.zeros(p.shape)).value == 0.0  # so clipped to 0
    assert hard.verify(1e-9 * p.train**2).value == 0.0
    ident = hard.verify(p.train.copy())
    assert ident.valid and ident.value == 0.0  # no Poisson gate under this metric
    paper = task.verify(1e-9 * p.train**2)
    assert paper.valid and paper.value == pytest.approx(0.410, abs=0.005)  # the paper's metric: 0.41


def test_prompt_parse_and_root(task):
    roots = task.initial_states(2, np.random.default_rng(0))
    assert len(roots) == 2 and roots[0].artifact["code"] == ROOT_SOURCE
    assert roots[0].value == pytest.approx(0.21, abs=0.03)  # MAGIC-like root, MSE_norm on celltypist
    text = task.prompt(roots[0])[0]["content"]
    for part in ("magic_denoise", "Poisson is a HARD CONSTRAINT", "(559, 9810)", "Current metrics",
                 "def _diffusion_operator", "random_state=42", "improved `magic_denoise`"):
        assert part in text
    cand = task.parse("Sure.\n```python\ndef magic_denoise(X, **kw):\n    return X\n```", roots[0])
    prog = cand.program
    assert prog.entry == "magic_denoise" and prog.args["X"] is task.problem.train
    assert prog.args["random_state"] == 42 and prog.limits.result_mb * 2**20 > task.problem.train.nbytes
    assert "test" not in prog.args and not prog.inject  # the held-out split never leaves
    assert task.parse("no code", roots[0]).error


def test_a_root_the_paper_gate_rejects_has_code_but_no_value():
    t = DenoisingTask(dataset="synthetic", n_cells=150, n_genes=600)
    roots = t.initial_states(1, np.random.default_rng(0))
    assert roots[0].artifact["code"] == ROOT_SOURCE and roots[0].value is None and roots[0].reward is None
    assert "Poisson gate" in roots[0].metrics["message"]  # Poisson_norm 0.83 on this small matrix


def test_a_program_that_reads_the_source_data_is_never_rewarded(task, sandbox_run, tmp_path):
    """The sandbox hides tttd's private cache where it runs the candidate under another uid; if
    the program can read the source counts anyway, the leak ceiling rejects the result."""
    from tttd.tasks.denoising.data import cache_dir

    source = (
        "import numpy as np\n"
        "def magic_denoise(X, **kw):\n"
        f"    z = np.load({str(cache_dir() / 'celltypist-1.7.1-sample.npz')!r})\n"
        "    full = np.zeros(tuple(z['shape']))\n"
        "    rows = np.repeat(np.arange(full.shape[0]), np.diff(z['indptr']))\n"
        "    full[rows, z['indices']] = z['data']\n"
        "    full = full[:, full.sum(axis=0) > 0]\n"
        "    full = full[:, np.random.RandomState(0).binomial(full.astype(np.int64), 0.9).sum(axis=0) > 0]\n"
        "    return np.maximum(full - X, 0)\n"
    )
    state = task.initial_states(1, np.random.default_rng(0))[0]
    cand = task.parse("```python\n" + source + "```", state)
    ev = task.evaluate(cand, sandbox_run(cand.program), state)
    assert not ev.valid
    assert ev.status != "ok" or "leak" in ev.message


def test_the_functions_shown_in_the_prompt_compute_the_scores():
    from tttd.tasks.denoising import metrics as M
    from tttd.tasks.denoising.task import EVALUATION_SOURCE, HARDENED_SOURCE

    ns = {"np": np}
    exec(EVALUATION_SOURCE + HARDENED_SOURCE, ns)  # noqa: S102 (our own constant source)
    rng = np.random.default_rng(5)
    train = rng.poisson(2.0, size=(12, 30)).astype(float)
    test = rng.poisson(0.3, size=(12, 30)).astype(float)
    test[3] = 0.0  # a cell with no held-out molecules
    D = rng.random((12, 30))
    D[4] = 0.0
    assert ns["evaluate_mse"](test, D) == pytest.approx(M.mse(test, D), rel=1e-12)
    assert ns["evaluate_poisson"](test, D, train) == pytest.approx(M.poisson_paper(test, D, train.sum()), rel=1e-12)
    assert ns["evaluate_deviance"](test, D, train) == pytest.approx(
        M.count_deviance(test, D, train.sum(axis=1), 0.1), rel=1e-12)


def test_paper_preset_trains_on_pancreas_with_the_papers_limits():
    from tttd.config import resolve_config
    from tttd.build import build_task

    cfg = resolve_config(get_task("denoising").presets, preset="paper", flag_values={"task": "denoising"})
    assert cfg.task_options == {"dataset": "pancreas", "split_seed": 42, "reward": "inverse_mse"}
    # the authors' only denoising launch (docs/launching.md): 2 CPUs, CLI-default 1000 s timeout
    assert (cfg.eval_timeout_s, cfg.cpus_per_eval, cfg.steps, cfg.group_size) == (1000.0, 2, 50, 64)
    t = build_task(cfg)  # lazy: nothing is downloaded until the data is needed
    assert (t.dataset, t.split_seed, t.eval_timeout_s, t.cpus, t.memory_mb) == ("pancreas", 42, 1000.0, 2, 16384)
    assert t.reward_kind == "inverse_mse" and "1 / MSE" in t.reward_description()


def test_missing_data_is_a_one_line_error_before_anything_is_written(monkeypatch, tmp_path):
    import io

    from tttd.config import ConfigError, resolve_config
    from tttd.loop import Discovery
    from tttd.tasks.denoising import data as D
    from tttd.cli.verify import verify_main

    def offline(**_):
        raise D.DataError("cannot download https://example.invalid/pbmc: no network")

    monkeypatch.setitem(D.LOADERS, "pbmc", offline)
    prog = tmp_path / "p.py"
    prog.write_text("def magic_denoise(X, **kw):\n    return X\n")
    out, err = io.StringIO(), io.StringIO()
    assert verify_main("denoising", str(prog), task_options={"dataset": "pbmc"}, out=out, err=err) == 2
    assert err.getvalue().count("\n") == 1 and "no network" in err.getvalue() and out.getvalue() == ""

    class NoPolicy:
        trainable = False

    cfg = resolve_config(flag_values=dict(task="denoising", task_options={"dataset": "pbmc"}, steps=1,
                                          out=str(tmp_path / "run")))
    run = Discovery(cfg, tmp_path / "run", policy=NoPolicy())
    with pytest.raises(ConfigError, match="no network"):
        run.start()
    assert not (tmp_path / "run").exists()


def test_inverse_mse_reward_as_the_authors_value_stays_mse_norm(task):
    """Issue 20: with reward=inverse_mse (the paper preset) the reward is 1 / raw MSE and the
    value (archive, prompts, reports) stays clip(MSE_norm); failures get 0."""
    authors = DenoisingTask(reward="inverse_mse")  # same (cached) celltypist split as ``task``
    zeros = np.zeros(task.problem.shape)
    ours, theirs = task.verify(zeros), authors.verify(zeros)
    assert ours.valid and theirs.valid and theirs.value == ours.value == ours.reward
    assert theirs.reward == pytest.approx(1.0 / theirs.metrics["mse"], rel=1e-12)
    assert theirs.reward != theirs.value
    bad = authors.verify(np.full(task.problem.shape, -1.0))
    assert not bad.valid and bad.reward == 0.0
    with pytest.raises(ValueError, match="reward"):
        DenoisingTask(reward="mse")


def test_prompt_lists_importable_packages_and_key_insights(task, monkeypatch):
    import importlib.util
    import sys

    import tttd.tasks.denoising.task as T

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name in ("sklearn", "scanpy") else
                        (None if name in ("graphtools", "scprep") else real(name, *a)))
    assert T.candidate_packages() == ["numpy", "scipy", "scikit-learn", "scanpy"]
    text = task.prompt(task.initial_states(1, np.random.default_rng(0))[0])[0]["content"]
    assert "You may import numpy, scipy, scikit-learn, scanpy (nothing else is installed)" in text
    assert "What is known to work" in text and "square-root" in text
    assert f"{task.budget_s}s" in text and "keep within the budget" in text
    monkeypatch.undo()
    T.candidate_packages()
    assert not {"graphtools", "scprep", "magic"} & set(sys.modules)  # detected, never imported
