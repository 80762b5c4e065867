"""A short soak (issue 24): 100 sandboxed evaluations of every kind in one process leave file
descriptors, child processes, sandbox temporary directories and memory flat; jails killed from
outside are started again, never reported as the candidate's failure. The 2,000-evaluation run
is ``python benchmarks/soak.py`` (figures in the issue's note)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

SOAK = Path(__file__).resolve().parents[1] / "benchmarks" / "soak.py"


@pytest.mark.timeout(600)
def test_short_soak_is_flat():
    spec = importlib.util.spec_from_file_location("tttd_soak", SOAK)
    soak = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(soak)
    from tttd.sandbox import platform_info

    out = soak.soak(100, workers=2, warmup=30, quiet=True)
    start, end = out["start"], out["end"]
    assert end["fds"] <= start["fds"], out
    assert start["children"] == end["children"] == 0, out
    assert end["sandbox_tmp_dirs"] == 0 and out["leftovers"] == [], out
    assert end["rss_mib"] - start["rss_mib"] < 16, out  # a leak per evaluation would show here
    statuses = out["statuses"]
    assert sum(statuses.values()) == 100
    assert {"ok", "error", "memory", "bad_output", "timeout"} <= set(statuses), statuses
    assert "lost" not in statuses, statuses  # every jail killed from outside was started again
    if platform_info().bwrap:
        assert out["jails_killed_from_outside"] == out["retried"] == 2, out
