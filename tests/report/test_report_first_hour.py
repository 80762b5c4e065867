"""The report's first-hour sections (issue 23): example completions per step, truthful training
panels, no $0 spend panel on a local run, whole step numbers, the demo's frozen baseline without
extra arguments, best-so-far drawn once when comparing, one lineage dot per state."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.report.conftest import fake_run
from tttd.cli import main
from tttd.report import lineage, plots
from tttd.report.data import load_run_data

pytest.importorskip("matplotlib")
pytest.importorskip("jinja2")


def _report(args, capsys) -> str:
    assert main(["report", *map(str, args)]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    return Path(line.split()[1]).read_text()


@pytest.fixture(scope="module")
def demo_like(tmp_path_factory):
    """A run laid out as `tttd demo` leaves it: the trained run, its frozen baseline inside."""
    root = tmp_path_factory.mktemp("demo") / "demo-run"
    fake_run(root)
    fake_run(root / "baseline-frozen", train=False)
    return root


def test_example_completions_per_step_escaped_and_collapsible(demo_like, capsys):
    rows = [json.loads(line) for line in (demo_like / "rollouts.jsonl").read_text().splitlines()]
    data = load_run_data(demo_like)
    assert sorted(data.examples) == sorted({r["step"] for r in rows})
    for step, ex in data.examples.items():
        statuses = {r["status"] for r in rows if r["step"] == step and not r["valid"]}
        assert set(ex["failures"]) == statuses
        valid = [r["value"] for r in rows if r["step"] == step and r["valid"]]
        assert (ex["best"] is None) == (not valid)
        if valid:
            assert ex["best"]["value"] == min(valid)  # the demo minimises
    html = _report([demo_like], capsys)
    frozen = load_run_data(demo_like / "baseline-frozen")  # the demo's report includes it
    assert html.count('<details class="ex"') == len(data.examples) + len(frozen.examples)
    assert "<summary>step 1:" in html and "<summary>step 0:" not in html  # steps count from 1
    assert "Example completions" in html


def test_hostile_completion_text_is_escaped(tmp_path, capsys):
    run = fake_run(tmp_path / "r", steps=1)
    path = run / "rollouts.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[0].update(valid=False, status="parse_error", completion="<img src=x onerror=alert(1)>\x1b[31m")
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    html = _report([run], capsys)
    assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "\x1b" not in html


def test_training_panels_say_what_they_plot(demo_like):
    data = load_run_data(demo_like)
    fig = plots.training(data)
    titles = [a.get_title() for a in fig.axes]
    assert not any("KL(policy || base)" in t for t in titles), titles  # not recorded without --kl-coef
    assert any("sampler vs trainer" in t for t in titles)
    assert "summed over every completion token" in plots.CAPTIONS["training"]
    for a in [a for a in fig.axes if a.has_data()]:
        assert type(a.xaxis.get_major_locator()).__name__ == "MaxNLocator"
        assert a.xaxis.get_major_locator()._integer  # whole step numbers


def test_no_money_panel_for_a_local_run(demo_like, capsys):
    data = load_run_data(demo_like)
    fig = plots.spend(data)
    assert len(fig.axes) == 1 and "no money" in fig.axes[0].get_title()
    html = _report([demo_like], capsys)
    assert "none (local backend)" in html and "$0.00" not in html


def test_comparison_table_numbers_steps_as_everywhere(demo_like, capsys):
    import re

    html = _report([demo_like], capsys)
    stored = json.loads((demo_like / "best" / "best.json").read_text())["step"]
    row = re.search(r"<tr><td>demo-run</td>(.*?)</tr>", html).group(1)
    cells = re.findall(r"<td>(.*?)</td>", row)
    assert cells[7] == str(stored + 1), cells  # "best step": step 1 is the first step


def test_demo_report_includes_its_frozen_baseline_and_best_so_far_once(demo_like, capsys):
    html = _report([demo_like], capsys)
    assert "Comparison" in html and "baseline-frozen" in html
    assert (demo_like / "report" / "index.html").is_file()  # the run's own report folder
    runs = [load_run_data(demo_like), load_run_data(demo_like / "baseline-frozen")]
    titles = [a.get_title() for a in plots.compare(runs, ["a", "b"]).axes]
    assert titles == ["reward mean", "valid fraction"]  # best-so-far: only the progress figure


def test_lineage_draws_one_dot_per_state(demo_like):
    data = load_run_data(demo_like)
    t = lineage.tree(data.states, data.maximize)
    assert len(set(t["pos"].values())) == len(t["nodes"]) == len(data.states)
    fig = lineage.lineage_figure(data.states, data.maximize)
    ax = fig.axes[0]
    dots = sum(len(c.get_offsets()) for c in ax.collections if hasattr(c, "get_offsets")
               and type(c).__name__ == "PathCollection")
    assert dots == len(data.states) and f"{len(data.states)} states, one dot each" in ax.get_title()
    assert min(x for x, _ in t["pos"].values()) == 0  # initial states at step 0


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.slow
@pytest.mark.skipif(_chromium() is None, reason="no headless Chromium on this machine")
def test_screenshot_of_the_new_sections(demo_like, capsys, tmp_path):
    """The demo-like report in a real browser, offline; TTTD_SCREENSHOT_DIR keeps the PNG (how the
    sections were checked by eye for issue 23)."""
    _report([demo_like, "--out", tmp_path / "rep"], capsys)
    shot = tmp_path / "report.png"
    cmd = [_chromium(), "--headless", "--disable-gpu", "--hide-scrollbars", "--window-size=1200,12000",
           f"--screenshot={shot}", (tmp_path / "rep" / "index.html").resolve().as_uri()]
    if os.geteuid() == 0:
        cmd.insert(1, "--no-sandbox")
    subprocess.run(cmd, capture_output=True, timeout=300, check=False)
    assert shot.is_file() and shot.stat().st_size > 100_000
    keep = os.environ.get("TTTD_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "report-issue23.png")
