"""SEARCH/REPLACE edit answers (tttd.edits) and their use by ProgramTask (edits="diff")."""

import numpy as np

import tttd
from tttd.edits import Edit, apply_answer, apply_edit, parse_edits
from tttd.types import State

PARENT = "def f(x):\n    y = x + 1\n    return y\n\n\ndef g():\n    return f(2)\n"


def block(search, replace, n=7):
    return f"{'<' * n} SEARCH\n{search}\n{'=' * n}\n{replace}\n{'>' * n} REPLACE\n"


def test_parse_several_blocks_in_order_with_fences_and_odd_marker_lengths():
    text = ("Here is my change:\n```python\n" + block("    y = x + 1", "    y = x + 2", 7) + "```\n"
            "and another\n" + block("    return f(2)", "    return f(3)", 5))
    edits = parse_edits(text)
    assert edits == [Edit("    y = x + 1", "    y = x + 2"), Edit("    return f(2)", "    return f(3)")]
    made = apply_answer(text, PARENT)
    assert made.mode == "diff" and made.applied == 2 and not made.notes
    assert made.code == PARENT.replace("x + 1", "x + 2").replace("f(2)", "f(3)")


def test_tolerates_trailing_whitespace_and_shifted_indentation():
    assert apply_edit(PARENT, Edit("    y = x + 1   \n    return y  ", "    return x")) == PARENT.replace(
        "    y = x + 1\n    return y", "    return x")
    # the model dropped the indentation: matched, and the replacement re-indented by the same shift
    out = apply_edit(PARENT, Edit("y = x + 1\nreturn y", "z = x * 2\nreturn z"))
    assert out == PARENT.replace("    y = x + 1\n    return y", "    z = x * 2\n    return z")


def test_first_match_only_and_unmatched_blocks_reported():
    code = "a = 1\na = 1\n"
    assert apply_edit(code, Edit("a = 1", "a = 2")) == "a = 2\na = 1\n"
    made = apply_answer(block("    y = x + 1", "    y = 0") + block("    return y + 99", "    pass"), PARENT)
    assert made.applied == 1 and made.code == PARENT.replace("x + 1", "0")
    assert len(made.notes) == 1 and "edit 2 of 2 did not apply" in made.notes[0]
    assert "closest: 'return y'" in made.notes[0]


def test_no_match_is_a_clear_parse_error():
    made = apply_answer(block("    y = x + 7", "    y = 0"), PARENT)
    assert made.code is None and made.mode == "diff"
    assert "no SEARCH/REPLACE edit matched" in made.error and "'y = x + 7'" in made.error
    assert apply_answer(block("", "x"), PARENT).error.endswith("its SEARCH part is empty")


def test_whole_program_fallback_and_missing_answer():
    made = apply_answer("```python\nprint(1)\n```", PARENT)
    assert made.mode == "whole" and made.code == "print(1)"
    made = apply_answer("```cpp\nint main(){}\n```", PARENT, ("cpp",))
    assert made.code == "int main(){}"
    made = apply_answer("I would change f.", PARENT)
    assert made.code is None and "no SEARCH/REPLACE block and no ```python code block" in made.error


def _task(**kw):
    initial = ("import math\n# EVOLVE-BLOCK-START\ndef solve():\n    return 1.5\n# EVOLVE-BLOCK-END\n"
               "print('kept')\n")
    return tttd.ProgramTask(statement="Return a big number.", score=float, returns="a float",
                            initial_program=initial, timeout_s=10, **kw)


def test_program_task_diff_mode_prompt_parse_and_notes_in_the_next_prompt():
    from tttd.sandbox import run

    task = _task(edits="diff")
    root = task.initial_states(1, np.random.default_rng(0))[0]
    text = task.prompt(root)[0]["content"]
    assert "<<<<<<< SEARCH" in text and ">>>>>>> REPLACE" in text and "whole program instead" in text
    answer = block("    return 1.5", "    return 2.5") + block("    return 7", "    return 8")
    cand = task.parse(answer, root)
    assert cand.error is None and "return 2.5" in cand.code and "print('kept')" in cand.code
    ev = task.evaluate(cand, run(cand.program), root)
    assert ev.valid and ev.value == 2.5 and "edit 2 of 2 did not apply" in ev.metrics["edit_notes"][0]
    child = State(id="c", value=ev.value, artifact=ev.artifact, metrics=ev.metrics, parent_id=root.id)
    assert "## Note on the edit that made this program" in task.prompt(child, root)[0]["content"]
    # an edit outside the evolve block is dropped, and said so
    cand = task.parse(block("print('kept')", "print('changed')") + block("    return 1.5", "    return 3"), root)
    assert "print('kept')" in cand.code and "return 3" in cand.code
    assert any("outside the EVOLVE-BLOCK" in n for n in cand.notes)
    # nothing matched: invalid with the reason, before anything runs
    bad = task.parse(block("    return 99", "    return 3"), root)
    assert bad.program is None and "no SEARCH/REPLACE edit matched" in bad.error
    # a whole program is still accepted in diff mode
    whole = task.parse("```python\ndef solve():\n    return 4.0\n```", root)
    assert whole.error is None and "return 4.0" in whole.code


def test_whole_mode_is_the_default_and_refuses_unknown_formats():
    import pytest

    task = _task()
    root = task.initial_states(1, np.random.default_rng(0))[0]
    assert "SEARCH" not in task.prompt(root)[0]["content"]
    assert task.parse(block("    return 1.5", "    return 2"), root).error  # no code block
    with pytest.raises(ValueError, match="edits must be one of"):
        _task(edits="patch")


def test_ahc_task_takes_diff_answers():
    from pathlib import Path

    from tttd.registry import get_task

    code = (Path(tttd.__file__).parent / "tasks" / "ahc" / "baselines" / "ahc039_grid.cpp").read_text()
    task = get_task("ahc039", cases="0-1", edits="diff")
    parent = State(id="p", value=10.0, artifact={"code": code})
    assert "<<<<<<< SEARCH" in task.prompt(parent)[0]["content"]
    line = next(ln for ln in code.split("\n") if "main" in ln)
    cand = task.parse(block(line, line + " // edited"), parent)
    assert cand.error is None and cand.program is not None and "// edited" in cand.code
    assert task.parse(block("no such line", "x"), parent).error.startswith("no SEARCH/REPLACE edit matched")
    assert "SEARCH" not in get_task("ahc039", cases="0-1").prompt(parent)[0]["content"]  # default: whole
