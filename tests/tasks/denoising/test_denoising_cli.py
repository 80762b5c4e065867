"""``tttd verify denoising prog.py`` and a short ``tttd run denoising`` on CPU with the tiny model."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys

import numpy as np
import pytest


def run_cli(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "tttd.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def test_verify_a_program_on_the_celltypist_sample(celltypist_counts, tmp_path, capsys):
    prog = tmp_path / "prog.py"
    prog.write_text("def magic_denoise(X, **kwargs):\n    return 1e-9 * X ** 2\n")
    done = run_cli("verify", "denoising", str(prog), "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    line = json.loads(done.stdout)
    assert line["valid"] and line["value"] == pytest.approx(0.410, abs=0.005)  # the sharpening trick
    for text in ("baselines on this split", "zeros 0.220/0.983/", "hardened"):
        assert text in line["message"]
    from tests.tasks.denoising._reference import hardened_norm, printed_hardened
    from tttd.tasks.denoising.problem import Problem

    problem = Problem(celltypist_counts, split_seed=0)  # the task's default split
    want = hardened_norm(problem, np.zeros(problem.shape))
    assert printed_hardened(line["message"], "zeros") == pytest.approx(want, abs=5e-4)
    # in-process from here (the problem and the root's output are cached per process)
    from tttd.cli import main

    assert main(["verify", "denoising", str(prog), "--task-option", "metric=hardened"]) == 0
    assert "VALID  value 0.0" in capsys.readouterr().out  # clipped: its deviance_norm is below 0
    bad = tmp_path / "bad.py"
    bad.write_text("def magic_denoise(X, **kwargs):\n    return X[:, :10]\n")
    assert main(["verify", "denoising", str(bad), "--json"]) == 1
    assert "shape" in json.loads(capsys.readouterr().out)["message"]
    assert main(["verify", "denoising", str(prog), "--task-option", "dataset=nope"]) == 2
    assert "unknown denoising dataset" in capsys.readouterr().err


@pytest.mark.slow
def test_two_steps_with_the_tiny_model(tiny_model_dir, tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "run"
    opts = ["--task-option", "dataset=synthetic", "--task-option", "n_cells=200",
            "--task-option", "n_genes=1000", "--task-option", "metric=hardened"]
    done = run_cli("run", "denoising", "--backend", "local", "--model", str(tiny_model_dir), "--steps", "2",
                   "--groups", "1", "--group-size", "2", "--max-tokens", "32", "--seed", "0",
                   "--out", str(out), "--json", "--quiet", *opts)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["steps"] == 2 and summary["samples"] == 4
    best = json.loads((out / "best" / "best.json").read_text())
    assert "baselines on this split" in best["message"] and "--task-option dataset=synthetic" in best["verify"]
    again = run_cli(*shlex.split(best["verify"])[1:], "--json")
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads(again.stdout)["value"] == pytest.approx(best["value"], abs=1e-6)
