"""Report figures with matplotlib, each returned as PNG bytes (the caller writes or embeds them).

matplotlib is imported inside each function (with the non-interactive Agg backend), so importing
this module costs nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any) -> bytes:
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    _pyplot().close(fig)
    return buffer.getvalue()


def comparison_chart(names: Sequence[str], series: Mapping[str, tuple[Sequence[float], Sequence[float]]], *,
                     title: str, xlabel: str = "%",
                     published: Mapping[str, Mapping[str, float]] | None = None) -> bytes:
    """Horizontal bars, one group per name and one bar per series (``{"WA": (means, stds), ...}``,
    fractions drawn as %); ``published[series][name]`` (already in %) is drawn as a diamond on its bar."""
    plt = _pyplot()
    n, k = len(names), max(1, len(series))
    fig, ax = plt.subplots(figsize=(7.5, (0.3 * k + 0.15) * n + 1.2))
    height = 0.8 / k
    base = np.arange(n)[::-1].astype(np.float64)
    colours = ["#9ecae9", "#4c78a8", "#72b7b2", "#54a24b"]
    shown = False
    for i, (metric, (means, stds)) in enumerate(series.items()):
        y = base + 0.4 - height * (i + 0.5)
        ax.barh(y, np.asarray(means) * 100, height, xerr=np.asarray(stds) * 100, color=colours[i % len(colours)],
                label=metric, error_kw={"ecolor": "#333", "capsize": 2})
        marks = [(yy, (published or {}).get(metric, {}).get(name)) for yy, name in zip(y, names, strict=True)]
        marks = [(yy, v) for yy, v in marks if v is not None]
        if marks:
            ax.scatter([v for _, v in marks], [yy for yy, _ in marks], marker="D", color="#e45756", zorder=3,
                       label=None if shown else "published")
            shown = True
    ax.set_yticks(base, names, fontsize=8)
    ax.set_xlim(0, 100)
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _png(fig)


def per_class_chart(series: Mapping[str, Mapping[str, float]], labels: Sequence[str], *, title: str) -> bytes:
    """Grouped bars: per-class F1 (fractions, drawn as %) of each named series."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(labels) + 2), 3.6))
    width = 0.8 / max(1, len(series))
    x = np.arange(len(labels))
    for i, (name, scores) in enumerate(series.items()):
        ax.bar(x + i * width - 0.4 + width / 2, [scores.get(label, 0.0) * 100 for label in labels], width,
               label=name)
    ax.set_xticks(x, labels, fontsize=8)
    ax.set_ylim(0, 100)
    ax.set_ylabel("F1 %")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7, ncol=2)
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def confusion_grid(matrices: Mapping[str, Sequence[Sequence[int]]], labels: Mapping[str, Sequence[str]], *,
                   title: str, columns: int = 3) -> bytes:
    """Row-normalised confusion matrices (rows true, columns predicted), one panel per name."""
    plt = _pyplot()
    names = list(matrices)
    cols = min(columns, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.3 * rows), squeeze=False)
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    for ax, name in zip(axes.ravel(), names, strict=False):
        cm = np.asarray(matrices[name], dtype=np.float64)
        share = cm / np.clip(cm.sum(axis=1, keepdims=True), 1, None)
        ax.imshow(share, vmin=0, vmax=1, cmap="Blues")
        ticks = list(labels[name])
        ax.set_xticks(range(len(ticks)), [t[:3] for t in ticks], fontsize=7)
        ax.set_yticks(range(len(ticks)), [t[:3] for t in ticks], fontsize=7)
        for i in range(len(ticks)):
            for j in range(len(ticks)):
                ax.text(j, i, f"{share[i, j] * 100:.0f}", ha="center", va="center", fontsize=6,
                        color="white" if share[i, j] > 0.5 else "black")
        ax.set_title(name, fontsize=8)
        ax.set_xlabel("predicted", fontsize=7)
        ax.set_ylabel("true", fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _png(fig)
