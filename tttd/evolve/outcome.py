"""The verdict on what an upstream evaluator said, computed in the trusted process.

**Value.** ``--task-option metric=NAME`` picks a metric; without it the value is
``combined_score`` (both frameworks), else, for OpenEvolve, its own fallback
(``openevolve.utils.metrics_utils.get_fitness_score``, 0.4.1): the mean of the numeric metrics
that are not MAP-Elites feature dimensions (booleans and NaN left out).

**Validity.** A candidate is invalid when the evaluator raised or timed out, a cascade stage
raised, OpenEvolve's ``error`` metric (or artifact) is a non-empty string, a ``validity`` metric is 0 (or
false), ShinkaEvolve's ``correct.json`` says ``correct: false``, or the chosen value is missing
or not a finite number. Upstream keeps such programs with score 0; tttd does not count them as
valid (they would inflate the valid rate and fill the archive with failures).

**Feedback.** The evaluator's other metrics, OpenEvolve artifacts, ShinkaEvolve's public
metrics and ``text_feedback`` (never its private metrics) are kept with the state, cleaned of
control characters and code fences and capped, and shown in the next prompt.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

METRICS_MAX = 30
STRING_METRIC_CHARS = 200
ARTIFACT_CHARS = 2000
FEEDBACK_CHARS = 6000
_ANSI = re.compile(r"\x1b(?:[@-Z\\-_]|\[[0-?]*[ -/]*[@-~])")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def clean(text: Any, cap: int) -> str:
    """Text from the jail as prompt text: no ANSI/control characters, no ``` (which would end
    the fence it is shown in), at most ``cap`` characters."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if not isinstance(text, str):
        text = json.dumps(text, default=str) if isinstance(text, (dict, list)) else str(text)
    text = _CONTROL.sub("", _ANSI.sub("", text.replace("\r\n", "\n"))).replace("```", "'''")
    if len(text) > cap:
        text = text[:cap] + f"\n... (truncated, {len(text) - cap} more characters)"
    return text


def _number(v: Any) -> float | None:
    """A finite number (bool excluded) or None."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def openevolve_fitness(metrics: dict[str, Any], features: list[str]) -> float | None:
    """OpenEvolve's ranking value: ``combined_score``, else the mean of the numeric metrics
    outside ``features`` (all numeric metrics if that leaves none); None when none is numeric."""
    if "combined_score" in metrics:
        try:
            return float(metrics["combined_score"])
        except (TypeError, ValueError):
            pass

    def nums(items):
        return [float(v) for k, v in items
                if isinstance(v, (int, float)) and not isinstance(v, bool) and float(v) == float(v)]

    vals = nums((k, v) for k, v in metrics.items() if k not in features) or nums(metrics.items())
    return sum(vals) / len(vals) if vals else None


@dataclass
class Verdict:
    value: float | None
    error: str | None
    feedback: dict[str, Any] = field(default_factory=dict)


def _scalars(metrics: dict[str, Any], skip: set[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in metrics.items():
        if k in skip or len(out) >= METRICS_MAX:
            continue
        if isinstance(v, bool) or _number(v) is not None:
            out[clean(k, 60)] = v if isinstance(v, bool) else float(v)
        elif isinstance(v, str) and v.strip():
            out[clean(k, 60)] = clean(v, STRING_METRIC_CHARS)
    return out


def _texts(items: dict[str, Any]) -> dict[str, str]:
    out, total = {}, 0
    for k, v in items.items():
        if total >= FEEDBACK_CHARS:
            break
        text = clean(v, min(ARTIFACT_CHARS, FEEDBACK_CHARS - total))
        if text.strip():
            out[clean(k, 60)] = text
            total += len(text)
    return out


def _pick(metrics: dict[str, Any], metric: str, where: str) -> tuple[float | None, str | None]:
    v = metrics.get(metric)
    if v is None and "." in metric:  # public.score -> metrics["public"]["score"]
        head, _, rest = metric.partition(".")
        node = metrics.get(head)
        v = node.get(rest) if isinstance(node, dict) else None
    if v is None:
        names = sorted(k for k, x in metrics.items() if _number(x) is not None)
        return None, f"the {where} has no metric {metric!r}; its numeric metrics: {', '.join(names) or 'none'}"
    num = _number(v)
    if num is None:
        return None, f"metric {metric!r} is {v!r}, not a finite number"
    return num, None


def judge_openevolve(data: Any, metric: str | None, features: list[str]) -> Verdict:
    if not isinstance(data, dict) or not isinstance(data.get("metrics"), dict):
        return Verdict(None, "the evaluator returned no dict of metrics")
    metrics, arts = data["metrics"], data.get("artifacts") or {}
    fb: dict[str, Any] = {"metrics": _scalars(metrics, set()), "artifacts": _texts(arts if isinstance(arts, dict) else {})}
    if data.get("stopped"):
        fb["cascade"] = clean(data["stopped"], 300)
    if data.get("failure"):
        return Verdict(None, clean(data["failure"], 500), fb)
    errors = [e for e in data.get("errors") or [] if isinstance(e, str) and e]
    for where in (metrics, arts if isinstance(arts, dict) else {}):  # e.g. artifacts={"error": "Compilation failed"}
        if isinstance(where.get("error"), str) and where["error"].strip():
            errors.append(where["error"])
    if errors:
        return Verdict(None, "the evaluator reported an error: " + clean(errors[0], 300), fb)
    validity = metrics.get("validity")
    if validity is False or (_number(validity) is not None and float(validity) == 0.0):
        return Verdict(None, "the evaluator marked the program invalid (validity 0)", fb)
    if metric:
        value, err = _pick(metrics, metric, "evaluator's result")
        return Verdict(value, err, fb)
    if "combined_score" in metrics and _number(metrics["combined_score"]) is None:
        try:
            float(metrics["combined_score"])
        except (TypeError, ValueError):
            pass  # upstream falls back to the mean, as below
        else:
            return Verdict(None, f"combined_score is {metrics['combined_score']!r}, not a finite number", fb)
    value = openevolve_fitness(metrics, features)
    if value is None or not math.isfinite(value):
        return Verdict(None, "the evaluator returned no combined_score and no numeric metric", fb)
    return Verdict(value, None, fb)


def judge_shinka(data: Any, metric: str | None) -> Verdict:
    if not isinstance(data, dict):
        return Verdict(None, "the evaluator returned nothing")
    metrics, correct = data.get("metrics"), data.get("correct")
    if not isinstance(metrics, dict) or not isinstance(correct, dict):
        return Verdict(None, "the evaluator wrote no metrics.json / correct.json")
    public = metrics.get("public") if isinstance(metrics.get("public"), dict) else {}
    shown = _scalars(metrics, {"public", "private", "text_feedback", "extra_data", "all_validation_errors"})
    shown.update(_scalars(public, set()))
    fb: dict[str, Any] = {"metrics": shown, "artifacts": {}}
    if metrics.get("text_feedback"):
        fb["artifacts"]["text_feedback"] = clean(metrics["text_feedback"], ARTIFACT_CHARS)
    if not correct.get("correct", False):
        why = correct.get("error") or "no reason given"
        fb["artifacts"]["error"] = clean(why, ARTIFACT_CHARS)
        return Verdict(None, "the evaluator judged the program incorrect: " + clean(why, 300), fb)
    value, err = _pick(metrics, metric or "combined_score", "metrics.json")
    if err and metric and public:
        value, err = _pick(public, metric, "metrics.json (public)")
    return Verdict(value, err, fb)


def render_feedback(fb: dict[str, Any], value_label: str) -> str | None:
    """The prompt section for a state's evaluator feedback (None when there is none)."""
    if not fb:
        return None
    lines = []
    metrics = {k: v for k, v in (fb.get("metrics") or {}).items() if k != value_label}
    if metrics:
        lines.append("Metrics: " + ", ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}"
                                             for k, v in metrics.items()))
    if fb.get("cascade"):
        lines.append(f"Cascade: {fb['cascade']}")
    if fb.get("rescore"):
        r = fb["rescore"]
        lines.append(f"Re-scored {r['runs']} times: mean {r['mean']:.6g}, standard deviation {r['std']:.3g}, "
                     f"range {r['min']:.6g} .. {r['max']:.6g}")
    for name, text in (fb.get("artifacts") or {}).items():
        lines.append(f"### {name}\n```\n{text}\n```")
    if not lines:
        return None
    return "## Evaluator feedback on this program\n" + "\n".join(lines)
