"""Switches added after issue 25 (issues 19, 20, 22): each test fails when its switch is ignored.

``tools/mutate_switches.py`` (rows ``NEW_SWITCHES`` in ``tools/switch_mutations.py``) proves it by
disabling one switch at a time where it takes effect. Expectations are computed here: the
sampler's recorded parameters, the sandbox's result and environment, the limits the sandbox is
given (per stage x the stages the evaluator defines, counted here), the program an edit answer
produces (applied here with ``str.replace``). Everything runs in well under a few seconds.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.test_switches import _run
from tttd.config import resolve_config

PROBLEMS = Path(__file__).resolve().parent / "evolve_problems"


# ------------------------------------------------------------------ issue 19: weak isolation


@pytest.fixture()
def weak(monkeypatch):
    """A machine without full isolation (bubblewrap off), the opt-in not yet given."""
    from tttd import sandbox
    from tttd.sandbox import report, runner

    monkeypatch.setenv("TTTD_SANDBOX_BWRAP", "0")
    monkeypatch.delenv(runner.WEAK_ENV, raising=False)
    monkeypatch.setattr(report, "_warned", False)
    monkeypatch.setattr("tttd.sandbox.isolation_report", lambda *a, **k: {
        "full": False, "missing": ["bwrap"], "notes": ["test: no bubblewrap"], "active": [], "runnable": True,
        "cause": "bubblewrap disabled by the test"})
    saved = runner._platform
    plat = sandbox.platform_info(refresh=True)
    yield plat
    runner._platform = saved


def test_allow_weak_isolation_opts_in_to_the_weak_mode(weak):
    """Without the opt-in: refused (one error), the runner runs nothing. With it: one warning,
    and the runner (as a library call would) runs the candidate."""
    import os

    from tttd import sandbox
    from tttd.sandbox import report, runner

    with pytest.raises(ValueError, match="allow-weak-isolation"):
        report.check_isolation(False, allow_weak=False)
    assert os.environ.get(runner.WEAK_ENV) is None
    program = "def main():\n    return 6 * 7\n"
    if weak.runnable:
        r = sandbox.run_program(program)
        assert r.status == "error" and "not allowed" in r.message, r
    warnings = []
    report.check_isolation(False, warn=warnings.append, allow_weak=True)
    assert os.environ.get(runner.WEAK_ENV) == "1"
    assert len(warnings) == 1 and "weak sandbox isolation" in warnings[0]
    if not weak.runnable:  # a root parent whose interpreter a fresh uid cannot read: no weak mode at all
        assert os.geteuid() == 0
        return
    r = sandbox.run_program(program)
    assert r.status == "ok" and r.value == 42, r


def test_the_runner_runs_the_weak_mode_only_after_the_opt_in(monkeypatch):
    """Library calls get no weak mode by accident: without TTTD_SANDBOX_ALLOW_WEAK=1 (what the
    opt-in sets) the runner refuses at its gate; with it the request gets past the gate (here to the
    next refusal: a platform without seccomp runs nothing either, so nothing runs in this test).
    A fake platform makes this observable on machines where the weak mode is not runnable (root)."""
    from tttd.sandbox import runner
    from tttd.sandbox.jail import Platform
    from tttd.types import Limits

    plat = Platform(bwrap=None, root=False, separate_uid=False, seccomp=False, runnable=True, cause="test")

    def execute():
        return runner._execute({}, Limits(), {}, None, None, plat=plat)

    monkeypatch.delenv(runner.WEAK_ENV, raising=False)
    r = execute()
    assert r.status == "error" and "not allowed" in r.message and "nothing was run" in r.message, r
    monkeypatch.setenv(runner.WEAK_ENV, "1")
    r = execute()
    assert r.status == "error" and "not allowed" not in r.message and "seccomp" in r.message, r


# ------------------------------------------------------------------ issue 20: forced final answer


@pytest.mark.parametrize("forced", [True, False])
def test_forced_answer_reaches_the_sampler(tmp_path, forced):
    _, _, pol, _ = _run(tmp_path, steps=2, groups=2, group_size=3, forced_answer=forced)
    assert len(pol.sampled) == 2
    assert [params.forced_answer for _, _, params in pol.sampled] == [forced, forced]


def test_the_paper_preset_forces_the_answer():
    """The authors' sampler forces a final answer at the budget (SPEC, issue 20); tttd's default does not."""
    assert resolve_config(preset="paper").forced_answer is True
    assert resolve_config().forced_answer is False


def test_denoising_paper_preset_trains_on_inverse_mse():
    """The authors' denoising runs train on 1 / MSE (issue 20): the paper preset sets reward=inverse_mse,
    the default keeps reward = value."""
    from tttd.tasks.denoising.task import DenoisingTask

    cfg = resolve_config(task_presets=DenoisingTask.presets, preset="paper")
    assert cfg.task_options.get("reward") == "inverse_mse"
    assert resolve_config(task_presets=DenoisingTask.presets).task_options.get("reward", "value") == "value"


# ------------------------------------------------------------------ issue 22: imported folders


def _stages(folder: Path) -> int:
    return len(re.findall(r"^def evaluate_stage\d\(", (folder / "evaluator.py").read_text(), re.M))


def test_folder_timeout_option_overrides_the_config():
    """timeout_s= replaces the config's evaluator.timeout (3 s in oe_cascade), per stage."""
    from tttd.registry import get_task

    folder = PROBLEMS / "oe_cascade"
    assert "timeout: 3" in (folder / "config.yaml").read_text()
    n = _stages(folder)
    assert n == 2
    assert get_task(str(folder), timeout_s=1.5).limits.wall_s == pytest.approx(1.5 * n)
    assert get_task(str(folder), timeout_s=1.5, cascade=False).limits.wall_s == pytest.approx(1.5)
    assert get_task(str(folder), cascade=False).limits.wall_s == pytest.approx(3.0)


def _edit(search: str, replace: str) -> str:
    return f"<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n"


@pytest.mark.parametrize("folder, options, diff", [
    ("oe_guess", {}, True),  # OpenEvolve's default: diff_based_evolution true
    ("oe_guess", {"edits": "whole"}, False),
    ("oe_metrics", {}, False),  # its config says diff_based_evolution: false
    ("oe_metrics", {"edits": "diff"}, True),
])
def test_folder_edits_follow_the_option_and_the_config(folder, options, diff):
    """In diff mode a SEARCH/REPLACE answer edits the parent; in whole mode it is no program."""
    from tttd.registry import get_task

    task = get_task(str(PROBLEMS / folder), **options)
    root = task.initial_states(1, np.random.default_rng(0))[0]
    parent = task.initial_program
    line = next(ln for ln in parent.splitlines() if ln.strip().startswith("return ") and ln.startswith("    "))
    cand = task.parse(_edit(line, line.replace("return ", "return 1 + ")), root)
    if diff:
        assert cand.error is None and cand.code == parent.replace(line, line.replace("return ", "return 1 + "), 1)
        assert "<<<<<<< SEARCH" in task.prompt(root)[0]["content"]
    else:
        assert cand.program is None and cand.error
        assert "<<<<<<< SEARCH" not in task.prompt(root)[0]["content"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-q"]))
