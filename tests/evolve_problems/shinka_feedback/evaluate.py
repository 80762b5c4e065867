"""ShinkaEvolve-style evaluator writing metrics.json itself (public/private metrics, text_feedback)."""
import importlib.util
import json
import os


def main(program_path, results_dir):
    spec = importlib.util.spec_from_file_location("program", program_path)
    program = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(program)
    xs = [i / 10 for i in range(-10, 11)]
    err = max(abs(program.approximate(x) - x * x) for x in xs)
    correct = err < 5
    metrics = {"combined_score": 1.0 / (1.0 + err) if correct else 0.0,
               "public": {"max_error": err, "score": 1.0 / (1.0 + err)},
               "private": {"secret_points": 21},
               "text_feedback": f"worst error {err:.3f}; try a polynomial"}
    os.makedirs(results_dir, exist_ok=True)
    with open(os.path.join(results_dir, "metrics.json"), "w") as f:
        json.dump(metrics, f)
    with open(os.path.join(results_dir, "correct.json"), "w") as f:
        json.dump({"correct": correct, "error": None if correct else f"error {err} too large"}, f)
