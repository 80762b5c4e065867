"""``tttd report``: a self-contained HTML report of real, frozen, compared and crashed runs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.report.conftest import fake_run
from tttd.cli import main
from tttd.report.data import load_run_data

pytest.importorskip("matplotlib")
pytest.importorskip("jinja2")

PNG = b"\x89PNG\r\n\x1a\n"


def _check_self_contained(html_path: Path) -> str:
    html = html_path.read_text()
    assert "<script" not in html.lower()
    # every image is embedded and nothing is fetched from anywhere
    srcs = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert srcs and all(s.startswith("data:image/png;base64,") or s.startswith("#") for s in srcs), srcs
    assert "http://" not in html and "https://" not in html
    pngs = list(html_path.parent.glob("*.png"))
    assert len(pngs) >= 7 and all(p.read_bytes().startswith(PNG) for p in pngs)
    return html


def _report(args, capsys) -> Path:
    assert main(["report", *map(str, args)]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    return Path(line.split()[1])


def test_report_of_a_finished_run(fake_runs, capsys):
    trained, _ = fake_runs
    html_path = _report([trained], capsys)
    assert html_path == trained / "report" / "index.html"
    html = _check_self_contained(html_path)
    best = json.loads((trained / "best" / "best.json").read_text())
    for text in ("Best value so far", "Rewards", "Validity and failures", "Training: beta, KL, loss",
                 "Time per phase", "Tokens and spend", "Archive lineage", "Best solution",
                 "finished: 4 of 4 steps", best["verify"], "drawing of the best construction"):
        assert text in html, text
    names = {p.name for p in html_path.parent.glob("*.png")}
    assert {"run1-progress.png", "run1-lineage.png", "run1-best.png"} <= names


def test_report_compares_runs(fake_runs, capsys, tmp_path):
    trained, frozen = fake_runs
    html_path = _report([trained, frozen, "--out", tmp_path / "cmp"], capsys)
    html = _check_self_contained(html_path)
    assert "Comparison" in html and "trained (frozen)" not in html and "tiny frozen" in html
    assert (tmp_path / "cmp" / "compare-progress.png").is_file()
    assert html.count("<h2 id=\"run") == 2


def test_report_of_a_crashed_run(tmp_path, capsys, monkeypatch):
    # Crashed inside step 2 after its logs were appended but before its commit.
    crashed = fake_run(tmp_path / "crashed", "checkpoint:2:raise", monkeypatch)
    data = load_run_data(crashed)
    assert sorted(data.rewards) == [0, 1] and [m["step"] for m in data.metrics] == [0, 1]
    html = _check_self_contained(_report([crashed], capsys))
    assert "resumable: 2 of 4 steps" in html
    # Crashed before its first commit: nothing completed, the report still renders.
    early = fake_run(tmp_path / "early", "train:0:raise", monkeypatch)
    html = _check_self_contained(_report([early], capsys))
    assert "No completed step yet" in html and "0 of 4 steps" in html


def test_hostile_text_is_escaped(tmp_path, capsys):
    run = fake_run(tmp_path / "r", steps=1)
    best = json.loads((run / "best" / "best.json").read_text())
    best["message"] = "<script>alert(1)</script>\x1b[2J"
    best["artifact"]["code"] = "</pre><img src=x onerror=alert(1)>"
    (run / "best" / "best.json").write_text(json.dumps(best))
    html = _check_self_contained(_report([run], capsys))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;\\x1b[2J" in html
    assert "&lt;/pre&gt;&lt;img src=x" in html


def test_report_errors(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "not a run directory" in capsys.readouterr().err


def test_runs_table(fake_runs, capsys, tmp_path):
    trained, frozen = fake_runs
    assert main(["runs", str(trained.parent)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["run", "task", "status", "steps"]
    assert any("demo (frozen)" in line and "finished" in line and "4/4" in line for line in out)
    assert main(["runs", str(trained.parent), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {Path(r["run"]).name for r in rows} >= {"trained", "frozen"}
    assert all(r["samples"] == 72 for r in rows if Path(r["run"]).name in ("trained", "frozen"))
    assert main(["runs", str(tmp_path)]) == 0 and "no runs under" in capsys.readouterr().out


@pytest.mark.slow
def test_report_of_a_real_tiny_run_trained_and_frozen(tiny_runs, capsys, tmp_path):
    trained, frozen = tiny_runs
    html = _check_self_contained(_report([trained], capsys))
    assert "local " in html and "finished: 2 of 2 steps" in html
    html = _check_self_contained(_report([trained, frozen, "--out", tmp_path / "cmp"], capsys))
    assert "frozen" in html and "Comparison" in html


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.slow
@pytest.mark.skipif(_chromium() is None, reason="no headless Chromium (Debian package 'chromium') on this machine")
def test_screenshot_in_headless_chromium(fake_runs, capsys, tmp_path):
    """Render the comparison report in a real browser, offline. Set TTTD_SCREENSHOT_DIR to keep
    the screenshot (that is how the README's description of the report was checked)."""
    trained, frozen = fake_runs
    html_path = _report([trained, frozen, "--out", tmp_path / "cmp"], capsys)
    shot = tmp_path / "report.png"
    cmd = [_chromium(), "--headless", "--disable-gpu", "--hide-scrollbars", "--window-size=1200,9000",
           f"--screenshot={shot}", html_path.resolve().as_uri()]
    if os.geteuid() == 0:
        cmd.insert(1, "--no-sandbox")
    subprocess.run(cmd, capture_output=True, timeout=120, check=False)
    assert shot.is_file() and shot.read_bytes().startswith(PNG)
    assert shot.stat().st_size > 100_000  # a page of plots, not a blank page
    keep = os.environ.get("TTTD_SCREENSHOT_DIR")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / "report.png")
