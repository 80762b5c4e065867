"""The report's figures (matplotlib, no pyplot: figures are rendered off-screen with Agg)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from matplotlib.figure import Figure

from tttd.report.data import RunData

PHASES = ("select", "sample", "evaluate", "train")

#: What the training panels plot, said under the figure (issue 23: the KL panel was titled
#: "KL(policy || base)" while it showed the sampler/trainer mismatch, and the loss had no scale).
CAPTIONS = {
    "training": (
        "Sampler vs trainer: the mean per-token log q - log p between the log-probs recorded when "
        "sampling (q) and the trainer's recomputation (p) before the update; ~1e-6 means the two agree "
        "exactly (fp32 CPU), a drift above 0.01 makes the update off-policy. KL(policy || base), the "
        "distance from the base model, is recorded only when a KL penalty is used (--kl-coef > 0), "
        "because it needs a second forward pass through the base model. Loss: the importance-sampling "
        "policy-gradient loss -sum_t ratio_t * A_t, summed over every completion token of the step "
        "(no length normalisation, as the paper): its scale grows with the tokens trained and the "
        "advantages, so read its sign and trend, not its size; it is not a quality measure."),
}


def _int_steps(ax) -> None:
    """Whole step numbers on an x axis of steps; a run of one step gets half a step either side
    (not matplotlib's +-5% of nothing, which read 0.945 to 1.05: issue 36)."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    xs = [x for line in ax.get_lines() for x in line.get_xdata()]
    if xs and max(xs) - min(xs) < 1:
        ax.set_xlim(min(xs) - 0.5, max(xs) + 0.5)
        ax.set_xticks(sorted({round(float(x)) for x in xs}))  # the locator falls back to 0.1 steps here


def _plain_y(ax) -> None:
    """Tick labels that carry their own scale (``1.2e-08``): no separate offset/exponent label
    above the axis, which collided with the panel's title (issue 36)."""
    from matplotlib.ticker import FuncFormatter

    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:.4g}"))


def _shown(xs):
    """The loop's 0-based steps as numbered everywhere a person reads them (first step 1)."""
    return np.asarray(xs, dtype=float) + 1


def _fig(rows: int = 1, cols: int = 1, w: float = 10.0, h: float = 3.4) -> tuple[Figure, Any]:
    fig = Figure(figsize=(w, h * rows), layout="constrained")
    axes = fig.subplots(rows, cols, squeeze=False)
    return fig, axes


def _col(metrics: list[dict[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    xs = [m["step"] + 1 for m in metrics if m.get(key) is not None]  # steps as shown: from 1
    ys = [m[key] for m in metrics if m.get(key) is not None]
    return np.asarray(xs, dtype=float), np.asarray(ys, dtype=float)


def _empty(ax, text: str = "no completed step yet") -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="gray")
    ax.set_xticks([])
    ax.set_yticks([])


def progress(runs: Sequence[RunData], labels: Sequence[str]) -> Figure:
    """Best value so far against step and against samples spent (one line per run)."""
    fig, ax = _fig(1, 2)
    direction = "higher" if runs[0].maximize else "lower"
    for run, label in zip(runs, labels):
        x, y = _col(run.metrics, "best_value")
        samples = np.cumsum([m.get("samples", 0) for m in run.metrics if m.get("best_value") is not None])
        ax[0, 0].step(x, y, where="post", label=label, marker="o", markersize=3)
        ax[0, 1].step(samples, y, where="post", label=label, marker="o", markersize=3)
    _int_steps(ax[0, 0])
    for a, xl in ((ax[0, 0], "step"), (ax[0, 1], "samples spent")):
        _plain_y(a)
        a.set_xlabel(xl)
        a.set_ylabel(f"best value ({direction} is better)")
        a.grid(alpha=0.3)
        if not any(run.metrics for run in runs):
            _empty(a)
    if len(runs) > 1:
        ax[0, 0].legend(fontsize=8)
    fig.suptitle("Best value so far")
    return fig


def rewards(run: RunData) -> Figure:
    """The distribution of every sample's reward, per step."""
    fig, ax = _fig(1, 1)
    a = ax[0, 0]
    steps = sorted(s + 1 for s in run.rewards)
    if not steps:
        _empty(a)
        return fig
    _int_steps(a)
    a.boxplot([run.rewards[s - 1] for s in steps], positions=steps, widths=0.6, showfliers=True,
              flierprops={"markersize": 2, "alpha": 0.4}, medianprops={"color": "black"},
              manage_ticks=False)
    a.plot(steps, [float(np.mean(run.rewards[s - 1])) for s in steps], color="C1", label="mean")
    a.plot(steps, [float(np.max(run.rewards[s - 1])) for s in steps], color="C2", label="max")
    a.set_xlabel("step")
    a.set_ylabel("reward")
    a.set_title("Reward distribution per step (boxes: quartiles; failures get the failure reward)")
    a.legend(fontsize=8)
    a.grid(alpha=0.3)
    return fig


def validity(run: RunData) -> Figure:
    """Valid fraction, and the failures per step by status."""
    fig, ax = _fig(1, 2)
    x, y = _col(run.metrics, "valid_fraction")
    if len(x):
        ax[0, 0].plot(x, y, marker="o", markersize=3)
        ax[0, 0].set_ylim(-0.02, 1.02)
    else:
        _empty(ax[0, 0])
    ax[0, 0].set_xlabel("step")
    ax[0, 0].set_ylabel("valid fraction")
    ax[0, 0].grid(alpha=0.3)
    steps = sorted(run.rewards)
    kinds = sorted({k for c in run.statuses.values() for k in c})
    bottom = np.zeros(len(steps))
    for k in kinds:
        h = np.array([run.statuses.get(s, {}).get(k, 0) for s in steps], dtype=float)
        label = "scorer_error (a bug in the task)" if k == "scorer_error" else k
        ax[0, 1].bar(_shown(steps), h, bottom=bottom, label=label,
                     **({"color": "black", "hatch": "//"} if k == "scorer_error" else {}))
        bottom += h
    if kinds:
        ax[0, 1].legend(fontsize=8)
    else:
        _empty(ax[0, 1], "no failures" if steps else "no completed step yet")
    ax[0, 1].set_xlabel("step")
    ax[0, 1].set_ylabel("failed samples")
    for a in ax[0]:
        _int_steps(a)
    fig.suptitle("Validity and failures")
    return fig


def training(run: RunData) -> Figure:
    """Adaptive beta, KL terms and the loss; steps without an optimizer step are marked."""
    fig, ax = _fig(1, 3, h=3.0)
    has_base = len(_col(run.metrics, "kl_policy_base")[0]) > 0
    kl_title = ("KL: sampler vs trainer, and policy vs base" if has_base
                else "sampler vs trainer mismatch (log q - log p)")
    panels = (("beta_mean", "entropic beta (mean over groups)"), ("kl", kl_title),
              ("loss", "loss (summed over the step's tokens)"))
    skipped = [m["step"] + 1 for m in run.metrics if m.get("train_skipped")]
    for a, (key, title) in zip(ax[0], panels):
        if key == "kl":
            drawn = False
            for k, lab in (("kl_sample_train", "sampler vs trainer (mismatch)"),
                           ("kl_policy_base", "KL(policy || base)")):
                x, y = _col(run.metrics, k)
                if len(x):
                    a.plot(x, y, marker="o", markersize=3, label=lab)
                    drawn = True
            if drawn and has_base:
                a.legend(fontsize=7)
            if not drawn:
                _empty(a, "not recorded" if run.metrics else "no completed step yet")
        else:
            x, y = _col(run.metrics, key)
            if len(x):
                a.plot(x, y, marker="o", markersize=3)
            else:
                _empty(a, "not recorded" if run.metrics else "no completed step yet")
        for s in skipped:
            a.axvline(s, color="red", alpha=0.15, linewidth=3)
        a.set_title(title, fontsize=10)
        a.set_xlabel("step")
        _plain_y(a)
        if a.has_data():
            _int_steps(a)
        a.grid(alpha=0.3)
    if skipped:
        ax[0, 0].text(0.01, 0.98, "red: no training step", transform=ax[0, 0].transAxes,
                      va="top", fontsize=8, color="red")
    return fig


def timing(run: RunData) -> Figure:
    """Seconds per phase of each step (stacked)."""
    fig, ax = _fig(1, 1, h=3.0)
    a = ax[0, 0]
    steps = [m["step"] + 1 for m in run.metrics]
    if not steps:
        _empty(a)
        return fig
    _int_steps(a)
    bottom = np.zeros(len(steps))
    for p in PHASES:
        h = np.array([m.get(f"seconds_{p}") or 0.0 for m in run.metrics])
        a.bar(steps, h, bottom=bottom, label=p)
        bottom += h
    a.set_xlabel("step")
    a.set_ylabel("seconds")
    a.set_title("Time per phase")
    a.legend(fontsize=8, ncols=len(PHASES))
    return fig


def spend(run: RunData) -> Figure:
    """Cumulative tokens, and money when the run has a price (no $0 panel for a local run)."""
    usd = [(m.get("spend") or {}).get("usd") for m in run.metrics]
    priced = bool(usd) and all(u is not None for u in usd) and any(u for u in usd)
    fig, ax = _fig(1, 2 if priced else 1, h=3.0)
    steps = [m["step"] + 1 for m in run.metrics]
    if not steps:
        for a in ax[0]:
            _empty(a)
        return fig
    series = {key: [(m.get("spend") or {}).get(key, 0) for m in run.metrics]
              for key in ("prompt_tokens", "sampled_tokens", "trained_tokens")}
    # Sampled and trained tokens are often equal (every sampled token trained): drawn alike, one
    # line hid the other (issue 36). Trained is dashed with hollow markers, and the legend says so.
    styles = {"prompt_tokens": dict(linestyle="-", marker="."),
              "sampled_tokens": dict(linestyle="-", linewidth=2.5, marker="s", markersize=3),
              "trained_tokens": dict(linestyle="--", marker="o", markersize=4, markerfacecolor="none")}
    for key, ys in series.items():
        label = key.split("_")[0]
        if key == "trained_tokens" and ys == series["sampled_tokens"] and any(ys):
            label = "trained (= sampled)"
        ax[0, 0].plot(steps, ys, label=label, **styles[key])
    ax[0, 0].set_title("Tokens (cumulative)" + ("" if priced else "; no money spent or no price known"))
    ax[0, 0].legend(fontsize=8)
    if priced:
        ax[0, 1].plot(steps, usd, color="C3")
        ax[0, 1].set_title("Spend, USD (cumulative)")
    for a in ax[0]:
        a.set_xlabel("step")
        _int_steps(a)
        _plain_y(a)
        a.grid(alpha=0.3)
    return fig


def drawing(run: RunData) -> Figure | None:
    """The best construction, drawn by the task (Task.draw); None when it cannot draw it."""
    if run.task is None or not run.best_file:
        return None
    fig, ax = _fig(1, 1, w=7.0, h=4.5)
    try:
        ok = run.task.draw(run.best_file.get("artifact") or {}, ax[0, 0])
    except Exception:  # a task's drawing code must not break the report
        return None
    return fig if ok else None


def compare(runs: Sequence[RunData], labels: Sequence[str]) -> Figure:
    """Several runs overlaid: reward mean and valid fraction per step (best-so-far is drawn
    once, by :func:`progress`, above it)."""
    fig, ax = _fig(1, 2, h=3.2)
    for run, label in zip(runs, labels):
        for a, key in zip(ax[0], ("reward_mean", "valid_fraction")):
            x, y = _col(run.metrics, key)
            a.plot(x, y, label=label, marker="o", markersize=2)
    for a, title in zip(ax[0], ("reward mean", "valid fraction")):
        _plain_y(a)
        a.set_title(title, fontsize=10)
        a.set_xlabel("step")
        _int_steps(a)
        a.grid(alpha=0.3)
    ax[0, 0].legend(fontsize=8)
    return fig
