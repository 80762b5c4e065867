"""The ablation table as Markdown (printed by ``tttd ablate``, pasted into docs, shown in reports)."""

from __future__ import annotations

from typing import Any

from tttd.wording import plural


def _ci(b: dict[str, Any] | None, digits: int = 4) -> str:
    if not b or b.get("mean") is None:
        return "-"
    if b["n"] == 1:
        return f"{b['mean']:.{digits}f}"
    return f"{b['mean']:.{digits}f} [{b['lo']:.{digits}f}, {b['hi']:.{digits}f}]"


def _p(p: float | None) -> str:
    return "-" if p is None else (f"{p:.3f}" if p >= 0.001 else f"{p:.1e}")


def markdown(result: dict[str, Any]) -> str:
    """Two tables: values per variant, then the paired comparisons with ``full``."""
    budget = result["samples_per_run"]
    marks = list(next(iter(result["variants"].values()), {}).get("at_samples", {}))
    word = "higher" if result["direction"] == "maximize" else "lower"
    lines = [
        f"task `{result['task']}`, {plural(result['steps'], 'step')}, {budget} samples per run, "
        f"{result['runs_finished']}/{result['runs_total']} runs finished; {word} is better; "
        "mean [95% bootstrap interval] over seeds",
        "",
        "| variant | seeds | best at the end | " + " | ".join(f"best at {m} samples" for m in marks)
        + " | valid rate | reached threshold (median samples) |",
        "|---|---|---|" + "---|" * len(marks) + "---|---|",
    ]
    thr = result.get("threshold")
    for name, row in result["variants"].items():
        reach = row.get("to_threshold")
        reach_text = "-"
        if reach:
            median = reach["median_samples"]
            reach_text = f"{reach['reached']}/{reach['of']}" + ("" if median is None else f" ({median:.0f})")
        unfinished = len(result.get("seeds") or []) - len(row["seeds_finished"])  # e.g. stopped by Ctrl-C
        seeds = f"{len(row['seeds_finished'])}" + (f" ({unfinished} unfinished)" if unfinished > 0 else "")
        lines.append(f"| {name} | {seeds} | {_ci(row['final'])} | "
                     + " | ".join(_ci(row["at_samples"][m]) for m in marks)
                     + f" | {_ci(row['valid_rate'], 2)} | {reach_text} |")
    if thr is not None:
        lines += ["", f"threshold: {thr:.4f} ({result['threshold_rule']})"]
    lines += ["", "paired with `full` (same seed = same initial states; difference > 0: the variant is better)", "",
              "| variant | pairs | variant better on seeds | full better on seeds | ties | mean difference "
              "| sign test p | Wilcoxon p |",
              "|---|---|---|---|---|---|---|---|"]
    for name, row in result["variants"].items():
        vs = row.get("vs_full")
        if not vs:
            continue
        lines.append(f"| {name} | {vs['pairs']} | {_seeds(vs['variant_better_seeds'])} | "
                     f"{_seeds(vs['full_better_seeds'])} | "
                     f"{_seeds(vs['tied_seeds'])} | {_ci(vs['mean_difference'])} | {_p(vs['sign_test_p'])} | "
                     f"{_p(vs['wilcoxon_p'])} |")
    return "\n".join(lines)


def _seeds(seeds: list[int]) -> str:
    return f"{len(seeds)} ({', '.join(map(str, seeds))})" if seeds else "0"
