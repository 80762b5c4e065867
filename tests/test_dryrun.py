"""``tttd run --dry-run`` and ``tttd prompt``: every built-in task and the example task, with no
sampling (building a policy fails the test) and no run directory (the working folder stays empty)."""

import json
from pathlib import Path

import pytest

import tttd.loop
from tttd.cli import main
from tttd.registry import list_tasks

EXAMPLE = str(Path(__file__).resolve().parents[1] / "examples" / "spread_points.py")
list_tasks()  # the built-in tasks (not tasks other test modules registered)
TASKS = sorted(n for n, e in __import__("tttd.registry", fromlist=["_REGISTRY"])._REGISTRY.items()
               if e.origin.startswith("tttd.tasks"))


@pytest.fixture
def no_policy(monkeypatch, tmp_path):
    def refuse(*a, **k):
        raise AssertionError("a dry run must not load or sample a policy")

    monkeypatch.setattr(tttd.loop, "build_policy", refuse)
    monkeypatch.setattr("tttd.policy.backend_class", refuse)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_builtins_listed():
    assert {"demo", "erdos", "ac1", "ac2", "circle_packing_26", "circle_packing_32"} <= set(TASKS)


@pytest.mark.parametrize("task", TASKS + [EXAMPLE])
def test_dry_run(task, no_policy, capsys):
    small = {"ahc039": ["cases=0-1"], "ahc058": ["cases=0-1"],  # a cheap subset of the cases
             "denoising": ["dataset=synthetic", "n_cells=200", "n_genes=1000", "metric=hardened"]}
    opts = [a for o in small.get(task, []) for a in ("--task-option", o)]
    assert main(["run", task, "--dry-run", "--json", "--steps", "3", "--groups", "2", "--group-size", "4",
                 "--max-tokens", "100", *opts]) == 0
    info = _json(capsys)
    assert list(no_policy.iterdir()) == []  # no run directory, nothing written
    assert info["prompt"] and info["prompt"][0]["content"]
    est = info["estimate"]
    assert est["samples"] == 3 * 2 * 4 == est["evaluations_max"]
    assert est["sampled_tokens_max"] == 24 * 100
    assert est["eval_cpu_seconds_max"] > 0
    root = info["root_verification"]
    assert root["empty"] or root.get("program_only") or (root["valid"] and root["matches"])
    ex = info["example"]
    if task != EXAMPLE:  # every built-in task gives an example answer that parses and verifies
        assert ex["parse_error"] is None, ex
        if ex["evaluation"]["status"] != "needs_gpu":  # TriMul on a machine without a GPU
            assert ex["evaluation"]["valid"], ex
    assert any("1M-parameter toy" in w for w in info["warnings"]) == (task not in ("demo",))


def test_dry_run_text_and_price(no_policy, capsys, tmp_path):
    cfg = tmp_path / "prices.toml"
    cfg.write_text('[prices."api:my-model"]\nprompt = 1.0\nsampled = 2.0\n')
    assert main(["run", "demo", "--dry-run", "--backend", "api", "--model", "my-model", "--config", str(cfg),
                 "--steps", "2", "--groups", "1", "--group-size", "10", "--max-tokens", "50",
                 "--max-usd", "1", "--max-samples", "10"]) == 0
    cfg.unlink()
    out = capsys.readouterr().out
    assert "== root prompt (demo" in out and "== example answer" in out and "== verifier on the root" in out
    assert "20 samples" in out and "cost: <= $0.00" in out  # 20 x 50 sampled tokens at $2/M = $0.002
    assert "the api backend is frozen" in out and "stops the run after 1 of 2 steps" in out
    assert "nothing was sampled" in out
    assert list(no_policy.iterdir()) == []


def test_paper_preset_with_the_tiny_model_on_this_machine_warns(no_policy, capsys):
    assert main(["run", "erdos", "--preset", "paper", "--dry-run", "--json"]) == 0
    warnings = " ".join(_json(capsys)["warnings"])
    assert "26,000 (from the settings) exceeds the tiny model's 4,096-token context: clamped" in warnings
    assert "1M-parameter toy" in warnings


@pytest.mark.parametrize("task", ["demo", "circle_packing_26", EXAMPLE])
def test_prompt_command(task, no_policy, capsys):
    assert main(["prompt", task]) == 0
    out = capsys.readouterr().out
    assert "== root prompt" in out and "run size" not in out
    assert list(no_policy.iterdir()) == []


def test_paper_preset_tinker_dry_run_prints_clamp_and_template_options(no_policy, capsys):
    """Issue 15: a paper-preset dry run of the tinker backend shows the clamped token budget and
    the chat-template options in use (nothing contacts a service)."""
    pytest.importorskip("tinker")
    assert main(["run", "erdos", "--dry-run", "--preset", "paper", "--backend", "tinker",
                 "--model", "openai/gpt-oss-120b"]) == 0
    out = capsys.readouterr().out
    assert "== backend (tinker)" in out
    assert "min(26000, 32768 - prompt - 50)" in out and "this prompt:" in out
    assert "reasoning_effort='high'" in out
    assert list(no_policy.iterdir()) == []


def test_paper_preset_dry_run_shows_forced_answer_visits_reward_and_cpus(no_policy, capsys):
    """Issue 20: the settings where the authors' code and tttd's defaults differ are shown."""
    import shutil

    if shutil.which("g++") is None:
        pytest.skip("needs g++ (the AHC example answer is compiled)")
    assert main(["run", "ahc058", "--preset", "paper", "--dry-run", "--task-option", "cases=0-1"]) == 0
    out = capsys.readouterr().out
    assert "== settings where the authors' code and tttd's defaults differ" in out
    assert "forced final answer: on, but this chat template has no thinking/answer split" in out  # tiny model
    assert "PUCT visits: one per rollout" in out and "a group of 64 adds 64" in out
    assert "reward: mean case score / 3e+06 when every case is accepted" in out
    assert "CPUs: 2 per case" in out
    assert list(no_policy.iterdir()) == []


def test_settings_lines_by_backend_and_defaults():
    from tttd.config import resolve_config
    from tttd.cli.dryrun import paper_settings
    from tttd.registry import get_task

    erdos = get_task("erdos")
    plain = paper_settings(resolve_config(flag_values={"task": "erdos"}), erdos)
    assert plain["forced final answer"] == "off" and plain["PUCT visits"].startswith("one per group")
    assert plain["reward"].startswith("1 / value") and plain["CPUs"] == "1 per evaluation (cpus_per_eval)"
    tinker = paper_settings(resolve_config(erdos.presets, preset="paper", flag_values={
        "task": "erdos", "backend": "tinker", "model": "openai/gpt-oss-120b"}), erdos)
    assert tinker["forced final answer"].startswith("on (acts when the model's chat template")
    assert tinker["CPUs"] == "2 per evaluation (cpus_per_eval)"
    den = get_task("denoising", dataset="synthetic", reward="inverse_mse")  # no data loaded for this
    lines = paper_settings(resolve_config(flag_values={"task": "denoising"}), den)
    assert lines["reward"].startswith("1 / MSE (raw MSE; 0 for a failure)")
    assert "reported value clip(MSE_norm)" in lines["reward"]


def test_has_gpu_sees_a_rocm_gpu(tmp_path):
    import shutil

    from tttd.cli.dryrun import has_gpu

    if shutil.which("nvidia-smi"):
        pytest.skip("nvidia-smi is present")
    dev, nodes = tmp_path / "dev", tmp_path / "sys/class/kfd/kfd/topology/nodes"
    dev.mkdir()
    (nodes / "0").mkdir(parents=True)
    (nodes / "0/properties").write_text("simd_count 0\n")  # a CPU node only
    (dev / "kfd").write_text("")
    assert not has_gpu(str(dev), str(tmp_path / "sys"))
    (nodes / "1").mkdir()
    (nodes / "1/properties").write_text("simd_count 1216\ndrm_render_minor 128\n")
    assert has_gpu(str(dev), str(tmp_path / "sys"))
    (dev / "kfd").unlink()
    assert not has_gpu(str(dev), str(tmp_path / "sys"))
    (dev / "nvidia0").write_text("")
    assert has_gpu(str(dev), str(tmp_path / "sys"))
