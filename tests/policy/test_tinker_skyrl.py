"""LIVE: tttd's tinker backend against an open Tinker-compatible server (SkyRL ``skyrl`` 0.3.0,
JAX on the CPU, a tiny random Qwen3 built locally), through the old SDK generation it needs
(``tinker==0.24.1``; newer SDKs refuse its JSON results).

The server, that SDK and tttd's dependencies live in their own virtual environment (skyrl pins
transformers/peft versions that clash with ours): ``.ci/run`` makes it at ``.venv-skyrl``; set
``TTTD_SKYRL_PYTHON`` to use another one. ``skyrl/drive.py`` runs there and reports what it saw;
this test checks it: sampling with log-probs and per-group seeds, the end-of-turn stop, the
context clamp, forward_backward with the importance-sampling loss (+ KL to the base model),
optim_step, save on the service every 2nd step, and resume in a fresh policy (no throwaway
client) with the same weights, step and RNG. Skipped, with the reason, when that environment is
missing. Measured here: ~2.5-4 min wall on a busy 2-core machine (most of it the server's start
and JAX compilation), ~1 min of CPU.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def skyrl_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The drivers' environment: this checkout on PYTHONPATH, JAX on the CPU, and one persistent
    JAX compilation cache for the whole test session. Most of a server's start is XLA compiling
    the tiny model's sample/train functions (~20-35 s each on 2 cores); both SkyRL tests and the
    fault test's restarted server compile the same functions, so the later servers load them
    from the cache. Test tooling only: the server, the requests and what is checked are the same."""
    cache = tmp_path_factory.getbasetemp() / "skyrl-jax-cache"
    cache.mkdir(exist_ok=True)
    return dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu", JAX_COMPILATION_CACHE_DIR=str(cache),
                JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0", JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")


def _skyrl_python() -> Path | None:
    for cand in (os.environ.get("TTTD_SKYRL_PYTHON"), ROOT / ".venv-skyrl" / "bin" / "python"):
        if cand and Path(cand).is_file():
            return Path(cand)
    return None


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_tinker_backend_against_skyrl_server(tmp_path_factory):
    py = _skyrl_python()
    if py is None:
        pytest.skip("no SkyRL server environment (.venv-skyrl, made by .ci/run; or TTTD_SKYRL_PYTHON)")
    check = subprocess.run([str(py), "-c", "import skyrl.tinker, tinker"], capture_output=True, text=True)
    if check.returncode != 0:
        pytest.skip(f"the SkyRL environment at {py} cannot import skyrl/tinker: {check.stderr[-300:]}")
    env = skyrl_env(tmp_path_factory)
    proc = subprocess.run([str(py), str(ROOT / "tests/policy/skyrl/drive.py")], capture_output=True,
                          text=True, env=env, timeout=840)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["logprobs_aligned"]
    assert out["groups_distinct"], "identical prompts with different seeds gave identical groups"
    assert out["seed_repeats"], "the same seed should repeat the group on this server"
    assert out["stop_ids_have_im_end"]
    assert out["budget_clamped"] == 512 - out["prompt_len"] - 50  # context 512 in drive.py
    assert out["sampler_vs_sample_logprob_gap"] < 1e-3  # sampler and compute_logprobs agree
    assert out["kl_policy_base_finite"]
    assert abs(out["kl_sample_train_v1"]) < 1e-3  # trainer and sampler log-probs agree
    before, after = out["logprob_before_after"]
    assert after > before, "+1-advantage completions did not become more likely"
    assert out["first_save_incomplete"] and out["second_save_complete"]
    assert out["saved_path"].startswith("tinker://")
    assert out["resume_created_no_client_before_load"]
    assert out["resumed_step"] == 2 and out["resumed_rng_same"]
    assert out["restored_logprob"] == pytest.approx(after, abs=1e-4)  # same weights after resume
    assert out["train_after_resume_tokens"] > 0
    assert out["incomplete_load_refused"]
    # issue 20: the forced final answer through the server (a Harmony-style template)
    assert out["fa_continued"] >= 1, "no sample ran out of its budget"
    assert out["fa_phase1_same"] and out["fa_layout_ok"], out
    assert out["fa_phase2_logprob_gap"] < 1e-3  # phase 2 continued the same sequence
    assert out["fa_kl_finite"] and out["fa_train_tokens"] > 0
    # issue 32: a loop run's ledger is the backend's own usage (KL-reference requests included)
    assert out["loop_ledger"] == out["loop_usage"]
    trained = out["loop_trained_steps"]  # a trained step: 1 sampling + 4 KL-reference + fwd + optim requests
    assert out["loop_ledger"]["requests"] >= 2 + trained * 6 and out["loop_ledger"]["sampled_tokens"] > 0, out

