"""tttd stand-in for ``shinka.core.run_shinka_eval``: load the program, call its experiment
function ``num_runs`` times (sequentially), validate, aggregate, write ``metrics.json`` and
``correct.json``; the bookkeeping metrics and the NaN/inf rule follow ShinkaEvolve's."""
import importlib.util
import json
import math
import os
import time

DEFAULT_METRICS_ON_ERROR = {
    "combined_score": 0.0, "execution_time_mean": 0.0, "execution_time_std": 0.0,
    "num_successful_runs": 0, "num_valid_runs": 0, "num_invalid_runs": 0, "all_validation_errors": [],
}


def load_program(program_path):
    spec = importlib.util.spec_from_file_location("program", program_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def save_json_results(results_dir, metrics, correct, error=None, verbose=True):
    os.makedirs(results_dir, exist_ok=True)
    with open(os.path.join(results_dir, "correct.json"), "w") as f:
        json.dump({"correct": bool(correct), "error": error}, f)
    with open(os.path.join(results_dir, "metrics.json"), "w") as f:
        json.dump(metrics, f, default=str)


def _std(xs):
    if not xs:
        return 0.0
    m = sum(xs) / len(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / len(xs))


def run_shinka_eval(program_path, results_dir, experiment_fn_name, num_runs, get_experiment_kwargs=None,
                    aggregate_metrics_fn=None, validate_fn=None, plotting_fn=None,
                    default_metrics_on_error=None, **_ignored):
    correct, error, results, times, errors = True, None, [], [], []
    n_valid = n_invalid = 0
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
                if ok:
                    n_valid += 1
                else:
                    n_invalid += 1
                    correct = False
                    if msg:
                        error = error or "Validation failed: %s" % (msg,)
                        if msg not in errors:
                            errors.append(msg)
        if aggregate_metrics_fn:
            metrics = aggregate_metrics_fn(results)
        else:
            metrics = {"num_successful_runs": len(results)}
        metrics["execution_time_mean"] = sum(times) / len(times) if times else 0.0
        metrics["execution_time_std"] = _std(times)
        if validate_fn:
            metrics.update(num_valid_runs=n_valid, num_invalid_runs=n_invalid, all_validation_errors=errors)
        score = metrics.get("combined_score")
        if isinstance(score, float) and not math.isfinite(score):
            correct = False
            error = error or "combined_score is %r" % (score,)
    except Exception as e:
        base = dict(default_metrics_on_error or {})
        metrics = {k: base.get(k, v) for k, v in DEFAULT_METRICS_ON_ERROR.items()}
        correct, error = False, str(e)
    metrics.pop("extra_data", None)  # upstream pickles it for plots: not needed here
    save_json_results(results_dir, metrics, correct, error)
    return metrics, correct, error
