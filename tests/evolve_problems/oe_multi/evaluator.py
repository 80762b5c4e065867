"""OpenEvolve-style evaluator for a program of several files (issue 37): it imports a sibling
module of its own (scoring.py) and the program's main file, which imports its own helper
module. Returns two metrics that pull apart: 'accuracy' and 'cost' (lower is better)."""
import importlib.util

from scoring import grade  # a sibling module of the evaluator


def evaluate(program_path):
    spec = importlib.util.spec_from_file_location("program", program_path)
    program = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(program)
    guess, effort = program.solve()
    accuracy = grade(guess)
    return {"combined_score": accuracy, "accuracy": accuracy, "cost": float(effort)}
