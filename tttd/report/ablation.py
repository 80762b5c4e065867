"""``tttd report ABLATION_DIR``: the ablation's table and best-so-far curves, one offline HTML file.

Read from the ablation directory alone (``ablation.json`` and the run directories under it); the
numbers are recomputed by :func:`tttd.ablate.stats.analyse`, so a report of a half-finished
ablation shows the finished runs and says how many are missing.
"""

from __future__ import annotations

import base64
import io
import time
from pathlib import Path
from typing import Any

from tttd.text import safe

TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 0 auto; max-width: 1200px; padding: 1em 2em; color: #222; }
table { border-collapse: collapse; margin: .5em 0; font-size: .9em; }
td, th { border: 1px solid #ddd; padding: .25em .6em; text-align: left; }
th { background: #f4f4f4; } img { max-width: 100%; } .note { color: #666; font-size: .9em; }
</style></head><body>
<h1>{{ title }}</h1>
<p class="note">Generated {{ generated }} from {{ root }} alone. {{ finished }} of {{ total }} runs finished;
the table uses finished runs only. Mean over seeds with a 95% bootstrap interval; pairs share a seed (same initial states).</p>
{% for kind, block in blocks %}{% if kind == "table" %}<table><tr>{% for c in block[0] %}<th>{{ c }}</th>{% endfor %}</tr>
{% for row in block[1:] %}<tr>{% for c in row %}<td>{{ c }}</td>{% endfor %}</tr>{% endfor %}</table>
{% else %}<p>{{ block }}</p>{% endif %}{% endfor %}
<h2>Best so far against samples</h2>
<img alt="best-so-far curves per variant, mean and 95% bootstrap band" src="data:image/png;base64,{{ curves }}">
<h2>Final best per seed</h2>
<img alt="final best value per seed and variant" src="data:image/png;base64,{{ seeds }}">
</body></html>
"""


def _blocks(markdown: str) -> list[tuple[str, Any]]:
    """The output of :func:`tttd.ablate.table.markdown`, in order: ("p", line) and ("table", rows of cells)."""
    blocks: list[tuple[str, Any]] = []
    current: list[list[str]] | None = None
    for line in markdown.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if all(set(c) <= {"-"} for c in cells):
                continue
            if current is None:
                current = []
                blocks.append(("table", current))
            current.append([c.replace("`", "") for c in cells])
        else:
            current = None
            if line.strip():
                blocks.append(("p", line.replace("`", "")))
    return blocks


def _png(fig, out: Path, name: str) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=96)
    (out / f"{name}.png").write_bytes(buf.getvalue())
    return base64.b64encode(buf.getvalue()).decode("ascii")


def curves_figure(result: dict[str, Any]):
    from matplotlib.figure import Figure

    from tttd.ablate.stats import band

    fig = Figure(figsize=(10, 4.5), layout="constrained")
    ax = fig.subplots()
    for name, curves in result["curves"].items():
        b = band(curves)
        if not b["samples"]:
            continue
        ax.plot(b["samples"], b["mean"], label=f"{name} ({len(curves)} seeds)",
                linewidth=2.2 if name == "full" else 1.3)
        ax.fill_between(b["samples"], b["lo"], b["hi"], alpha=0.15)
    ax.set_xlabel("samples")
    ax.set_ylabel(f"best value so far ({'higher' if result['direction'] == 'maximize' else 'lower'} is better)")
    ax.set_title(f"{result['task']}: best so far, mean and 95% bootstrap band over seeds")
    ax.legend(fontsize=8)
    return fig


def seeds_figure(result: dict[str, Any]):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.5), layout="constrained")
    ax = fig.subplots()
    names = list(result["curves"])
    for i, name in enumerate(names):
        finals = [(c["seed"], c["best"][-1]) for c in result["curves"][name] if c["best"]]
        ax.scatter([i + (s % 8 - 3.5) * 0.04 for s, _ in finals], [v for _, v in finals], s=14)
        row = result["variants"][name]["final"]
        if row["mean"] is not None:
            ax.errorbar([i + 0.3], [row["mean"]], yerr=[[row["mean"] - row["lo"]], [row["hi"] - row["mean"]]],
                        fmt="o", color="black", capsize=3)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("final best value")
    ax.set_title("each seed's final best (dots) and the mean with its 95% interval (black)")
    return fig


def build_ablation_report(root: str | Path, out: str | Path | None = None) -> Path:
    import jinja2

    from tttd.ablate.spec import load_spec
    from tttd.ablate.stats import analyse
    from tttd.ablate.table import markdown

    root = Path(root)
    spec = load_spec(root)
    result = analyse(spec, root)
    out = Path(out) if out else root / "report"
    out.mkdir(parents=True, exist_ok=True)
    blocks = _blocks(markdown(result))
    html = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(TEMPLATE).render(
        title=f"tttd ablation: {safe(str(result['task']))}", generated=time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        root=safe(str(root)), finished=result["runs_finished"], total=result["runs_total"],
        blocks=blocks, curves=_png(curves_figure(result), out, "ablation-curves"),
        seeds=_png(seeds_figure(result), out, "ablation-seeds"))
    target = out / "index.html"
    target.write_text(html, encoding="utf-8")
    return target
