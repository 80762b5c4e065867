"""A noisy OpenEvolve-style evaluator: the score is the program's level plus uniform noise."""
import importlib.util
import random


def evaluate(program_path):
    spec = importlib.util.spec_from_file_location("program", program_path)
    program = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(program)
    return {"combined_score": float(program.level()) + random.random()}
