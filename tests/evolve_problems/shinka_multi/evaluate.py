"""ShinkaEvolve-style evaluator for a program of several files (issue 37): the program is the
directory initial/ (main.py imports its sibling guesses.py); two metrics pull apart."""
from shinka.core import run_shinka_eval

TARGET = 7.0


def validate(result):
    if not isinstance(result, (list, tuple)) or len(result) != 2:
        return False, f"expected [guess, effort], got {result!r}"
    return True, None


def aggregate(results):
    guess, effort = results[0]
    return {"combined_score": max(0.0, 10.0 - abs(guess - TARGET)), "public": {"effort": float(effort)}}


def main(program_path, results_dir):
    run_shinka_eval(program_path=program_path, results_dir=results_dir, experiment_fn_name="run_experiment",
                    num_runs=1, get_experiment_kwargs=lambda i: {}, aggregate_metrics_fn=aggregate,
                    validate_fn=validate)
