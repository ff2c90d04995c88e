"""Accuracy per class and a confusion-matrix picture for `lowres evaluate`."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """counts[true, predicted]."""
    counts = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(counts, (np.asarray(labels), np.asarray(predicted)), 1)
    return counts


def summarize(labels: np.ndarray, predicted: np.ndarray, class_names: list[str]) -> dict:
    counts = confusion_matrix(labels, predicted, len(class_names))
    total = counts.sum(axis=1)
    per_class = {
        name: {"images": int(total[i]),
               "accuracy": float(counts[i, i] / total[i]) if total[i] else float("nan")}
        for i, name in enumerate(class_names) if total[i]
    }
    return {"accuracy": float(np.trace(counts) / max(counts.sum(), 1)), "per_class": per_class}


def write_confusion_plot(labels: np.ndarray, predicted: np.ndarray, class_names: list[str],
                         path: str | Path) -> Path:
    """Row-normalised confusion matrix (true class down, predicted across)."""
    from lowres.track.plots import figure, save_figure

    counts = confusion_matrix(labels, predicted, len(class_names)).astype(np.float64)
    rows = counts.sum(axis=1, keepdims=True)
    norm = np.divide(counts, rows, out=np.zeros_like(counts), where=rows > 0)
    k = len(class_names)
    size = min(16.0, 3.0 + 0.25 * k)
    fig = figure((size, size))
    ax = fig.subplots()
    im = ax.imshow(norm, cmap="viridis", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"confusion matrix (row-normalised), accuracy {np.trace(counts) / counts.sum():.3f}")
    if k <= 40:  # tick labels only where they stay readable
        ax.set_xticks(range(k), class_names, rotation=90, fontsize=7)
        ax.set_yticks(range(k), class_names, fontsize=7)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return save_figure(fig, Path(path))
