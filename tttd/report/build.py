"""``tttd report``: one self-contained HTML file (images embedded) plus PNGs, from run directories."""

from __future__ import annotations

import base64
import io
import json
import time
from pathlib import Path
from typing import Any, Sequence

from tttd.report.data import RunData, load_run_data
from tttd.text import safe
from tttd.wording import shown_step, step_text

#: Steps whose example completions the report shows in full when a run is long: the first and
#: last few, and every step that improved the best value.
EXAMPLE_STEPS_ALL, EXAMPLE_STEPS_ENDS = 40, 10

CONSTRUCTION_CHARS = 4000


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96)
    return buf.getvalue()


class _Images:
    """Figures saved as PNG files in the output folder and kept for embedding."""

    def __init__(self, out: Path):
        self.out = out

    def add(self, fig, name: str) -> str:
        data = _png(fig)
        (self.out / f"{name}.png").write_bytes(data)
        return base64.b64encode(data).decode("ascii")


def _fmt(v: Any, digits: int = 6) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def _cost(config: dict[str, Any], usd: float | None, digits: int) -> str:
    """Money spent; a local run spends none (no $0 figure that reads like a price)."""
    if config.get("backend") == "local" and not usd:
        return "none (local backend)"
    if usd is None:
        return "unknown (no price for this backend and model)"
    return f"${usd:.{digits}f}"


def _summary(run: RunData) -> list[tuple[str, str]]:
    info, cfg, led = run.info, run.info.config, run.info.ledger
    best = info.best
    usd = _cost(run.info.config, led.usd, 4)
    caps = ", ".join(f"{k} {cfg[k]}" for k in ("max_usd", "max_samples", "max_hours") if cfg.get(k) is not None)
    skipped = [m["step"] for m in run.metrics if m.get("train_skipped")]
    rows = [
        ("task", f"{cfg.get('task')} ({(cfg.get('_task') or {}).get('direction', '?')})"),
        ("policy", f"{cfg.get('backend')} {cfg.get('model')}" + ("" if cfg.get("train", True) else " (frozen: no training)")),
        ("status", f"{info.status}: {info.steps_done} of {info.steps} steps"),
        ("best value", f"{_fmt(best.get('value'))} ({step_text(best.get('step'))})"),
        ("samples", f"{led.samples} ({led.valid} valid)"),
        ("tokens", f"{led.prompt_tokens:,} prompt, {led.sampled_tokens:,} sampled, {led.trained_tokens:,} trained"),
        ("evaluation", f"{led.eval_cpu_seconds:.1f} CPU-s, {led.eval_gpu_seconds:.1f} GPU-s"),
        ("wall time", f"{led.seconds / 3600:.3f} h"),
        ("cost", usd),
        ("settings", f"{cfg.get('groups')} groups x {cfg.get('group_size')} samples, objective "
                     f"{cfg.get('objective')}, reuse {cfg.get('reuse')}, lr {cfg.get('learning_rate')}, seed {cfg.get('seed')}"),
    ]
    if caps:
        rows.append(("budget caps", caps))
    scorer = sum(c.get("scorer_error", 0) for c in run.statuses.values())
    if scorer:
        rows.append(("TASK SCORER ERRORS", f"{scorer} samples: the task's score() raised (a bug in the task, "
                                           "not in the candidates; their samples carry no gradient)"))
    if skipped and cfg.get("train", True):
        reasons = sorted({safe(m["train_skipped"]) for m in run.metrics if m.get("train_skipped")})
        rows.append(("no training step", f"steps {', '.join(str(shown_step(s)) for s in skipped[:20])}"
                     f"{' ...' if len(skipped) > 20 else ''}: {'; '.join(reasons)}"))
    return rows


def _run_section(run: RunData, images: _Images, slug: str) -> dict[str, Any]:
    from tttd.report import lineage, plots

    figs = [
        ("progress", "Best value so far", plots.progress([run], [run.name])),
        ("rewards", "Rewards", plots.rewards(run)),
        ("validity", "Validity and failures", plots.validity(run)),
        ("training", "Training: beta, KL, loss", plots.training(run)),
        ("timing", "Time per phase", plots.timing(run)),
        ("spend", "Tokens and spend", plots.spend(run)),
        ("lineage", "Archive lineage", lineage.lineage_figure(run.states, run.maximize)),
    ]
    imgs = [{"key": k, "title": t, "alt": t, "data": images.add(f, f"{slug}-{k}")} for k, t, f in figs]
    drawing = None
    note = ""
    fig = plots.drawing(run)
    if fig is not None:
        drawing = images.add(fig, f"{slug}-best")
    elif run.task is None and run.task_error:
        note = f"The task could not be loaded to draw the construction ({safe(run.task_error)})."
    elif run.best_file:
        note = "This task does not draw its constructions (Task.draw)."
    best = None
    code = construction = None
    cut = False
    if run.best_file:
        b = run.best_file
        best = {"value": _fmt(b.get("value"), 10), "step": shown_step(b.get("step")), "message": safe(b.get("message") or ""),
                "verify": b.get("verify")}
        art = b.get("artifact") or {}
        code = safe(art["code"]) if art.get("code") else None
        rest = {k: v for k, v in art.items() if k != "code"}
        if rest:
            text = json.dumps(rest)
            cut = len(text) > CONSTRUCTION_CHARS
            construction = safe(text[:CONSTRUCTION_CHARS])
    from tttd.report.tables import group_messages

    messages = group_messages(run.messages)  # "got 3", "got 5": one row, "got N" (issue 36)
    stop_command = None
    if run.info.stop_reason and run.info.run_config() is not None:
        from tttd.wording import raise_cap_command

        stop_command = raise_cap_command(run.info.path, run.info.stop_reason, run.info.ledger,
                                         run.info.run_config(), run.info.steps_done)
    return {
        "audit": _audit(run.info.path),
        "label": safe(run.name), "path": safe(str(run.info.path)), "summary": _summary(run),
        "stop_reason": run.info.stop_reason, "stop_command": stop_command, "has_steps": bool(run.metrics),
        "images": imgs, "examples": _examples(run), "captions": plots.CAPTIONS,
        "messages": messages, "best": best, "drawing": drawing, "drawing_note": note, "code": code,
        "construction": construction, "construction_cut": cut,
        "config": safe(json.dumps(run.info.config, indent=1, sort_keys=True)),
        **_extra_sections(run, images, slug),
    }


def _extra_sections(run: RunData, images: _Images, slug: str) -> dict[str, Any]:
    """Issue 37: the Pareto front of several objectives, and the files each state changed."""
    from tttd.report.diffs import state_diffs
    from tttd.report.front import front_section
    from tttd.rundir import RunDir

    rd = RunDir(run.info.path)
    return {"front": front_section(rd.archive, images, slug), "diffs": state_diffs(run.states)}


def _audit(path: Path) -> list[list[str]] | None:
    """The rows of RUN/audit.json (``tttd audit``), or None when the run was not audited."""
    try:
        doc = json.loads((Path(path) / "audit.json").read_text())
        return [[safe(str(r.get(k))) for k in ("label", "recorded", "remeasured", "verdict")]
                + [safe(", ".join(r.get("flags") or []) or "none"), safe(r.get("message") or "")]
                for r in doc.get("rows", [])]
    except (OSError, ValueError, AttributeError, TypeError):
        return None


def _examples(run: RunData) -> list[dict[str, Any]]:
    """Per step (numbered as shown everywhere): its best completion and one of each failure kind."""
    steps = sorted(s for s in run.examples if s >= 0)
    if len(steps) > EXAMPLE_STEPS_ALL:
        improved, best = set(), None
        for m in run.metrics:
            v = m.get("best_value")
            if v is not None and v != best:
                improved.add(m["step"])
                best = v
        ends = set(steps[:EXAMPLE_STEPS_ENDS] + steps[-EXAMPLE_STEPS_ENDS:])
        steps = [s for s in steps if s in ends or s in improved]
    out = []
    for s in steps:
        ex = run.examples[s]
        fails = sorted(ex["failures"].values(), key=lambda f: -f["count"])
        head = (f"best of the step {_fmt(ex['best']['value'])}" if ex["best"] else "no valid sample")
        if fails:
            head += "; failures: " + ", ".join(f"{f['status']} {f['count']}" for f in fails)
        out.append({"step": shown_step(s), "head": head, "best": ex["best"], "failures": fails})
    return out


def _labels(runs: Sequence[RunData]) -> list[str]:
    names = [r.info.path.name for r in runs]
    if len(set(names)) < len(names):
        names = [str(r.info.path) for r in runs]
    return [n + ("" if r.info.config.get("train", True) or "frozen" in n else " (frozen)")
            for n, r in zip(names, runs)]


def build_report(paths: Sequence[str | Path], out: str | Path) -> Path:
    """Write ``out/index.html`` (self-contained) and ``out/*.png``; return the HTML path."""
    import jinja2

    import tttd
    from tttd.report import plots

    runs = [load_run_data(p) for p in paths]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    images = _Images(out)
    labels = _labels(runs)
    sections = [_run_section(r, images, f"run{i + 1}") for i, r in enumerate(runs)]
    ctx: dict[str, Any] = {
        "title": ("tttd report: " + safe(str(runs[0].info.path))) if len(runs) == 1
        else f"tttd report: {len(runs)} runs",
        "generated": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "version": tttd.__version__,
        "runs": sections,
    }
    if len(runs) > 1:
        from tttd.report.tables import same_decimals

        bests = same_decimals([r.info.best.get("value") for r in runs])  # one precision in the column
        ctx["compare_header"] = ["run", "task", "policy", "objective", "reuse", "status", "samples",
                                 "best value", "best step", "cost", "hours"]
        ctx["compare_rows"] = [[
            lab, r.info.config.get("task"), f"{r.info.config.get('model')}"
            + (" trained" if r.info.config.get("train", True) else " frozen"),
            r.info.config.get("objective"), r.info.config.get("reuse"),
            f"{r.info.status} ({r.info.steps_done}/{r.info.steps})", r.info.ledger.samples,
            best, _fmt(shown_step(r.info.best.get("step"))),
            _cost(r.info.config, r.info.ledger.usd, 2),
            f"{r.info.ledger.seconds / 3600:.3f}"] for lab, r, best in zip(labels, runs, bests)]
        ctx["compare_images"] = [
            {"alt": "best value so far, all runs", "data": images.add(plots.progress(runs, labels), "compare-progress")},
            {"alt": "best value, reward mean and valid fraction, all runs",
             "data": images.add(plots.compare(runs, labels), "compare-curves")},
        ]
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    from tttd.report.template import TEMPLATE

    html = env.from_string(TEMPLATE).render(**ctx)
    target = out / "index.html"
    target.write_text(html, encoding="utf-8")
    return target


def default_out(paths: Sequence[str | Path]) -> Path:
    if len(paths) == 1:
        return Path(paths[0]) / "report"
    return Path("reports") / ("compare-" + time.strftime("%Y%m%d-%H%M%S"))


