"""Run OpenEvolve and ShinkaEvolve problem folders with tttd: ``tttd run path/to/problem_dir``.

Recognised layouts (checked in this order):

- **OpenEvolve**: ``initial_program.py`` + ``evaluator.py`` defining ``evaluate(program_path)``,
  which returns a dict of metrics (or an object with a ``.metrics`` dict, like OpenEvolve's
  ``EvaluationResult``). The value is ``combined_score`` when present, else the mean of the
  numeric metrics (OpenEvolve's own fallback); a non-empty ``error`` metric (the documented way an
  OpenEvolve evaluator reports a failed program) makes the candidate invalid. An optional ``config.yaml`` supplies the problem
  statement (``prompt.system_message``). Cascade stages (``evaluate_stage1`` ...) are not used:
  tttd calls ``evaluate`` once per candidate.
- **ShinkaEvolve**: ``initial.py`` + ``evaluate.py`` defining ``main(program_path, results_dir)``
  (or runnable as ``python evaluate.py --program_path P --results_dir D``), which writes
  ``metrics.json`` and ``correct.json`` (``{"correct": bool, "error": ...}``) into ``results_dir``.
  The value is ``metrics["combined_score"]``; ``correct: false`` makes the candidate invalid.
  ``shinka.core.run_shinka_eval`` (what most Shinka evaluators call) is provided inside the
  sandbox by a small compatible stand-in written for tttd when ShinkaEvolve itself is not
  installed; likewise ``openevolve.evaluation_result.EvaluationResult``.

Higher scores are better in both frameworks. The initial program's ``EVOLVE-BLOCK-START`` /
``EVOLVE-BLOCK-END`` region is the only part the model may change (see :mod:`tttd.program_task`).

**Trust.** Both frameworks' evaluators import the candidate program and call it *in their own
process*. tttd therefore runs the evaluator and the candidate together, inside the sandbox, and
takes the score from the metrics the evaluator returns. A candidate can rewrite the evaluator's
functions or the metrics files from the inside, so **such scores are only as trustworthy as that
evaluator**: the sandbox protects your machine, not the score. For a score you can trust, port
the evaluator's scoring into a :class:`tttd.ProgramTask` ``score(data)`` function, which runs in
the tttd process on the data the program returns.

Task options (``--task-option KEY=VALUE``): ``statement`` (or ``statement_file``) to replace the
statement, ``timeout_s`` (default 300) and ``memory_mb`` (default 4096) for one evaluation, and
``min_score`` (default 0): the lowest valid ``combined_score``, which is also the failure reward
(a valid score below it is reported invalid, so set it for problems with negative scores).
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
from pathlib import Path
from typing import Any

from tttd.program_task import ProgramTask
from tttd.types import Limits, Program, State

LAYOUTS = {
    "openevolve": ("initial_program.py", "evaluator.py"),
    "shinka": ("initial.py", "evaluate.py"),
}
MAX_FILE_BYTES = 4 * 2**20
MAX_TOTAL_BYTES = 32 * 2**20
PROGRAM_NAME = "evolved_program.py"

# The stand-ins are tttd's own minimal code, written from the frameworks' documented interfaces.
_SHIMS = {
    "openevolve/__init__.py": "",
    "openevolve/evaluation_result.py": '''\
class EvaluationResult:
    """tttd stand-in for openevolve.evaluation_result.EvaluationResult (metrics + artifacts)."""

    def __init__(self, metrics=None, artifacts=None):
        self.metrics = dict(metrics or {})
        self.artifacts = dict(artifacts or {})

    @classmethod
    def from_dict(cls, metrics):
        return cls(metrics=metrics)

    def to_dict(self):
        return dict(self.metrics)
''',
    "shinka/__init__.py": "",
    "shinka/core/__init__.py": "from shinka.core.wrap_eval import run_shinka_eval\n",
    "shinka/core/wrap_eval.py": '''\
"""tttd stand-in for shinka.core.run_shinka_eval: load the program, call its experiment function
num_runs times, validate and aggregate, write metrics.json and correct.json."""
import importlib.util
import json
import os
import time


def load_program(program_path):
    spec = importlib.util.spec_from_file_location("program", program_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def save_json_results(results_dir, metrics, correct, error=None):
    os.makedirs(results_dir, exist_ok=True)
    with open(os.path.join(results_dir, "correct.json"), "w") as f:
        json.dump({"correct": bool(correct), "error": error}, f)
    with open(os.path.join(results_dir, "metrics.json"), "w") as f:
        json.dump(metrics, f, default=str)


def run_shinka_eval(program_path, results_dir, experiment_fn_name, num_runs, get_experiment_kwargs=None,
                    aggregate_metrics_fn=None, validate_fn=None, default_metrics_on_error=None, **_ignored):
    correct, error, results, times = True, None, [], []
    try:
        fn = getattr(load_program(program_path), experiment_fn_name)
        for i in range(num_runs):
            kwargs = get_experiment_kwargs(i) if get_experiment_kwargs else {"seed": i + 1}
            t0 = time.perf_counter()
            out = fn(**kwargs)
            times.append(time.perf_counter() - t0)
            results.append(out)
            if validate_fn is not None:
                ok, msg = validate_fn(out)
                if not ok:
                    correct = False
                    error = error or "Validation failed: %s" % (msg,)
        metrics = aggregate_metrics_fn(results) if aggregate_metrics_fn else {"num_successful_runs": len(results)}
        metrics["execution_time_mean"] = sum(times) / len(times) if times else 0.0
    except Exception as e:
        metrics = dict(default_metrics_on_error or {"combined_score": 0.0})
        correct, error = False, str(e)
    metrics.pop("extra_data", None)
    save_json_results(results_dir, metrics, correct, error)
    return metrics, correct, error
''',
}

# Runs inside the sandbox (as the "candidate" module): writes the folder's files, the candidate
# program and the stand-ins, then calls the framework's evaluator and returns its metrics as data.
_DRIVER = '''\
import base64, importlib.util, json, math, os, runpy, sys


def _data(x, depth=0):
    if depth > 20:
        return str(x)
    if x is None or isinstance(x, (bool, int, str)):
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): _data(v, depth + 1) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_data(v, depth + 1) for v in x]
    if hasattr(x, "item") and getattr(x, "ndim", 1) == 0:
        return _data(x.item(), depth + 1)
    return str(x)


def _write(rel, data):
    d = os.path.dirname(rel)
    if d:
        os.makedirs(d, exist_ok=True)
    with open(rel, "wb") as f:
        f.write(data)


def _tttd_evaluate():
    for rel, b64 in _tttd_files.items():
        _write(rel, base64.b64decode(b64))
    for rel, text in _tttd_shims.items():
        _write(os.path.join("_tttd_shims", rel), text.encode())
    _write(_tttd_program_name, _tttd_candidate.encode())
    here = os.getcwd()
    sys.path.insert(0, here)
    sys.path.append(os.path.join(here, "_tttd_shims"))
    program = os.path.join(here, _tttd_program_name)
    evaluator = os.path.join(here, _tttd_evaluator)
    if _tttd_layout == "openevolve":
        spec = importlib.util.spec_from_file_location("evaluator", evaluator)
        mod = importlib.util.module_from_spec(spec)
        sys.modules["evaluator"] = mod
        spec.loader.exec_module(mod)
        res = mod.evaluate(program)
        metrics = getattr(res, "metrics", res)
        return {"metrics": _data(metrics)}
    results = os.path.join(here, "_tttd_results")
    os.makedirs(results, exist_ok=True)
    spec = importlib.util.spec_from_file_location("evaluate", evaluator)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["evaluate"] = mod
    spec.loader.exec_module(mod)
    if callable(getattr(mod, "main", None)):
        mod.main(program, results)
    else:
        sys.argv = [evaluator, "--program_path", program, "--results_dir", results]
        runpy.run_path(evaluator, run_name="__main__")
    out = {}
    for name in ("metrics", "correct"):
        path = os.path.join(results, name + ".json")
        out[name] = _data(json.load(open(path))) if os.path.exists(path) else None
    return out
'''


def detect_layout(folder: Path) -> str | None:
    for layout, (initial, evaluator) in LAYOUTS.items():
        if (folder / initial).is_file() and (folder / evaluator).is_file():
            return layout
    return None


def _folder_files(folder: Path) -> dict[str, str]:
    """The folder's files (base64), for the evaluator's data and helper modules."""
    out, total = {}, 0
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if not p.is_file() or p.is_symlink() or any(part.startswith(".") or part == "__pycache__"
                                                      for part in rel.parts):
            continue
        size = p.stat().st_size
        if size > MAX_FILE_BYTES:
            continue
        total += size
        if total > MAX_TOTAL_BYTES:
            raise ValueError(f"{folder}: more than {MAX_TOTAL_BYTES >> 20} MiB of files to copy into the sandbox")
        out[rel.as_posix()] = base64.b64encode(p.read_bytes()).decode()
    return out


def _yaml_get(path: Path, *keys: str) -> str | None:
    if not path.is_file():
        return None
    try:
        import yaml

        node: Any = yaml.safe_load(path.read_text(encoding="utf-8"))
    except Exception:
        return None
    for k in keys:
        if not isinstance(node, dict) or k not in node:
            return None
        node = node[k]
    return node if isinstance(node, str) and node.strip() else None


def _statement(folder: Path, layout: str) -> str | None:
    if layout == "openevolve":
        return _yaml_get(folder / "config.yaml", "prompt", "system_message")
    for name in ("shinka.yaml", "config.yaml"):
        found = _yaml_get(folder / name, "evo", "task_sys_msg")
        if found:
            return found
    return None


def _combined_score(metrics: Any) -> float:
    if not isinstance(metrics, dict):
        raise ValueError(f"the evaluator returned {type(metrics).__name__}, not a dict of metrics")
    if metrics.get("error"):  # OpenEvolve's documented failure form: {"combined_score": 0.0, "error": ...}
        raise ValueError(f"the evaluator reported an error: {str(metrics['error'])[:300]}")
    if "combined_score" in metrics:
        v = metrics["combined_score"]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"combined_score is {v!r}, not a finite number")
        return float(v)
    nums = [float(v) for v in metrics.values()
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    if not nums:
        detail = f": {metrics['error']}" if "error" in metrics else ""
        raise ValueError("the evaluator returned no combined_score and no numeric metric" + detail)
    return sum(nums) / len(nums)


def score_openevolve(data: Any) -> float:
    if not isinstance(data, dict):
        raise TypeError("expected the evaluator's metrics")
    return _combined_score(data.get("metrics"))


def score_shinka(data: Any) -> float:
    if not isinstance(data, dict):
        raise TypeError("expected the evaluator's metrics")
    correct = data.get("correct")
    if correct is None or data.get("metrics") is None:
        raise ValueError("the evaluator wrote no metrics.json / correct.json")
    if not correct.get("correct", False):
        raise ValueError(f"the evaluator judged the program incorrect: {correct.get('error')}")
    return _combined_score(data["metrics"])


class EvaluatorTask(ProgramTask):
    """A ProgramTask whose score comes from an OpenEvolve / ShinkaEvolve evaluator in the sandbox."""

    def __init__(self, folder: Path, layout: str, *, statement: str | None = None,
                 statement_file: str | None = None, timeout_s: float = 300.0, memory_mb: int = 4096,
                 min_score: float = 0.0) -> None:
        initial_name, evaluator_name = LAYOUTS[layout]
        if statement_file:
            statement = Path(statement_file).read_text(encoding="utf-8")
        statement = statement or _statement(folder, layout) or (
            f"Improve the program below. It is scored by the problem's evaluator ({evaluator_name}); "
            "a higher combined_score is better.")
        self.folder, self.layout, self.evaluator_name = folder, layout, evaluator_name
        self._files = _folder_files(folder)
        super().__init__(
            statement=statement,
            initial_program=(folder / initial_name).read_text(encoding="utf-8"),
            entry="_tttd_evaluate",
            returns="",
            score=score_openevolve if layout == "openevolve" else score_shinka,
            direction="maximize",
            bounds=(float(min_score), None),
            failure_reward=float(min_score),
            limits=Limits(wall_s=float(timeout_s), memory_mb=int(memory_mb), processes=64),
            value_label="combined_score",
            keep_result_chars=0,  # re-verification reruns the program (best/solution.py)
            summary=f"{'OpenEvolve' if layout == 'openevolve' else 'ShinkaEvolve'} problem {folder.name}",
        )
        self.contract = (f"- The program is scored by the problem's own evaluator ({evaluator_name}), "
                         "which imports it and calls it: keep its interface (the functions the "
                         "evaluator calls, their arguments and return values) as in the code above.")

    def program_from_code(self, code: str, state: State | None = None) -> Program:
        inject = {"_tttd_files": self._files, "_tttd_shims": _SHIMS, "_tttd_candidate": code,
                  "_tttd_program_name": PROGRAM_NAME, "_tttd_evaluator": self.evaluator_name,
                  "_tttd_layout": self.layout}
        return Program(source=_DRIVER, entry="_tttd_evaluate", inject=inject, limits=self.limits)


def register_problem_dir(path: str | Path) -> str:
    """Register the problem folder at ``path`` as a task; returns its task name."""
    from tttd.task import register_task

    folder = Path(path).resolve()
    layout = detect_layout(folder)
    if layout is None:
        expected = " or ".join(f"{a} + {b}" for a, b in LAYOUTS.values())
        raise ValueError(f"{path} is not a problem folder tttd knows: expected {expected}")
    name = re.sub(r"[^A-Za-z0-9_.\-]", "_", folder.name).lstrip("._-") or "problem"

    def factory(**options: Any) -> EvaluatorTask:
        return EvaluatorTask(folder, layout, **options)

    factory.__module__ = "tttd_problem_dir_" + hashlib.sha1(str(folder).encode()).hexdigest()[:10]
    factory.__doc__ = f"{'OpenEvolve' if layout == 'openevolve' else 'ShinkaEvolve'} problem {folder}"
    register_task(name, factory)
    return name
