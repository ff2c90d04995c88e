"""What a model gets wrong (fastai's ClassificationInterpretation): the most confused class
pairs and the top losses (the labelled images it got most confidently wrong), as plain
values for evaluation.json and a grid PNG for the eyes. `lowres evaluate` writes both;
report.html shows them (track.report reads RUN/evaluation/)."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from lowres.predict.confusion import confusion_matrix

MOST_CONFUSED = 10  # pairs printed and kept in evaluation.json
TOP_LOSSES = 16  # images in the grid (4 x 4)
GRID_FILE = "top_losses.png"


def most_confused(labels: np.ndarray, predicted: np.ndarray, class_names: Sequence[str],
                  n: int = MOST_CONFUSED, min_count: int = 1) -> list[dict]:
    """The `n` largest off-diagonal counts of the confusion matrix, largest first (ties:
    true class, then predicted class, in class order): [{true, predicted, count}]."""
    counts = confusion_matrix(labels, predicted, len(class_names))
    np.fill_diagonal(counts, 0)
    pairs = [(int(counts[t, p]), t, p) for t, p in zip(*np.nonzero(counts >= max(1, min_count)))]
    pairs.sort(key=lambda c: (-c[0], c[1], c[2]))
    return [{"true": class_names[t], "predicted": class_names[p], "count": c}
            for c, t, p in pairs[:max(0, n)]]


def top_losses(probs: np.ndarray, labels: np.ndarray, class_names: Sequence[str],
               names: Sequence[str] | None = None, n: int = TOP_LOSSES) -> list[dict]:
    """The `n` images with the highest loss (-log of the true class's probability), highest
    first (ties: image order): [{index, file, true, predicted, probability, loss}]. `index`:
    the image's position in the evaluated split; `probability`: of the predicted class;
    `file`: its name where known (else None). Right and wrong alike: with few errors the
    list goes on into the least confident right answers."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if len(labels) == 0 or n <= 0:
        return []
    p_true = probs[np.arange(len(labels)), labels]
    loss = -np.log(np.clip(p_true, 1e-12, None))
    order = np.argsort(-loss, kind="stable")[:n]
    predicted = probs.argmax(axis=1)
    return [{"index": int(i), "file": None if names is None else str(names[i]),
             "true": class_names[labels[i]], "predicted": class_names[predicted[i]],
             "probability": float(probs[i, predicted[i]]), "loss": float(loss[i])}
            for i in order]


def top_losses_figure(images: np.ndarray, rows: list[dict], columns: int = 4):
    """A grid of the images of `rows` (uint8 [N, C, H, W], indexed by each row's `index`),
    each titled predicted/true, probability of the prediction and loss."""
    from lowres.track.plots import figure

    n = max(1, len(rows))
    cols = min(columns, n)
    lines = math.ceil(n / cols)
    fig = figure((2.4 * cols, 2.6 * lines))
    axes = np.atleast_1d(fig.subplots(lines, cols)).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, row in zip(axes, rows):
        image = np.asarray(images[row["index"]])
        if image.shape[0] == 1:
            ax.imshow(image[0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        else:
            ax.imshow(np.transpose(image[:3], (1, 2, 0)), interpolation="nearest")
        ax.set_title(f"{_short(row['predicted'])} / {_short(row['true'])}\n"
                     f"p {row['probability']:.2f}  loss {row['loss']:.2f}", fontsize=8)
    fig.suptitle("top losses: predicted / true, probability of the prediction, loss", fontsize=9)
    fig.tight_layout()
    return fig


def write_top_losses_grid(images: np.ndarray, rows: list[dict], path: str | Path) -> Path:
    from lowres.track.plots import save_figure

    return save_figure(top_losses_figure(images, rows), Path(path))


def _short(name: str, width: int = 14) -> str:
    name = str(name)
    return name if len(name) <= width else name[: width - 1] + "…"


def format_most_confused(pairs: list[dict]) -> str:
    """The printed block of `lowres evaluate`."""
    if not pairs:
        return "  most confused: none (no errors)"
    lines = ["  most confused (true -> predicted: images):"]
    lines += [f"    {p['true']} -> {p['predicted']}: {p['count']}" for p in pairs]
    return "\n".join(lines)


class Interpretation:
    """A run's predictions on labelled images, asked what went wrong (the API's
    `TrainedRun.interpretation()`; fastai's ClassificationInterpretation). Predicts once."""

    def __init__(self, probs: np.ndarray, labels: np.ndarray, class_names: Sequence[str],
                 images: np.ndarray, names: Sequence[str] | None, source: str, tta: str) -> None:
        self.probs = np.asarray(probs)
        self.labels = np.asarray(labels)
        self.class_names = list(class_names)
        self.images = images
        self.names = names
        self.source = source
        self.tta = tta

    def __repr__(self) -> str:
        return (f"Interpretation({len(self.labels)} images of {self.source}, tta {self.tta}, "
                f"accuracy {self.accuracy:.4f})")

    @property
    def predicted(self) -> np.ndarray:
        return self.probs.argmax(axis=1)

    @property
    def accuracy(self) -> float:
        return float((self.predicted == self.labels).mean()) if len(self.labels) else float("nan")

    def top_losses(self, n: int = TOP_LOSSES):
        """DataFrame (index, file, true, predicted, probability, loss), highest loss first."""
        rows = top_losses(self.probs, self.labels, self.class_names, self.names, n)
        return _frame(rows, ["index", "file", "true", "predicted", "probability", "loss"])

    def most_confused(self, n: int = MOST_CONFUSED, min_count: int = 1):
        """DataFrame (true, predicted, count), most frequent error first."""
        rows = most_confused(self.labels, self.predicted, self.class_names, n, min_count)
        return _frame(rows, ["true", "predicted", "count"])

    def plot_top_losses(self, n: int = TOP_LOSSES, columns: int = 4):
        """The grid of `lowres evaluate`'s top_losses.png: shown inline in Jupyter (returns
        None there), else returned as a matplotlib Figure."""
        from lowres.track.plots import shown_inline

        rows = top_losses(self.probs, self.labels, self.class_names, self.names, n)
        fig = top_losses_figure(self.images, rows, columns)
        return shown_inline(fig)


def _frame(rows: list[dict], columns: list[str]):
    try:
        import pandas
    except ImportError:
        from lowres.errors import LowresError

        raise LowresError("DataFrames need pandas: pip install 'lowres[notebook]'") from None
    return pandas.DataFrame(rows, columns=columns)
