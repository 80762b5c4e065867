"""`tttd verify TASK FILE [--json]`: exit codes 0/1/2, the JSON line, data files and program files."""

from __future__ import annotations

import io
import json

import pytest

from tttd.cli.verify import verify_main

from ._helpers import data_files

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


def call(task: str, path, as_json: bool = False) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = verify_main(task, str(path), as_json, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def json_line(text: str) -> dict:
    lines = text.splitlines()
    assert len(lines) == 1, text
    obj = json.loads(lines[0])
    assert set(obj) == {"valid", "value", "reward", "message"}
    return obj


@pytest.fixture
def erdos_file():
    files = [f for f in data_files("erdos") if "ttt" in f.name]
    assert files, "the reference data has no TTT-Discover Erdős construction"
    return files[0]


def test_a_valid_construction_file(erdos_file):
    code, out, err = call("erdos", erdos_file)
    assert code == 0 and err == ""
    assert "VALID" in out and "INVALID" not in out
    code, out, _ = call("erdos", erdos_file, as_json=True)
    obj = json_line(out)
    assert code == 0 and obj["valid"] is True
    assert obj["reward"] == pytest.approx(1 / obj["value"])


def test_the_loops_best_construction_format(tmp_path):
    r = 1 / 12
    circles = [[r + 2 * r * (k % 6), r + 2 * r * (k // 6), r] for k in range(26)]
    f = tmp_path / "construction.json"
    f.write_text(json.dumps({"problem": "circle_packing_26", "value": 26 / 12, "construction": circles}))
    code, out, _ = call("circle_packing_26", f, as_json=True)
    assert code == 0 and json_line(out)["value"] == pytest.approx(26 / 12)


@pytest.mark.parametrize(
    "content, why",
    [
        ('{"h": [0.5, NaN, 0.5]}', "non-finite"),
        ('{"h": [0.5, 1.5, 0.5]}', "[0, 1]"),
        ('{"h": []}', "empty"),
        ('{"x": [0.5]}', "not a erdos construction"),
    ],
)
def test_an_invalid_construction_file_exits_1(tmp_path, content, why):
    f = tmp_path / "bad.json"
    f.write_text(content)
    code, out, err = call("erdos", f)
    assert code == 1 and "INVALID" in out and why in out and err == ""
    code, out, _ = call("erdos", f, as_json=True)
    obj = json_line(out)
    assert code == 1 and obj["valid"] is False and obj["value"] is None and obj["reward"] == 0.0
    assert why in obj["message"]


def test_usage_errors_exit_2_with_one_line(tmp_path, erdos_file):
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    cases = [
        ("no_such_task", erdos_file, "unknown task"),
        ("erdos", tmp_path / "missing.json", "not found"),
        ("erdos", bad_json, "not valid JSON"),
        ("erdos", text, ".json"),
        ("erdos", tmp_path, "is a directory, but erdos programs are single files"),  # a directory (issue 37: named)
    ]
    for task, path, why in cases:
        for as_json in (False, True):
            code, out, err = call(task, path, as_json)
            assert code == 2 and out == ""
            assert len(err.strip().splitlines()) == 1 and why in err, err


def test_a_program_file(tmp_path, sandbox_run):
    good = tmp_path / "good.py"
    good.write_text(
        "def run(seed=42, budget_s=1000, **kwargs):\n"
        "    h = [0.5] * 40\n"
        "    print('searching ```')\n"  # a fence inside the file must not cut the program
        "    return h, 0.1, len(h)\n"
    )
    code, out, err = call("erdos", good, as_json=True)
    obj = json_line(out)
    assert code == 0 and obj["valid"] is True, (out, err)
    assert obj["value"] == pytest.approx(0.5)  # constant 0.5: C5 = 0.5, not the claimed 0.1
    assert "claimed" in obj["message"]
    code, out, _ = call("erdos", good)
    assert code == 0 and "VALID" in out

    bad = tmp_path / "bad.py"
    bad.write_text("def run(**kwargs):\n    return [2.0] * 40, 0.1, 40\n")
    code, out, _ = call("erdos", bad, as_json=True)
    assert code == 1 and json_line(out)["valid"] is False

    crash = tmp_path / "crash.py"
    crash.write_text("def run(**kwargs):\n    raise RuntimeError('boom')\n")
    code, out, _ = call("erdos", crash)
    assert code == 1 and "boom" in out


def test_a_program_sees_the_seeded_root(tmp_path, sandbox_run):
    prog = tmp_path / "p.py"
    prog.write_text("def propose_candidate(**kwargs):\n    return list(height_sequence_1)\n")
    code, out, _ = call("ac1", prog, as_json=True)
    obj = json_line(out)
    assert code == 0 and obj["value"] == pytest.approx(2.0), out  # a constant root scores 2
