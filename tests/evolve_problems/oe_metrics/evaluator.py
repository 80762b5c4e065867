"""OpenEvolve-style evaluator with no combined_score (like signal_processing): a primary
'overall_score', a large count, a MAP-Elites feature, and a 'validity' flag."""
import importlib.util


def evaluate(program_path):
    spec = importlib.util.spec_from_file_location("program", program_path)
    program = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(program)
    w = program.run()
    valid = isinstance(w, int) and w > 0
    return {
        "overall_score": 1.0 / (1 + abs(w - 5)) if valid else 0.0,  # the primary selection metric
        "slope_changes": float(10 * abs(w - 5)) if valid else 0.0,  # a count: worse when larger
        "complexity": 123.0,  # a MAP-Elites feature dimension (left out of the fallback mean)
        "validity": 1.0 if valid else 0.0,
    }
