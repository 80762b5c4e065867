"""OpenEvolve-style evaluator (evaluate(program_path) -> dict of metrics) for tttd's tests."""
import importlib.util

from helper import TARGET  # a helper module next to the evaluator, as real problems have


def evaluate(program_path):
    spec = importlib.util.spec_from_file_location("program", program_path)
    program = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(program)
    try:
        g = float(program.run())
    except Exception as e:
        return {"combined_score": 0.0, "error": str(e)}
    print("guessed", g)
    return {"combined_score": max(0.0, 10.0 - abs(g - TARGET)), "distance": abs(g - TARGET)}
