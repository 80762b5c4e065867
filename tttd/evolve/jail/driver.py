"""Runs inside the sandbox as the candidate's source (tttd never imports it).

Writes the problem folder's files, the candidate program and the stand-in packages into the
working directory, calls the framework's evaluator on the candidate and returns what it said
as plain data: ``{"metrics", "artifacts", "correct", "stages", "stopped", "failure"}``. The
trusted process then picks the score and the verdict (:mod:`tttd.evolve.outcome`).

OpenEvolve's cascade (``evaluate_stage1/2/3``) follows ``openevolve.evaluator._cascade_evaluate``:
a stage whose score (``combined_score``, else the mean of the numeric metrics other than
``error``) is below its threshold ends the evaluation with the metrics so far; later stages'
numeric metrics are merged over earlier ones. Injected globals: ``_tttd_files``,
``_tttd_shims``, ``_tttd_candidate``, ``_tttd_candidate_files`` (a multi-file program, else None; its
main file is then ``evolved_program/<_tttd_program_name>``), ``_tttd_program_name``, ``_tttd_evaluator``,
``_tttd_framework``, ``_tttd_thresholds`` (None: no cascade), ``_tttd_path``.
"""
import base64
import importlib.util
import json
import math
import os
import runpy
import sys
import traceback


def _data(x, depth=0):
    if depth > 20:
        return str(x)
    if x is None or isinstance(x, (bool, int, str)):
        return x
    if isinstance(x, float):
        return x if math.isfinite(x) else repr(x)
    if isinstance(x, bytes):
        return x.decode("utf-8", "replace")
    if isinstance(x, dict):
        return {str(k): _data(v, depth + 1) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_data(v, depth + 1) for v in list(x)[:1000]]
    if hasattr(x, "item") and getattr(x, "ndim", 1) == 0:
        return _data(x.item(), depth + 1)
    return str(x)


def _write(rel, data):
    d = os.path.dirname(rel)
    if d:
        os.makedirs(d, exist_ok=True)
    with open(rel, "wb") as f:
        f.write(data)


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def _split(res):
    """(metrics, artifacts) of an OpenEvolve result: an EvaluationResult (ours or the real one),
    a dict of metrics, or a dict {"metrics": {...}, "artifacts": {...}}."""
    if hasattr(res, "metrics") and not isinstance(res, dict):
        return dict(res.metrics or {}), dict(getattr(res, "artifacts", None) or {})
    if isinstance(res, dict):
        if set(res) <= {"metrics", "artifacts"} and isinstance(res.get("metrics"), dict):
            return dict(res["metrics"]), dict(res.get("artifacts") or {})
        metrics = dict(res)
        arts = metrics.pop("artifacts") if isinstance(metrics.get("artifacts"), dict) else {}
        return metrics, dict(arts)
    raise TypeError("the evaluator returned %s, not a dict of metrics" % type(res).__name__)


def _stage_score(metrics):
    """openevolve.evaluator._passes_threshold's score."""
    if isinstance(metrics.get("combined_score"), (int, float)):
        return float(metrics["combined_score"])
    vals = [float(v) for k, v in metrics.items()
            if k != "error" and isinstance(v, (int, float)) and not isinstance(v, bool)]
    return sum(vals) / len(vals) if vals else None


def _openevolve(mod, program, thresholds):
    if thresholds is None or not callable(getattr(mod, "evaluate_stage1", None)):
        metrics, arts = _split(mod.evaluate(program))
        return {"metrics": metrics, "artifacts": arts, "stages": 0}
    metrics, arts, errors, done = {}, {}, [], 0
    for n in (1, 2, 3):
        fn = getattr(mod, "evaluate_stage%d" % n, None)
        if n > 1 and (fn is None or len(thresholds) < n - 1):
            break
        if n > 1:
            score = _stage_score(metrics)
            if score is None or score < thresholds[n - 2]:
                return {"metrics": metrics, "artifacts": arts, "stages": n - 1, "errors": errors,
                        "stopped": "stage %d score %s is below the cascade threshold %g: later stages not run"
                                   % (n - 1, "none" if score is None else "%.6g" % score, thresholds[n - 2])}
        try:
            m, a = _split(fn(program))
        except Exception as e:
            arts.update({"failure_stage": "stage%d" % n, "traceback": traceback.format_exc()[-4000:]})
            return {"metrics": metrics, "artifacts": arts, "stages": n, "errors": errors,
                    "failure": "stage %d of the cascade raised %s: %s" % (n, type(e).__name__, e)}
        if isinstance(m.get("error"), str) and m["error"]:
            errors.append(m["error"])
        if n == 1:
            metrics = m
        else:  # upstream merges numeric metrics only, 'error' left out
            metrics.update({k: v if isinstance(v, bool) else float(v) for k, v in m.items()
                            if isinstance(v, (int, float)) and k != "error"})
        arts.update(a)
        done = n
    return {"metrics": metrics, "artifacts": arts, "stages": done, "errors": errors}


def _shinka(mod, program, evaluator, here):
    results = os.path.join(here, "_tttd_results")
    os.makedirs(results, exist_ok=True)
    if callable(getattr(mod, "main", None)):
        mod.main(program, results)
    else:
        sys.argv = [evaluator, "--program_path", program, "--results_dir", results]
        try:
            runpy.run_path(evaluator, run_name="__main__")
        except SystemExit as e:
            if e.code not in (None, 0):
                raise
    out = {}
    for name in ("metrics", "correct"):
        path = os.path.join(results, name + ".json")
        if os.path.exists(path):
            with open(path) as f:
                out[name] = json.load(f)
        else:
            out[name] = None
    return out


def _tttd_evaluate():
    for rel, b64 in _tttd_files.items():  # noqa: F821 (injected)
        _write(rel, base64.b64decode(b64))
    for rel, text in _tttd_shims.items():  # noqa: F821
        _write(os.path.join("_tttd_shims", rel), text.encode())
    here = os.getcwd()
    if _tttd_candidate_files is not None:  # noqa: F821  a program of several files (issue 37)
        base = os.path.join(here, "evolved_program")
        for rel, text in _tttd_candidate_files.items():  # noqa: F821  (paths checked by tttd)
            path = os.path.normpath(os.path.join(base, rel))
            if not path.startswith(base + os.sep):
                raise ValueError("file path outside the program directory: %r" % rel)
            _write(path, text.encode())
        sys.path.insert(0, base)  # the program's files import each other
    else:
        _write(_tttd_program_name, _tttd_candidate.encode())  # noqa: F821
    sys.path.insert(0, here)
    sys.path.append(os.path.join(here, "_tttd_shims"))
    if _tttd_path:  # noqa: F821  (toolchain bin directories)
        os.environ["PATH"] = os.pathsep.join(list(_tttd_path) + [os.environ.get("PATH", "/usr/bin:/bin")])  # noqa: F821
    program = os.path.join(here, _tttd_program_name)  # noqa: F821
    evaluator = os.path.join(here, _tttd_evaluator)  # noqa: F821
    if _tttd_framework == "openevolve":  # noqa: F821
        out = _openevolve(_load(evaluator, "evaluator"), program, _tttd_thresholds)  # noqa: F821
    else:
        out = _shinka(_load(evaluator, "evaluate"), program, evaluator, here)
    return _data(out)
