"""PNG charts of result documents (matplotlib, no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

PANELS = (("attack_success_rate", "Attack success (campaign in inbox)"),
          ("collateral_rate", "Collateral (targets in junk)"),
          ("clean_accuracy", "Clean accuracy"),
          ("label_precision", "Label precision"))


def _smooth(values: list, window: int) -> np.ndarray:
    """Rolling mean that skips missing values (None)."""
    x = np.array([np.nan if v is None else v for v in values], dtype=float)
    out = np.full_like(x, np.nan)
    for i in range(len(x)):
        chunk = x[max(0, i - window + 1): i + 1]
        if np.isfinite(chunk).any():
            out[i] = np.nanmean(chunk)
    return out


def comparison_chart(docs: list[dict], path: str | Path, smooth: int = 6) -> Path:
    """Each metric over ticks, one line per run, the attack start marked."""
    path = Path(path)
    fig, axes = plt.subplots(2, 2, figsize=(12, 7.5), sharex=True)
    start = None
    for doc in docs:
        attack = doc["scenario"]["attack"]
        baseline = attack["strategy"] == "none"
        if not baseline:
            start = attack["start_tick"]
        label = "no attack (baseline)" if baseline else doc["defense"]
        ticks = [e["tick"] for e in doc["timeline"]]
        for ax, (key, _) in zip(axes.flat, PANELS):
            ax.plot(ticks, _smooth([e.get(key) for e in doc["timeline"]], smooth), label=label,
                    linestyle="--" if baseline else "-", color="grey" if baseline else None, linewidth=1.6)
    for ax, (_, title) in zip(axes.flat, PANELS):
        ax.set_title(title)
        ax.set_ylim(-0.03, 1.03)
        ax.grid(alpha=0.3)
        if start is not None:
            ax.axvline(start, color="red", linestyle=":", linewidth=1.2)
    for ax in axes[1]:
        ax.set_xlabel("tick (simulated hour)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    if start is not None:
        handles.append(plt.Line2D([], [], color="red", linestyle=":"))
        labels.append(f"attack starts (tick {start})")
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), frameon=False)
    name = docs[0]["scenario"]["name"] if docs else ""
    fig.suptitle(f"{name}: defenses compared ({smooth}-tick rolling mean)")
    fig.tight_layout(rect=(0, 0.05, 1, 0.96))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
