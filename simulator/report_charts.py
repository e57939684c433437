"""PNG charts of the ``poisonlab report`` (matplotlib, Agg backend, no display needed).

Every function takes plain data (lists and dicts read from the repository),
writes one PNG and returns its path.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

OUTCOME_PANELS = (("attack_success_rate", "Attack success (campaign in inbox)"),
                  ("collateral_rate", "Collateral (targets in junk)"),
                  ("clean_accuracy", "Clean accuracy"))
TIMELINE_PANELS = (("attack_success_rate", "Attack success"),
                   ("collateral_rate", "Collateral"),
                   ("clean_accuracy", "Clean accuracy"),
                   ("label_precision", "Label precision"))
TRUST_BINS = np.linspace(0.0, 1.0, 41)
HONEST_COLOR, BOT_COLOR = "#1f77b4", "#d62728"
DPI = 110


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI)
    _pyplot().close(fig)
    return path


def smooth(values: Sequence[Any], window: int) -> np.ndarray:
    """Trailing rolling mean that skips missing values (``None``/NaN).

    >>> smooth([1.0, None, 3.0], 2).tolist()
    [1.0, 1.0, 3.0]
    """
    x = np.array([np.nan if v is None else v for v in values], dtype=float)
    out = np.full_like(x, np.nan)
    for i in range(len(x)):
        chunk = x[max(0, i - window + 1): i + 1]
        if np.isfinite(chunk).any():
            out[i] = np.nanmean(chunk)
    return out


def _numeric(values: Sequence[Any]) -> bool:
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def label(value: Any) -> str:
    """A grid value as shown on axes and in tables (floats compact).

    >>> label(0.05), label("flip")
    ('0.05', 'flip')
    """
    return f"{value:g}" if isinstance(value, float) else str(value)


def _x_axis(ax, values: Sequence[Any], key: str) -> list[float]:
    """Positions of `values` on the x axis (log scale when they span a decade or more)."""
    if _numeric(values):
        xs = [float(v) for v in values]
        if min(xs) > 0 and max(xs) / min(xs) >= 10:
            ax.set_xscale("log")
        ax.set_xticks(xs)
        ax.set_xticklabels([label(v) for v in values])
        ax.minorticks_off()
    else:
        xs = list(range(len(values)))
        ax.set_xticks(xs)
        ax.set_xticklabels([label(v) for v in values])
    ax.set_xlabel(key)
    return xs


def outcome_vs_value(series: dict[str, dict[Any, list[float]]], values: Sequence[Any], key: str,
                     path: str | Path, title: str, n_seeds: int) -> Path:
    """Final metrics against the swept value, one line per defense, with the spread over seeds.

    Parameters
    ----------
    series : dict
        ``{metric: {defense: {value: [one number per seed]}}}``.
    values : sequence
        The swept values in order (the x axis).
    key : str
        The swept key (x axis label).
    path, title
        Output file and figure title.
    n_seeds : int
        Seeds per point, for the legend.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(OUTCOME_PANELS), figsize=(5.2 * len(OUTCOME_PANELS), 4.6), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, (metric, panel_title) in zip(axes[0], OUTCOME_PANELS):
        xs = _x_axis(ax, values, key)
        for k, (defense, by_value) in enumerate(series.get(metric, {}).items()):
            color = colors[k % len(colors)]
            points = [(x, np.asarray(by_value.get(v, []), dtype=float)) for x, v in zip(xs, values)]
            points = [(x, ys[np.isfinite(ys)]) for x, ys in points]
            points = [(x, ys) for x, ys in points if ys.size]
            if not points:
                continue
            px = [x for x, _ in points]
            ax.fill_between(px, [ys.min() for _, ys in points], [ys.max() for _, ys in points], color=color,
                            alpha=0.18, linewidth=0)
            ax.plot(px, [ys.mean() for _, ys in points], marker="o", color=color, linewidth=2, label=defense)
            for x, ys in points:
                ax.scatter(np.full(ys.size, x), ys, s=12, color=color, alpha=0.6, zorder=3)
        ax.set_title(panel_title)
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("rate over the final quarter of the ticks")
    handles, labels = axes[0][0].get_legend_handles_labels()
    handles.append(plt.Rectangle((0, 0), 1, 1, color="grey", alpha=0.25))
    labels.append(f"min–max over {n_seeds} seed(s); dots: single seeds")
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.07, 1, 0.95))
    return _save(fig, path)


def timelines(groups: dict[str, list[tuple[str, list[list[dict]]]]], path: str | Path, title: str,
              attack_start: int | None, window: int = 6) -> Path:
    """Per-tick metrics, one column per defense, one line per grid point (mean over seeds, min–max band).

    Parameters
    ----------
    groups : dict
        ``{defense: [(point label, [timeline of each seed]), ...]}``; a
        timeline is the list of per-tick dicts of one run.
    path, title
        Output file and figure title.
    attack_start : int or None
        Tick the attack starts (a dotted line).
    window : int
        Rolling mean window, in ticks.
    """
    plt = _pyplot()
    defenses = list(groups)
    n_points = max((len(points) for points in groups.values()), default=1)
    cmap = plt.get_cmap("viridis")
    colors = [cmap(0.9 * k / max(1, n_points - 1)) for k in range(n_points)]
    fig, axes = plt.subplots(len(TIMELINE_PANELS), max(1, len(defenses)), figsize=(max(7.5, 4.6 * len(defenses)), 10),
                             sharex=True, sharey="row", squeeze=False)
    for col, defense in enumerate(defenses):
        for k, (point, runs) in enumerate(groups[defense]):
            for row, (metric, _) in enumerate(TIMELINE_PANELS):
                ax = axes[row][col]
                curves = np.array([smooth([t.get(metric) for t in run], window) for run in runs if run])
                if curves.size == 0:
                    continue
                ticks = np.arange(curves.shape[1])
                with warnings.catch_warnings():   # all-NaN ticks (no campaign yet) stay NaN
                    warnings.simplefilter("ignore", RuntimeWarning)
                    mean, low, high = np.nanmean(curves, 0), np.nanmin(curves, 0), np.nanmax(curves, 0)
                if len(runs) > 1:
                    ax.fill_between(ticks, low, high, color=colors[k], alpha=0.15, linewidth=0)
                ax.plot(ticks, mean, color=colors[k], linewidth=1.5, label=point)
        axes[0][col].set_title(defense)
        axes[-1][col].set_xlabel("tick (simulated hour)")
    for row, (_, panel_title) in enumerate(TIMELINE_PANELS):
        axes[row][0].set_ylabel(panel_title)
        for ax in axes[row]:
            ax.set_ylim(-0.03, 1.03)
            ax.grid(alpha=0.3)
            if attack_start is not None:
                ax.axvline(attack_start, color="red", linestyle=":", linewidth=1.2)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if attack_start is not None:
        handles.append(plt.Line2D([], [], color="red", linestyle=":"))
        labels.append(f"attack starts (tick {attack_start})")
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), frameon=False)
    fig.suptitle(f"{title} ({window}-tick rolling mean; band: min–max over seeds)")
    fig.tight_layout(rect=(0, 0.05, 1, 0.96))
    return _save(fig, path)


def trust_histograms(panels: list[tuple[str, list[float], list[float]]], path: str | Path, title: str,
                     columns: int = 5) -> Path:
    """Trust of honest accounts vs bots, one panel per ``(label, honest trusts, bot trusts)``.

    Histograms are normalised per group (each sums to 1), so a few bots and
    thousands of honest accounts are comparable.
    """
    plt = _pyplot()
    columns = max(1, min(columns, len(panels)))
    rows = -(-len(panels) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(max(6.5, 3.9 * columns), 3.3 * rows + 0.8), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    for ax, (title_text, honest, bots) in zip(axes.flat, panels):
        for values, color, name in ((honest, HONEST_COLOR, "honest"), (bots, BOT_COLOR, "bots")):
            data = np.asarray([v for v in values if v is not None], dtype=float)
            if data.size:
                ax.hist(data, bins=TRUST_BINS, weights=np.full(data.size, 1.0 / data.size), color=color,
                        alpha=0.55, label=f"{name} (n={data.size}, median {np.median(data):.2f})")
        ax.set_title(title_text, fontsize=10)
        ax.set_xlim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper center")
    for k, ax in enumerate(axes.flat[:len(panels)]):
        if k + columns >= len(panels):          # nothing below it: label the axis
            ax.set_xlabel("final trust (mean of the Beta reputation)")
    for row in axes:
        row[0].set_ylabel("share of accounts")
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return _save(fig, path)
