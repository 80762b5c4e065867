"""``tttd audit RUN``: a speed-task run (re-timed with fresh seeds, the best consistent within the
timing tolerance) and a non-speed run (re-verification only); a best that is invalid now or whose
value moved gives exit 1; the report shows the audit."""

import json
from pathlib import Path

from tests.test_reverify_best import ANSWERS, AnswerPolicy
from tttd.cli.main import main
from tttd.config import resolve_config
from tttd.loop import Discovery

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = str(ROOT / "examples" / "speed_group_means.py")


def _run(tmp_path, task, answer, **kw):
    cfg = resolve_config(flag_values=dict(task=task, steps=1, groups=1, group_size=1, workers=1,
                                          eval_timeout_s=60.0, seed=0, **kw))
    d = tmp_path / "run"
    run = Discovery(cfg, d, policy=AnswerPolicy(answer))
    run.start()
    run.run()
    return d


def test_audit_of_a_non_speed_run_reverifies_and_a_changed_value_is_caught(tmp_path, capsys):
    d = _run(tmp_path, "demo", ANSWERS["demo"])
    assert main(["audit", str(d), "--top", "2"]) == 0
    out = capsys.readouterr().out
    assert "best" in out and "consistent" in out and "flags: none" in out
    doc = json.loads((d / "audit.json").read_text())
    assert doc["best_consistent"] and doc["rows"][0]["verdict"] == "consistent"
    best = json.loads((d / "best" / "best.json").read_text())
    best["value"] = best["value"] + 1.0  # a recorded value the verifier does not reproduce
    (d / "best" / "best.json").write_text(json.dumps(best))
    assert main(["audit", str(d), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["rows"][0]["verdict"] == "irreproducible"


def test_audit_of_a_speed_run_retimes_with_fresh_seeds(tmp_path, capsys):
    d = _run(tmp_path, EXAMPLE, ANSWERS["group-means"])
    code = main(["audit", str(d), "--json"])
    doc = json.loads(capsys.readouterr().out)
    row = doc["rows"][0]
    assert row["label"] == "best" and row["remeasured"] and row["rtol"] == 0.25
    assert row["verdict"] in ("consistent", "irreproducible") and code == (0 if row["verdict"] == "consistent" else 1)
    best = json.loads((d / "best" / "best.json").read_text())
    best["artifact"]["code"] = best["artifact"]["code"].replace("s / np.maximum(c, 1)", "s / (c + 1)")
    (d / "best" / "best.json").write_text(json.dumps(best))
    assert main(["audit", str(d), "--top", "0"]) == 1
    assert "invalid now" in capsys.readouterr().out
    from tttd.report.build import build_report

    html = build_report([d], tmp_path / "r.html").read_text()
    assert "Audit" in html and "invalid now" in html


def test_audit_refuses_what_is_not_a_run(tmp_path, capsys):
    assert main(["audit", str(tmp_path)]) == 2
    assert "tttd audit: error" in capsys.readouterr().err
