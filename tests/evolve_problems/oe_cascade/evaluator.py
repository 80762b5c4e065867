"""OpenEvolve-style evaluator with cascade stages and artifacts (EvaluationResult)."""
import importlib.util

from openevolve.evaluation_result import EvaluationResult

TARGET = 7.0


def _guess(program_path):
    spec = importlib.util.spec_from_file_location("program", program_path)
    program = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(program)
    return float(program.run())


def evaluate_stage1(program_path):
    g = _guess(program_path)
    close = max(0.0, 1.0 - abs(g - TARGET) / 10)
    return EvaluationResult(metrics={"combined_score": close, "stage1_passed": 1.0},
                            artifacts={"stage1_report": f"guess {g} is {abs(g - TARGET):.1f} away\x1b[31m```"})


def evaluate_stage2(program_path):
    g = _guess(program_path)
    return EvaluationResult(metrics={"combined_score": 10.0 - abs(g - TARGET), "exact": float(g == TARGET)},
                            artifacts={"validation_report": "stage 2 checked " + str(g)})


def evaluate(program_path):  # what runs when the cascade is off
    return {"combined_score": 100.0 - abs(_guess(program_path) - TARGET)}
