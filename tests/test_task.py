import math
import textwrap

import pytest

from tttd.registry import UnknownTaskError, get_task, list_tasks, register_task
from tttd.task import Objective, Task, artifact_key, extract_code_block, tail
from tttd.types import Candidate, Evaluation, SandboxResult


def test_extract_last_python_block_and_unterminated():
    text = "a\n```python\nx = 1\n```\nmore\n```py\ny = 2\n```\n```text\nno\n```"
    assert extract_code_block(text) == "y = 2"
    assert extract_code_block("```python\nz = 3\n") == "z = 3"  # cut at the token budget
    assert extract_code_block("no code here") is None
    assert extract_code_block("```python\n\n```") is None
    assert extract_code_block("```cpp\nint main(){}\n```", ("cpp",)) == "int main(){}"


def test_objective_orientation_and_transforms():
    mn = Objective("minimize", "reciprocal")
    assert mn.reward(0.5) == 2.0
    assert mn.oriented(0.4) == -0.4 and math.isnan(mn.oriented(None))
    assert mn.better(0.38, 0.39) and not mn.better(0.39, 0.38) and mn.better(0.5, None)
    with pytest.raises(ValueError, match="not finite"):
        mn.reward(0.0)
    with pytest.raises(ValueError, match="unknown reward transform"):
        Objective("maximize", "square")
    with pytest.raises(ValueError, match="direction"):
        Objective("up")


def test_artifact_key_is_stable_and_rounds():
    assert artifact_key([0.1 + 0.2, 1]) == artifact_key([0.3, 1])
    assert artifact_key([0.3, 1]) != artifact_key([0.3, 2])


def test_tail_marks_truncation():
    assert tail("abc", 5) == "abc"
    t = tail("x" * 600, 500)
    assert t.endswith("x" * 500) and "truncated" in t


def test_registry_lists_builtin_and_rejects_unknown():
    tasks = list_tasks()
    assert "demo" in tasks and tasks["demo"]
    with pytest.raises(UnknownTaskError, match="unknown task 'nope'"):
        get_task("nope")


def test_user_task_file_registers(tmp_path):
    f = tmp_path / "mine.py"
    f.write_text(textwrap.dedent('''
        import tttd
        from tttd.task import Task

        @tttd.register_task("my-user-task")
        class Mine(Task):
            """My own task."""
    '''))
    task = get_task(str(f))
    assert task.name == "my-user-task"
    assert list_tasks()["my-user-task"] == "My own task."
    with pytest.raises(UnknownTaskError, match="not found"):
        get_task(str(tmp_path / "missing.py"))
    (tmp_path / "none.py").write_text("x = 1\n")
    with pytest.raises(UnknownTaskError, match="registers no task"):
        get_task(str(tmp_path / "none.py"))


def test_duplicate_name_from_other_module_refused():
    class A(Task):
        pass

    register_task("dup-test-task", A)
    B = type("B", (Task,), {"__module__": "elsewhere"})
    with pytest.raises(ValueError, match="already registered"):
        register_task("dup-test-task", B)


class _Echo(Task):
    objective = Objective("maximize")

    def verify(self, data, state=None):
        if data is None or not math.isfinite(data):
            return self.invalid("bad number")
        return Evaluation(valid=True, value=float(data), reward=float(data), artifact={"construction": [data]})


def test_evaluate_routes_sandbox_status_to_invalid():
    from tttd.types import Program

    t = _Echo()
    cand = Candidate(text="", code="x", program=Program(source="x"))
    ev = t.evaluate(cand, SandboxResult(status="timeout", message="wall limit 1 s"))
    assert not ev.valid and ev.status == "timeout" and "wall limit" in ev.message and ev.reward == 0.0
    ok = t.evaluate(cand, SandboxResult(status="ok", value=2.5, stdout="hello"))
    assert ok.valid and ok.value == 2.5 and ok.output_tail == "hello" and ok.artifact["code"] == "x"
    assert ok.key == artifact_key([2.5])
    parse_err = t.evaluate(Candidate(text="", error="no code"), None)
    assert parse_err.status == "parse_error" and not parse_err.valid


def test_evaluation_refuses_non_finite():
    with pytest.raises(ValueError):
        Evaluation(valid=True, value=float("nan"))
    with pytest.raises(ValueError):
        Evaluation(valid=False, reward=float("inf"))
