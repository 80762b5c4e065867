"""ShinkaEvolve-style evaluator (main(program_path, results_dir) via run_shinka_eval) for tttd's tests."""
import argparse

from shinka.core import run_shinka_eval

TARGET = 7.0


def validate(result):
    if not isinstance(result, (int, float)):
        return False, f"expected a number, got {type(result).__name__}"
    return True, None


def aggregate(results):
    mean = sum(results) / len(results)
    return {"combined_score": max(0.0, 10.0 - abs(mean - TARGET)), "public": {"mean_guess": mean}}


def main(program_path, results_dir):
    run_shinka_eval(program_path=program_path, results_dir=results_dir, experiment_fn_name="run_experiment",
                    num_runs=2, get_experiment_kwargs=lambda i: {"seed": i}, aggregate_metrics_fn=aggregate,
                    validate_fn=validate)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--program_path", default="initial.py")
    parser.add_argument("--results_dir", default="results")
    args = parser.parse_args()
    main(args.program_path, args.results_dir)
