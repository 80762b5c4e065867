"""tttd.evolve.outcome: value (metric choice, OpenEvolve's fallback), validity and feedback."""

import pytest

from tttd.evolve.outcome import clean, judge_openevolve, judge_shinka, openevolve_fitness, render_feedback

FEATURES = ["complexity", "diversity"]


def oe(metrics, **extra):
    return {"metrics": metrics, "artifacts": extra.pop("artifacts", {}), **extra}


def test_openevolve_value_rules():
    assert judge_openevolve(oe({"combined_score": 0.7, "x": 100}), None, FEATURES).value == 0.7
    # no combined_score: the mean of the numeric metrics other than the feature dimensions
    v = judge_openevolve(oe({"a": 1.0, "b": 3.0, "complexity": 50.0, "note": "hi"}), None, FEATURES)
    assert v.value == 2.0 and v.error is None
    assert openevolve_fitness({"complexity": 4.0}, FEATURES) == 4.0  # nothing else: all metrics
    v = judge_openevolve(oe({"overall_score": 0.25, "count": 90.0}), "overall_score", FEATURES)
    assert v.value == 0.25
    v = judge_openevolve(oe({"overall_score": 0.25, "count": 90.0}), "overal", FEATURES)
    assert v.value is None and "no metric 'overal'; its numeric metrics: count, overall_score" in v.error


@pytest.mark.parametrize("metrics, fragment", [
    ({"combined_score": 0.0, "error": "boom"}, "reported an error: boom"),
    ({"combined_score": 0.0, "validity": 0.0}, "validity 0"),
    ({"combined_score": 1.0, "validity": False}, "validity 0"),
    ({"note": "only text"}, "no combined_score and no numeric metric"),
])
def test_openevolve_invalid(metrics, fragment):
    v = judge_openevolve(oe(metrics), None, FEATURES)
    assert v.value is None and fragment in v.error


def test_openevolve_cascade_and_failures_reach_the_feedback():
    v = judge_openevolve(oe({"combined_score": 0.2}, stopped="stage 1 score 0.2 is below", stages=1), None, FEATURES)
    assert v.value == 0.2 and v.feedback["cascade"].startswith("stage 1")
    v = judge_openevolve(oe({}, failure="stage 2 of the cascade raised KeyError: 'x'",
                            artifacts={"traceback": "Traceback..."}), None, FEATURES)
    assert v.value is None and "stage 2" in v.error and v.feedback["artifacts"]["traceback"] == "Traceback..."
    assert judge_openevolve({"nothing": 1}, None, FEATURES).error == "the evaluator returned no dict of metrics"


def test_shinka_rules_public_metrics_and_private_hidden():
    data = {"metrics": {"combined_score": 0.5, "public": {"rmse": 0.1}, "private": {"secret": 7},
                        "text_feedback": "try harder"}, "correct": {"correct": True, "error": None}}
    v = judge_shinka(data, None)
    assert v.value == 0.5 and v.feedback["metrics"] == {"combined_score": 0.5, "rmse": 0.1}
    assert v.feedback["artifacts"] == {"text_feedback": "try harder"} and "secret" not in str(v.feedback)
    assert judge_shinka(data, "public.rmse").value == 0.1 and judge_shinka(data, "rmse").value == 0.1
    wrong = {**data, "correct": {"correct": False, "error": "overlap"}}
    v = judge_shinka(wrong, None)
    assert v.value is None and v.error == "the evaluator judged the program incorrect: overlap"
    assert "wrote no metrics.json" in judge_shinka({"metrics": None, "correct": None}, None).error


def test_feedback_is_cleaned_capped_and_rendered():
    assert clean("a\x1b[31mred\x1b[0m\x07 ```x```", 100) == "ared '''x'''"
    assert clean("x" * 50, 10).startswith("x" * 10 + "\n... (truncated, 40 more")
    v = judge_openevolve(oe({"combined_score": 1.0, "n": 3}, artifacts={"report": "y" * 10_000, "bin": b"ok"}),
                         None, FEATURES)
    assert len(v.feedback["artifacts"]["report"]) < 2100 and v.feedback["artifacts"]["bin"] == "ok"
    text = render_feedback(v.feedback, "combined_score")
    assert text.startswith("## Evaluator feedback on this program\nMetrics: n=3")
    assert "combined_score=" not in text and "### report\n```\nyyy" in text
    assert render_feedback({}, "x") is None


def test_an_error_artifact_is_invalid():
    v = judge_openevolve(oe({"score": 0.0, "compile_success": 0.0}, artifacts={"error": "Compilation failed"}),
                         None, FEATURES)
    assert v.value is None and v.error == "the evaluator reported an error: Compilation failed"
