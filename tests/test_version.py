"""One version (issue 27): tttd/__init__.py is the single source; pyproject.toml reads it without
importing tttd; ``tttd --version``, config.json of new runs and reports show it; CHANGELOG.md has it."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

import tttd
from tttd.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_tttd_version_flag(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out == f"tttd {tttd.__version__}\n"
    assert re.fullmatch(r"\d+\.\d+\.\d+", tttd.__version__)


def test_pyproject_reads_the_version_statically(monkeypatch):
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'^dynamic = \["version"\]', text, re.M)
    assert re.search(r"^version = \{attr = \"tttd.__version__\"\}", text, re.M)
    assert not re.search(r'^version = "', text, re.M), "a second, literal version in pyproject.toml"
    expand = pytest.importorskip("setuptools.config.expand")

    class NoTttd:  # the build must not import the package (its dependencies may be missing)
        def find_spec(self, name, path=None, target=None):
            if name == "tttd" or name.startswith("tttd."):
                raise AssertionError(f"the version was read by importing {name}")

    monkeypatch.setattr(sys, "meta_path", [NoTttd(), *sys.meta_path])
    for name in [m for m in sys.modules if m == "tttd" or m.startswith("tttd.")]:
        monkeypatch.delitem(sys.modules, name)
    assert expand.read_attr("tttd.__version__", root_dir=str(ROOT)) == tttd.__version__


def test_config_json_and_report_show_the_version(tmp_path, capsys):
    pytest.importorskip("jinja2")
    pytest.importorskip("matplotlib")
    from tests.report.conftest import fake_run

    run = fake_run(tmp_path / "r", steps=1, groups=1, group_size=2)
    assert json.loads((run / "config.json").read_text())["_versions"]["tttd"] == tttd.__version__
    assert main(["report", str(run)]) == 0
    html = (run / "report" / "index.html").read_text()
    assert f"by tttd {tttd.__version__} " in html


def test_changelog_has_the_version():
    text = (ROOT / "CHANGELOG.md").read_text()
    major_minor = ".".join(tttd.__version__.split(".")[:2])
    assert re.search(rf"^## .*\b{re.escape(major_minor)}\b", text, re.M)
    assert re.search(r"^## 0\.1\b", text, re.M) and re.search(r"^## 0\.2\b", text, re.M)
