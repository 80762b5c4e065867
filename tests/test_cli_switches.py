"""Every command-line flag and config-file key reaches the run's configuration (issue 25).

The run itself is replaced by a recorder (``tttd.cli.common.execute``), so these tests need no model;
what the options then do in the loop and trainer is tested in tests/test_switches.py and
tests/policy/test_local_options.py.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

from tttd import cli
from tttd.config import RunConfig


def _summary(out):
    return {"best_value": 1.0, "best_reward": 1.0, "best_step": 0, "steps": 1, "samples": 1, "valid": 1,
            "seconds": 0.0, "run_dir": str(out), "stopped": None}


@pytest.fixture
def executed(monkeypatch, tmp_path):
    """Runs ``tttd`` in tmp_path with the run replaced by a recorder of (config, keyword args)."""
    calls = []

    def fake_execute(cfg, out, label, quiet, **kw):
        calls.append((cfg, kw))
        return _summary(out)

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("tttd.cli.common.execute", fake_execute)
    monkeypatch.setattr("tttd.policy.tiny.build_tiny_model", lambda *a, **k: None)
    # demo has one metric, so any --rule but primary is refused; how a rule is checked against a
    # task is tests/test_objectives.py's: here only that the value arrives
    monkeypatch.setattr("tttd.task.Task.use_rule", lambda self, text: None)
    # "some/model" is nowhere: the preflight's one-line refusal is tests/policy/test_models.py's
    monkeypatch.setattr("tttd.policy.models.check", lambda model: None)
    return calls


RUN_FLAGS = {  # flag: (value on the command line, RunConfig field, value in the config)
    "--backend": ("local", "backend", "local"),
    "--model": ("some/model", "model", "some/model"),
    "--preset": ("paper", "preset", "paper"),
    "--steps": ("3", "steps", 3),
    "--groups": ("2", "groups", 2),
    "--group-size": ("5", "group_size", 5),
    "--lr": ("0.0125", "learning_rate", 0.0125),
    "--temperature": ("0.6", "temperature", 0.6),
    "--max-tokens": ("17", "max_tokens", 17),
    "--kl-coef": ("0.25", "kl_coef", 0.25),
    "--reuse": ("greedy", "reuse", "greedy"),
    "--rule": ("metric:quality", "rule", "metric:quality"),
    "--objective": ("mean", "objective", "mean"),
    "--executor": ("ray", "executor", "ray"),
    "--workers": ("2", "workers", 2),
    "--task-option": ("root_digits=9", "task_options", {"root_digits": 9}),
    "--backend-option": ("device=cpu", "backend_options", {"device": "cpu"}),
    "--chat-template-option": ("reasoning_effort=low", "chat_template_kwargs", {"reasoning_effort": "low"}),
    "--engine": ("hf", "engine", "hf"),
    "--async-steps": ("2", "async_steps", 2),
    "--out": ("elsewhere", "out", "elsewhere"),
    "--seed": ("5", "seed", 5),
    "--log": ("tensorboard", "log", "tensorboard"),
    "--max-usd": ("2.5", "max_usd", 2.5),
    "--max-samples": ("300", "max_samples", 300),
    "--max-hours": ("1.5", "max_hours", 1.5),
    "--visit-counting": ("rollout", "visit_counting", "rollout"),
}
SWITCHES = {"--no-train": ("train", False), "--require-isolation": ("require_isolation", True),
            "--forced-answer": ("forced_answer", True), "--allow-weak-isolation": ("allow_weak_isolation", True)}


def test_every_run_flag_reaches_the_config(executed):
    argv = ["run", "demo", "--quiet", "--json"]
    for flag, (text, _, _) in RUN_FLAGS.items():
        argv += [flag, text]
    argv += list(SWITCHES)
    assert cli.main(argv) == 0
    (cfg, _), = executed
    for flag, (_, field, want) in RUN_FLAGS.items():
        assert getattr(cfg, field) == want, flag
        assert want != getattr(RunConfig(), field) or field == "backend", f"{flag}: pick a non-default value"
    for flag, (field, want) in SWITCHES.items():
        assert getattr(cfg, field) == want != getattr(RunConfig(), field), flag


def test_every_config_file_key_reaches_the_config(executed, tmp_path):
    """A config file may set every RunConfig field (flags' spellings too); each must arrive."""
    values = dict(
        backend="local", model="m", backend_options={"device": "cpu"}, chat_template_kwargs={"k": "v"},
        steps=4, groups=3, group_size=7, learning_rate=0.02, lora_rank=4, full_finetune=True,
        temperature=0.9, max_tokens=99, objective="entropic-fixed", beta=3.0, kl_coef=0.5, clip=0.2,
        train=False, reuse="none", rule="weighted:a=1@0..1", puct_c=2.5, topk_children=3, archive_size=50, visit_counting="rollout",
        executor="ray", workers=3, cpus_per_eval=2, eval_timeout_s=12.0, eval_memory_mb=512,
        sample_chunk_groups=1, seed=8, out="o", preset="demo", max_usd=1.0, max_samples=40, max_hours=2.0,
        prices={"local:m": {"sampled": 1.0}}, log="tensorboard", engine="hf", require_isolation=True,
        forced_answer=True, allow_weak_isolation=True, task_options={"root_digits": 10},
        async_steps=1,
    )
    missing = {f.name for f in dataclasses.fields(RunConfig)} - set(values)
    assert missing == {"task"}, f"add the new config keys to this test: {sorted(missing - {'task'})}"
    path = tmp_path / "run.json"
    path.write_text(json.dumps(values))
    assert cli.main(["run", "demo", "--config", str(path), "--quiet"]) == 0
    (cfg, _), = executed
    defaults = RunConfig()
    for key, want in values.items():
        assert getattr(cfg, key) == want, key
        assert key == "backend" or getattr(defaults, key) != want, f"{key}: pick a non-default value"


def test_resume_flags_reach_the_run(executed, tmp_path):
    from tests.fakes import FakeDigitPolicy
    from tttd.config import resolve_config
    from tttd.loop import Discovery

    run = Discovery(resolve_config(flag_values=dict(task="demo", steps=2, groups=2, group_size=3, workers=1)),
                    tmp_path / "r", policy=FakeDigitPolicy())
    run.start()
    run.cfg.steps = 1
    run.run()
    assert cli.main(["resume", str(tmp_path / "r"), "--steps", "6", "--max-samples", "50", "--max-hours", "3",
                     "--accept-task-change", "--quiet"]) == 0
    (cfg, kw), = executed
    assert (cfg.steps, cfg.max_samples, cfg.max_hours) == (6, 50, 3.0)
    assert kw["resume"] is True and kw["accept_task_change"] is True


def test_demo_flags_reach_the_run(executed, tmp_path):
    assert cli.main(["demo", "--no-train", "--seed", "4", "--steps", "2", "--engine", "hf",
                     "--out", str(tmp_path / "d"), "--quiet", "--json"]) == 0
    (cfg, _), = executed  # --no-train: the frozen run only
    assert (cfg.train, cfg.seed, cfg.steps, cfg.engine, cfg.out) == (False, 4, 2, "hf", str(tmp_path / "d"))
    executed.clear()
    assert cli.main(["demo", "--seed", "3", "--out", str(tmp_path / "e"), "--quiet", "--json"]) == 0
    assert [(c.train, c.seed) for c, _ in executed] == [(True, 3), (False, 3)]


def test_the_backend_flag_reaches_the_config(executed):
    """(The run-flags test uses the local backend, the default: another one must arrive too.)"""
    assert cli.main(["run", "demo", "--backend", "api", "--backend-option", "base_url=http://127.0.0.1:9/v1",
                     "--model", "m", "--no-train", "--quiet"]) == 0
    (cfg, _), = executed
    assert cfg.backend == "api" != RunConfig().backend


@pytest.mark.parametrize("preset", ["demo", "paper"])
def test_a_preset_sets_its_values(executed, preset):
    """Every value of the named preset arrives (the task's own preset of that name wins)."""
    from tttd.config import PRESETS
    from tttd.registry import get_task

    assert cli.main(["run", "demo", "--preset", preset, "--model", "some/model", "--quiet"]) == 0
    (cfg, _), = executed
    want = {**PRESETS[preset], **get_task("demo").presets.get(preset, {})}
    assert {k: getattr(cfg, k) for k in want} == want
    assert any(getattr(RunConfig(), k) != v for k, v in want.items())  # the preset changes something
