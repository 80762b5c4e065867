"""``tttd ablate demo --seeds 2 --steps 4`` end to end on the tiny model, killed with SIGKILL and continued."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from tttd.ablate.runner import run_status  # noqa: E402
from tttd.ablate.spec import DEFAULT_VARIANTS, run_path  # noqa: E402

STEPS, SEEDS = 4, 2


def ablate_args(model, out, *extra):
    return ["ablate", "demo", "--seeds", str(SEEDS), "--steps", str(STEPS), "--model", str(model),
            "--groups", "2", "--group-size", "4", "--set", "max_tokens=16,lora_rank=4", "--jobs", "1",
            "--out", str(out), *extra]


def tttd(*args, timeout=900):
    return subprocess.run([sys.executable, "-m", "tttd.cli", *args], capture_output=True, text=True, timeout=timeout)


def fingerprint(run: Path) -> dict[str, tuple[int, str]]:
    """Every file of a run directory: mtime and content hash."""
    return {str(p.relative_to(run)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(run.rglob("*")) if p.is_file()}


def statuses(out: Path) -> dict:
    return {(v, s): run_status(run_path(out, v, s), STEPS) for v in DEFAULT_VARIANTS for s in range(SEEDS)}


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
def test_ablate_killed_with_sigkill_continues_and_completes(tiny_model_dir, tmp_path):
    out = tmp_path / "abl"
    proc = subprocess.Popen([sys.executable, "-m", "tttd.cli", *ablate_args(tiny_model_dir, out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 900
    try:  # kill -9 once some runs finished and one is part-way (a committed step, not finished)
        while time.monotonic() < deadline and proc.poll() is None:
            st = statuses(out)
            finished = [r for r, (s, _) in st.items() if s == "finished"]
            partway = [r for r, (s, done) in st.items() if s == "unfinished" and 0 < done < STEPS]
            if len(finished) >= 2 and partway:
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.05)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, f"the ablation ended before it could be killed: {proc.stderr.read()}"
    worker_pids = [int(p.read_text()) for p in (out / "logs").glob("worker*.pid")]
    assert worker_pids
    t = time.monotonic()
    while any(alive(p) for p in worker_pids) and time.monotonic() - t < 30:
        time.sleep(0.1)
    assert not any(alive(p) for p in worker_pids), "a worker outlived the killed ablation"

    before = statuses(out)
    finished = [r for r, (s, _) in before.items() if s == "finished"]
    partway = {r: done for r, (s, done) in before.items() if s == "unfinished" and done > 0}
    assert finished and partway and len(finished) < len(before)
    prints = {r: fingerprint(run_path(out, *r)) for r in finished}
    kept_lines = {r: (run_path(out, *r) / "metrics.jsonl").read_text().splitlines()[:done] for r, done in partway.items()}

    done = tttd(*ablate_args(tiny_model_dir, out))
    assert done.returncode == 0, done.stderr
    assert f"{len(finished)} finished" in done.stderr
    for r in finished:  # finished runs were skipped: not a byte or an mtime changed
        assert fingerprint(run_path(out, *r)) == prints[r]
    for r, lines in kept_lines.items():  # the part-way run was resumed, not restarted
        rows = (run_path(out, *r) / "metrics.jsonl").read_text().splitlines()
        assert rows[:len(lines)] == lines and [json.loads(x)["step"] for x in rows] == list(range(STEPS))
    assert all(s == "finished" for s, _ in statuses(out).values())

    result = json.loads((out / "ablation-results.json").read_text())
    assert result["runs_finished"] == result["runs_total"] == len(DEFAULT_VARIANTS) * SEEDS
    assert result["samples_per_run"] == STEPS * 2 * 4
    for name in DEFAULT_VARIANTS:
        row = result["variants"][name]
        assert row["seeds_finished"] == list(range(SEEDS)) and row["final"]["n"] == SEEDS
        assert 0.0 <= row["valid_rate"]["mean"] <= 1.0
        if name != "full":
            assert row["vs_full"]["pairs"] == SEEDS
    table = (out / "ablation.md").read_text()
    assert all(f"| {name} |" in table for name in DEFAULT_VARIANTS)
    assert "| best-of-n | 2 |" in done.stdout  # the table is printed too
    cfg = json.loads((run_path(out, "best-of-n", 1) / "config.json").read_text())
    assert (cfg["train"], cfg["reuse"], cfg["seed"], cfg["steps"]) == (False, "none", 1, STEPS)

    # the same command again: nothing left to run; other arguments: refused with one line, nothing written
    again = tttd(*ablate_args(tiny_model_dir, out))
    assert again.returncode == 0 and f"{len(before)} finished" in again.stderr
    spec_before = (out / "ablation.json").read_bytes()
    changed = tttd(*ablate_args(tiny_model_dir, out)[:-2], "--steps", "5", "--out", str(out))
    assert changed.returncode == 2 and changed.stderr.count("\n") == 1 and "other arguments" in changed.stderr
    assert (out / "ablation.json").read_bytes() == spec_before
    dry = tttd(*ablate_args(tiny_model_dir, out), "--dry-run", "--json")
    info = json.loads(dry.stdout)
    assert info["runs"] == info["finished"] == len(before) and info["new"] == 0

    pytest.importorskip("matplotlib")
    pytest.importorskip("jinja2")
    rep = tttd("report", str(out))
    assert rep.returncode == 0, rep.stderr
    html = (out / "report" / "index.html").read_text()
    assert "best-of-n" in html and "data:image/png;base64," in html and (out / "report" / "ablation-curves.png").is_file()


def test_dry_run_says_how_many_runs_and_how_long_and_writes_nothing(tmp_path):
    out = tmp_path / "abl"
    dry = tttd("ablate", "maxcut", "--seeds", "3", "--steps", "5", "--variant", "per-rollout:visit_counting=rollout",
               "--out", str(out), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "21 runs (7 variants x 3 seeds" in dry.stdout and "estimate: about" in dry.stdout
    assert not out.exists()
    bad = tttd("ablate", "maxcut", "--variants", "mean", "--out", str(out))
    assert bad.returncode == 2 and "include 'full'" in bad.stderr and not out.exists()


def test_a_folder_named_like_the_task_does_not_shadow_it(tmp_path):
    (tmp_path / "demo").mkdir()  # e.g. the ablation directory of an earlier `--out demo`
    dry = subprocess.run([sys.executable, "-m", "tttd.cli", "ablate", "demo", "--seeds", "1", "--steps", "2",
                          "--out", "abl", "--dry-run"], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert dry.returncode == 0, dry.stderr
    assert "6 runs (6 variants x 1 seed:" in dry.stdout
