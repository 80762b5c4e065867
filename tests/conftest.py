"""Shared fixtures: one tiny model per test session (policy, loop and end-to-end tests).

The model is built once with a short, fixed pretraining budget (reproducible, ~10-20 s on 2
cores) into pytest's cache directory (``.pytest_cache/d/tttd-models``), so later sessions reuse
it (a temporary folder when the cache plugin is off). ``TTTD_TEST_MODEL`` may point to an already built model folder instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TEST_PRETRAIN_STEPS = 12


@pytest.fixture(scope="session")
def tiny_model_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a tiny Qwen2-style model folder (built locally, never downloaded)."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tttd.policy.tiny import build_tiny_model

    if os.environ.get("TTTD_TEST_MODEL"):
        return Path(os.environ["TTTD_TEST_MODEL"])
    cache_plugin = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    if cache_plugin is not None:
        cache = cache_plugin.mkdir("tttd-models")
    else:
        cache = tmp_path_factory.mktemp("tttd-models")
    return build_tiny_model(
        "tiny", cache_dir=cache, pretrain_steps=TEST_PRETRAIN_STEPS, seed=0, progress=False
    )


# ------------------------------------------------------------------ skips checked against an allow-list
# Issue 25: a skipped test must never keep CI green by accident. Every skip (test or module) is
# recorded with its reason; at the end of the session the reasons are checked against
# tests/skip_allowlist.py. With CI=true an unlisted skip fails the session; the allow-list and
# the skips seen are printed at the end of every CI session (locally only when a skip is unlisted).

_SKIPS: list[tuple[str, str]] = []


def _skip_reason(report) -> str:
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
    return text[len("Skipped: "):] if text.startswith("Skipped: ") else text


def pytest_runtest_logreport(report) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _SKIPS.append((report.nodeid, _skip_reason(report)))


def pytest_collectreport(report) -> None:
    if report.skipped:  # a module-level skip or importorskip
        _SKIPS.append((report.nodeid or "(collection)", _skip_reason(report)))


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unlisted() -> list[tuple[str, str]]:
    from tests.skip_allowlist import allowed_reason

    return [(node, reason) for node, reason in _SKIPS if allowed_reason(reason) is None]


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session, exitstatus) -> None:
    if _in_ci() and _unlisted() and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    from tests.skip_allowlist import allowed_reason, render

    bad = _unlisted()
    if not (_in_ci() or bad):
        return
    tr = terminalreporter
    tr.section("skips (issue 25)")
    for line in render().splitlines():
        tr.write_line(line)
    ok = [(node, reason) for node, reason in _SKIPS if allowed_reason(reason) is not None]
    tr.write_line(f"skips seen: {len(ok)} allowed, {len(bad)} not allowed")
    for node, reason in ok:
        tr.write_line(f"  allowed: {node}: {reason}")
    for node, reason in bad:
        tr.write_line(f"  NOT ALLOWED: {node}: {reason}")
    if bad and _in_ci():
        tr.write_line("CI=true: the session's exit status is 1 because of the skips above "
                      "(install what they need, or add a reasoned entry to tests/skip_allowlist.py)")
