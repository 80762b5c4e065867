"""Data-parallel training under torchrun (issue 34): 2 ranks on this CPU with gloo.

- ``torchrun --nproc-per-node 2 -m tttd run ...`` equals the one-process ``tttd run ...``: the same
  adapter (bit for bit here; the issue asks 1e-6), archive, best, rollouts and metrics. The
  digit-fraction test task trains every step (the demo task leaves every group invalid on the
  tests' barely pretrained model, so it never trains) and ``micro_batch_tokens=2000`` gives two
  micro-batches in the later steps, one per rank (``--kl-coef 0.1``: the KL-to-base shift
  too, with base log-probs computed on each rank): rank 1 samples half the groups every step
  and trains its micro-batch (``TTTD_DP_TRACE`` shows it). The demo command itself is run both ways too.
- rank 1 killed with SIGKILL in its second train command: the run stops with one tttd line naming
  rank 1, and ``tttd resume`` (one process) continues to the uninterrupted run exactly;
- a hanging rank is reported after ``TTTD_DP_TIMEOUT_S``; api/tinker under torchrun are refused.

Both sides run with ``OMP_NUM_THREADS=1`` (torchrun's default for its workers): bit-equality on a
CPU needs the same kernels and thread count in both runs. ``--standalone`` picks a free port and
a fresh rendezvous id, so parallel test sessions do not clash.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tttd.policy import distributed
from tttd.policy import dp_wire as wire
from tttd.types import Sample, TrainDatum

ROOT = Path(__file__).resolve().parents[2]
TASK = str(ROOT / "tests" / "digit_fraction_task.py")
STEPS = 3


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TTTD_DP_") and k not in ("RANK", "WORLD_SIZE")}
    env.update(OMP_NUM_THREADS="1", TTTD_DP_DEAD_AFTER_S="4", PYTHONPATH=str(ROOT), **extra)
    return env


def _tttd(*args: str, ranks: int = 1, timeout: float = 300, **extra: str) -> subprocess.CompletedProcess:
    launch = [sys.executable, "-m", "tttd"] if ranks == 1 else \
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks), "-m", "tttd"]
    return subprocess.run([*launch, *args], capture_output=True, text=True, timeout=timeout, env=_env(**extra),
                          cwd=str(ROOT))


def _args(model: Path, out: Path, steps: int = STEPS) -> list[str]:
    return ["run", TASK, "--model", str(model), "--steps", str(steps), "--max-tokens", "16", "--kl-coef", "0.1",
            "--backend-option", "micro_batch_tokens=2000",
            "--out", str(out), "--quiet", "--json"]


def _tttd_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("tttd:")]


def _adapter(run: Path):
    from safetensors.torch import load_file

    latest = run / "checkpoint" / (run / "checkpoint" / "LATEST").read_text().strip()
    return load_file(str(latest / "policy" / "adapter" / "adapter_model.safetensors"))


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def assert_same(a: Path, b: Path, trained: bool = True, close: tuple[str, ...] = ()) -> None:
    """Runs ``a`` and ``b`` are the same run; metrics named in ``close`` agree to 1e-6 relative only."""
    wa, wb = _adapter(a), _adapter(b)
    assert wa.keys() == wb.keys()
    diff = max(float((wa[k] - wb[k]).abs().max()) for k in wa)
    assert diff <= 1e-6, diff
    assert json.loads((a / "archive.json").read_text()) == json.loads((b / "archive.json").read_text())
    best_a, best_b = (json.loads((r / "best" / "best.json").read_text()) for r in (a, b))
    best_a.pop("verify"), best_b.pop("verify")  # names its own run directory
    assert best_a == best_b
    assert _jsonl(a / "rollouts.jsonl") == _jsonl(b / "rollouts.jsonl")

    def steady(run: Path) -> list[dict]:
        # "requests" counts engine calls: each rank's share of the groups is its own call (issue 32's ledger)
        return [{k: v for k, v in m.items() if not k.startswith("seconds") and k not in ("spend", "requests")}
                for m in _jsonl(run / "metrics.jsonl")]

    for ma, mb in zip(steady(a), steady(b)):
        for k in close:
            if ma.get(k) is not None and mb.get(k) is not None:
                assert ma[k] == pytest.approx(mb[k], rel=1e-6, abs=1e-9), (k, ma[k], mb[k])
                ma[k] = mb[k]
        assert ma == mb, {k: (ma[k], mb.get(k)) for k in ma if ma[k] != mb.get(k)}
    assert len(steady(a)) == len(steady(b))
    if trained:
        assert all(m["trained"] and m["loss"] is not None and m["kl_policy_base"] is not None for m in steady(a))


# ------------------------------------------------------------------------------ pure parts


def test_shards_are_contiguous_balanced_runs_of_micro_batches():
    for weights, ranks in [([5, 5], 2), ([1, 9, 1, 1, 1, 1], 2), ([3] * 7, 3), ([2], 4), ([4, 1, 1], 3), ([], 2)]:
        runs = distributed.shard_chunks(weights, ranks)
        assert len(runs) == ranks
        assert [k for run in runs for k in run] == list(range(len(weights)))  # contiguous, in order, all
        if len(weights) >= ranks:
            assert all(runs)  # every rank has a micro-batch
    assert distributed.shard_chunks([1, 9, 1, 1, 1, 1], 2) == [[0, 1], [2, 3, 4, 5]]  # 10 vs 4 beats 1 vs 13
    assert distributed.shard_chunks([2], 4) == [[0], [], [], []]  # never split finer than one process


def test_wire_round_trip_is_exact():
    s = Sample([1, 2, 3], [70000, 5], [-0.1, -1e-30], "a\u00e9", "length", [1.0, 0.0])
    d = TrainDatum([1], [2, 3], [-0.3, 0.1 + 0.2], [1 / 3, -2.5], None)
    raw = wire.encode({"g": wire.sample_rows([[s]]), "d": wire.data_rows([d])})
    back = wire.decode(raw)
    assert wire.samples_from(back["g"]) == [[s]] and wire.data_from(back["d"]) == [d]
    assert b"pickle" not in raw and raw.startswith(b"{")


def test_launch_environment(monkeypatch):
    from tttd.__main__ import run_dir
    from tttd.config import ConfigError

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert not distributed.launched() and distributed.refuse_backend("tinker") is None
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert distributed.launched() and distributed.refuse_backend("local") is None
    assert "tinker backend cannot use them" in distributed.refuse_backend("tinker")
    monkeypatch.setenv(distributed.ENV_TIMEOUT, "soon")
    with pytest.raises(ConfigError, match="TTTD_DP_TIMEOUT_S"):
        distributed.timeout_s()
    assert run_dir(["run", "demo", "--out", "A"]) == "A" and run_dir(["resume", "--quiet", "R"]) == "R"


# ------------------------------------------------------------------------------ two ranks


@pytest.fixture(scope="module")
def single(tiny_model_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("dp") / "single"
    got = _tttd(*_args(tiny_model_dir, out))
    assert got.returncode == 0, got.stderr[-3000:]
    return out


def test_two_ranks_equal_one_process(single, tiny_model_dir, tmp_path):
    out, trace = tmp_path / "two", tmp_path / "trace"
    got = _tttd(*_args(tiny_model_dir, out), ranks=2, TTTD_DP_TRACE=str(trace))
    assert got.returncode == 0, got.stderr[-3000:]
    assert_same(out, single)
    done = _jsonl(Path(f"{trace}.1"))
    trained = [c["items"] for c in done if c["op"] == "train"]
    assert len(trained) == STEPS and any(trained), trained  # a step of one micro-batch leaves rank 1 idle
    assert len([c for c in done if c["op"] == "sample" and c["items"] > 0]) == STEPS  # half the groups each step
    assert json.loads((out / "config.json").read_text())["_engine"]["data_parallel"] == {"ranks": 2, "backend": "gloo",
                                                                             "parallel": "replicate"}


FSDP = ("--backend-option", "parallel=fsdp")


def test_fsdp_two_ranks_equal_one_process(single, tiny_model_dir, tmp_path):
    """parallel=fsdp (FSDP2 fully_shard over gloo): the same run as one process. Exact at 2 ranks
    with at most one micro-batch per rank (a + b is one float either way; FSDP's /2 and tttd's x2
    are exact); grad_norm is the norm of the shards' norms, equal to 1e-6 relative only."""
    out = tmp_path / "fsdp"
    got = _tttd(*_args(tiny_model_dir, out), *FSDP, ranks=2)
    assert got.returncode == 0, got.stderr[-3000:]
    assert_same(out, single, close=("grad_norm",))
    assert json.loads((out / "config.json").read_text())["_engine"]["data_parallel"] == {
        "ranks": 2, "backend": "gloo", "parallel": "fsdp"}
    # the same checkpoint files as one process: the all-gathered Adam state, keyed by parameter index
    import torch

    def optimizer(run: Path) -> dict:
        latest = run / "checkpoint" / (run / "checkpoint" / "LATEST").read_text().strip()
        return torch.load(latest / "policy" / "optimizer.pt", weights_only=True)

    mine, theirs = optimizer(out), optimizer(single)
    assert mine["param_groups"] == theirs["param_groups"] and mine["state"].keys() == theirs["state"].keys()
    for i, entry in theirs["state"].items():
        assert entry.keys() == mine["state"][i].keys()
        assert all(torch.equal(entry[k], mine["state"][i][k]) for k in entry), i


def test_parallel_option_is_checked_where_it_enters(tmp_path):
    for option, says in [("parallel=ring", "unknown parallel 'ring'; choose one of replicate, fsdp"),
                         ("parallel=fsdp", "parallel=fsdp samples with the hf engine only")]:
        out = tmp_path / option.replace("=", "-")
        got = _tttd("run", "demo", "--backend-option", option, "--backend-option", "engine=vllm", "--out", str(out))
        lines = _tttd_lines(got.stderr)
        assert got.returncode == 2 and len(lines) == 1 and says in lines[0], got.stderr[-2000:]
        assert not out.exists()


@pytest.mark.parametrize("resume_ranks", [2, 1])
def test_fsdp_rank_killed_then_resumed_sharded_is_exact(single, tiny_model_dir, tmp_path, resume_ranks):
    """Kill rank 1 in its second train command under fsdp; resume under torchrun with fsdp (the
    checkpoint is gathered to rank 0's files and scattered back into shards) or by one process
    (the same files as one process writes): either continues to the uninterrupted run exactly."""
    out = tmp_path / "fsdp-killed"
    got = _tttd(*_args(tiny_model_dir, out), *FSDP, ranks=2, TTTD_DP_FAULT="1:train:2")
    assert got.returncode != 0
    lines = _tttd_lines(got.stderr)
    assert len(lines) == 1 and "rank 1 of 2" in lines[0] and f"tttd resume {out}" in lines[0], got.stderr[-3000:]
    resumed = _tttd("resume", str(out), "--quiet", "--json", ranks=resume_ranks)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same(out, single, close=("grad_norm",))


def test_demo_command_two_ranks_equals_one(tiny_model_dir, tmp_path):
    args = ["run", "demo", "--model", str(tiny_model_dir), "--steps", str(STEPS), "--quiet"]
    one = _tttd(*args, "--out", str(tmp_path / "B"))
    two = _tttd(*args, "--out", str(tmp_path / "A"), ranks=2)
    assert one.returncode == 0 and two.returncode == 0, (one.stderr + two.stderr)[-3000:]
    assert_same(tmp_path / "A", tmp_path / "B", trained=False)


def test_rank_killed_mid_step_stops_with_one_line_and_resume_is_exact(single, tiny_model_dir, tmp_path):
    out = tmp_path / "killed"
    got = _tttd(*_args(tiny_model_dir, out), ranks=2, TTTD_DP_FAULT="1:train:2")
    assert got.returncode != 0
    lines = _tttd_lines(got.stderr)
    assert len(lines) == 1, got.stderr[-3000:]
    assert "rank 1 of 2 stopped" in lines[0] and "optimizer step 2" in lines[0] and f"tttd resume {out}" in lines[0]
    # the only traceback is torchrun's own report of the killed worker (ChildFailedError)
    assert got.stderr.count("Traceback (most recent call last)") == 1 and "ChildFailedError" in got.stderr
    resumed = _tttd("resume", str(out), "--quiet", "--json")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert_same(out, single)


def test_a_collective_that_fails_names_the_rank_that_is_gone(tiny_model_dir, tmp_path):
    got = _tttd(*_args(tiny_model_dir, tmp_path / "gather", steps=1), ranks=2, TTTD_DP_FAULT="1:train:1:after")
    assert got.returncode != 0
    lines = _tttd_lines(got.stderr)
    assert len(lines) == 1, got.stderr[-3000:]
    assert "the gloo gather of the gradients (optimizer step 1) failed (rank 1 of 2 is gone" in lines[0], lines[0]


def test_hung_rank_is_reported_after_the_timeout(tiny_model_dir, tmp_path):
    got = _tttd(*_args(tiny_model_dir, tmp_path / "hung", steps=1), ranks=2, TTTD_DP_FAULT="1:train:1:hang",
                TTTD_DP_TIMEOUT_S="3")
    assert got.returncode != 0
    lines = _tttd_lines(got.stderr)
    assert len(lines) == 1 and "rank 1 of 2 did not finish within 3 s" in lines[0] and "hangs" in lines[0], got.stderr[-3000:]


def test_backends_that_cannot_use_torchrun_are_refused(tmp_path):
    out = tmp_path / "api"
    got = _tttd("run", "demo", "--backend", "api", "--no-train", "--model", "m", "--backend-option",
                "base_url=http://127.0.0.1:9/v1", "--out", str(out), ranks=2)
    lines = _tttd_lines(got.stderr)
    assert got.returncode != 0 and len(lines) == 1, got.stderr[-3000:]
    assert lines[0].startswith("tttd: error: torchrun started 2 tttd processes but the api backend")
    assert not out.exists()
