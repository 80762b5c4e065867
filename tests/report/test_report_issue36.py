"""The report's rough edges a new user met (issue 36, item 8), checked on the generated HTML and on
the figures' plotting data: one precision per table column, sampled and trained token lines told
apart, the best state's label off the lineage's points, no offset label under a title, failure
messages grouped when only their numbers differ, a sane x-axis when every state is at step 0."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from tests.report.conftest import fake_run
from tttd.cli import main
from tttd.report import lineage, plots
from tttd.report.data import load_run_data
from tttd.report.tables import group_messages, same_decimals

pytest.importorskip("matplotlib")
pytest.importorskip("jinja2")


def test_one_precision_per_column():
    assert same_decimals([0.4163, 0.41632145, None, 1.5]) == ["0.41630", "0.41632", "-", "1.50000"]
    assert same_decimals([0.38092, 0.3809]) == ["0.380920", "0.380900"]
    small = same_decimals([1.2e-8, 3e-9])
    assert all("e-" in s for s in small) and len({len(s) for s in small}) == 1


def test_compare_table_prints_best_values_with_one_precision(tmp_path, capsys):
    a, b = fake_run(tmp_path / "a", steps=2), fake_run(tmp_path / "b", steps=2, seed=5)
    assert main(["report", str(a), str(b), "--out", str(tmp_path / "rep")]) == 0
    html = (tmp_path / "rep" / "index.html").read_text()
    start = html.index("<th>run</th>")
    table = html[start:html.index("</table>", start)]
    header = re.findall(r"<th>([^<]*)</th>", table)
    col = header.index("best value")
    rows = re.findall(r"<tr>((?:<td>[^<]*</td>)+)</tr>", table)
    bests = [re.findall(r"<td>([^<]*)</td>", r)[col] for r in rows]
    assert len(bests) == 2 and len({len(x.split(".")[1]) for x in bests}) == 1, bests


def test_failure_messages_that_differ_in_numbers_are_one_row():
    msgs = Counter({("invalid", f"need at least 8 digits, got {n}"): 1 for n in range(8)})
    msgs[("invalid", "not a list")] = 3
    msgs[("timeout", "ran 10.5 s")] = 2
    rows = group_messages(msgs)
    assert rows[0] == ("invalid", 8, "need at least 8 digits, got N")  # the fixed 8 stays
    assert ("invalid", 3, "not a list") in rows and ("timeout", 2, "ran 10.5 s") in rows
    assert len(rows) == 3


def test_failure_table_in_the_html_groups_messages(tmp_path, capsys):
    run = fake_run(tmp_path / "r", steps=2)
    path = run / "rollouts.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    bad = [r for r in rows if not r["valid"]]
    assert len(bad) >= 3
    for i, r in enumerate(bad):
        r["status"], r["message"] = "invalid", f"need at least 8 digits, got {i}"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["report", str(run)]) == 0
    html = (run / "report" / "index.html").read_text()
    assert html.count("need at least 8 digits, got N") == 1 and "got 1<" not in html
    assert f"<td>invalid</td><td>{len(bad)}</td>" in html


def test_sampled_and_trained_token_lines_are_told_apart(tmp_path):
    data = load_run_data(fake_run(tmp_path / "r", steps=3))
    ax = plots.spend(data).axes[0]
    lines = {ln.get_label(): ln for ln in ax.get_lines()}
    trained = next(v for k, v in lines.items() if k.startswith("trained"))
    sampled = lines["sampled"]
    if list(trained.get_ydata()) == list(sampled.get_ydata()):
        assert trained.get_label() == "trained (= sampled)"
    assert trained.get_linestyle() != sampled.get_linestyle() and trained.get_marker() not in (None, "None", "")


def test_no_offset_label_above_a_titled_panel(tmp_path):
    data = load_run_data(fake_run(tmp_path / "r", steps=3))
    for m in data.metrics:  # a KL of ~1e-8, as an exact fp32 engine measures it
        m["kl_sample_train"] = 1e-8 + 1e-9 * m["step"]
    fig = plots.training(data)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig).draw()
    kl = fig.axes[1]
    assert kl.get_title() and kl.yaxis.get_offset_text().get_text() == ""
    labels = [t.get_text() for t in kl.get_yticklabels() if t.get_text()]
    assert labels and all("e-" in t for t in labels), labels  # each tick carries its own scale


def _states(steps: list[int], values: list[float]) -> list[dict]:
    out = []
    for i, (s, v) in enumerate(zip(steps, values)):
        out.append({"state": {"id": f"s{i}", "parent_id": None if s < 0 else "s0", "ancestors": [] if s < 0 else ["s0"],
                              "step": s, "value": v}})
    return out


def test_lineage_best_is_marked_without_a_label_over_the_points(tmp_path):
    data = load_run_data(fake_run(tmp_path / "r", steps=3))
    fig = lineage.lineage_figure(data.states, data.maximize)
    ax = fig.axes[0]
    assert not ax.texts and not [c for c in ax.get_children() if type(c).__name__ == "Annotation"]
    stars = [ln for ln in ax.get_lines() if ln.get_marker() == "*"]
    t = lineage.tree(data.states, data.maximize)
    assert len(stars) == 1 and tuple(stars[0].get_xydata()[0]) == t["pos"][t["best"]]
    best = t["nodes"][t["best"]]["value"]
    assert f"the best, {best:.6g}" in ax.get_title()


def test_lineage_of_a_run_with_every_state_at_step_0_has_a_sane_axis():
    fig = lineage.lineage_figure(_states([-1, -1, -1], [0.5, 0.4, 0.3]), maximize=False)
    lo, hi = fig.axes[0].get_xlim()
    assert lo <= -0.5 and hi >= 1.0 and hi - lo >= 1.5, (lo, hi)


def test_a_one_step_run_gets_whole_step_ticks(tmp_path):
    data = load_run_data(fake_run(tmp_path / "r", steps=1))
    for fig in (plots.spend(data), plots.progress([data], ["r"])):
        ax = fig.axes[0]
        assert ax.get_xlim() == (0.5, 1.5) and list(ax.get_xticks()) == [1.0], (ax.get_xlim(), ax.get_xticks())
