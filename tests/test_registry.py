"""The task registry (tttd/registry.py): the built-in table matches what the modules register,
built-in tasks are imported on demand, and a built-in name cannot be taken by another module."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tttd.tasks import BUILTINS

ROOT = Path(__file__).resolve().parents[1]


def _child(code: str) -> dict:
    """Run ``code`` in a fresh interpreter (an empty registry); it prints one JSON object."""
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                         cwd=ROOT, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_table_says_which_module_registers_which_names():
    got = _child("""
        import importlib, json
        from tttd import registry
        from tttd.tasks import BUILTINS
        added = {}
        for module in sorted(set(BUILTINS.values())):
            before = dict(registry._REGISTRY)
            importlib.import_module(module)
            added[module] = sorted((n, e.origin) for n, e in registry._REGISTRY.items() if n not in before)
        print(json.dumps(added))
    """)
    want = {m: sorted((n, m) for n, mod in BUILTINS.items() if mod == m) for m in set(BUILTINS.values())}
    assert {m: [tuple(x) for x in v] for m, v in got.items()} == want


def test_every_builtin_module_is_in_the_table():
    """A task module under tttd/tasks that registers a name must be listed (else it is never found)."""
    registering = set()
    for f in (ROOT / "tttd" / "tasks").rglob("*.py"):
        text = f.read_text()
        if "register_task(" in text and "def register_task" not in text:
            parts = list(f.relative_to(ROOT).with_suffix("").parts)
            registering.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    assert registering == set(BUILTINS.values())


def test_get_task_imports_only_its_module_and_list_tasks_imports_all():
    got = _child("""
        import json, sys
        from tttd.registry import get_task, list_tasks
        get_task("erdos")
        one = sorted(m for m in sys.modules if m.startswith("tttd.tasks."))
        names = sorted(list_tasks())
        print(json.dumps({"one": one, "names": names}))
    """)
    assert got["one"] == ["tttd.tasks._math", "tttd.tasks.erdos"]
    assert set(BUILTINS) <= set(got["names"])


def test_a_file_cannot_take_a_builtin_name_before_the_builtin_is_loaded(tmp_path):
    f = tmp_path / "mine.py"
    f.write_text("import tttd\n\n@tttd.register_task('erdos')\nclass Mine(tttd.Task):\n    pass\n")
    got = _child(f"""
        import json
        from tttd.registry import get_task
        try:
            get_task({str(f)!r})
            print(json.dumps({{"error": None}}))
        except ValueError as exc:
            print(json.dumps({{"error": str(exc)}}))
    """)
    assert got["error"].startswith(f"{f}:3: ValueError: task 'erdos' is already registered by tttd.tasks.erdos")


def test_unknown_name_lists_every_builtin():
    from tttd.registry import UnknownTaskError, get_task

    with pytest.raises(UnknownTaskError) as err:
        get_task("no_such_task")
    listed = str(err.value).split("registered tasks: ", 1)[1].split(", ")
    assert set(BUILTINS) <= set(listed)
