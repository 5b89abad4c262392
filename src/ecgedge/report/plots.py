"""PNG figures for reports, drawn with matplotlib's Agg canvas (no pyplot, no global backend)."""

import io
import math
from collections.abc import Sequence

from ecgedge.errors import EcgEdgeError

CURVE_KEYS = {"loss": ("train_loss", "val_loss"), "macro-F1": ("val_macro_f1",)}


def _figure(ncols: int, width: float, height: float):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise EcgEdgeError("reports need matplotlib: pip install 'ecgedge[plots]'") from e
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, ncols, squeeze=False)[0]


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def confusion_png(matrix: Sequence[Sequence[int]], classes: Sequence[str]) -> bytes:
    """Confusion matrix, rows = reference, columns = predicted, each cell annotated with its count."""
    fig, (ax,) = _figure(1, 4.4, 3.9)
    # Colour by row fraction (per-class sensitivity): raw counts would paint everything but N white.
    fractions = [[v / (sum(row) or 1) for v in row] for row in matrix]
    ax.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0)
    for i, row in enumerate(matrix):
        for j, v in enumerate(row):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=8,
                    color="white" if fractions[i][j] > 0.5 else "black")  # fmt: skip
    ticks = range(len(classes))
    ax.set_xticks(ticks, list(classes))
    ax.set_yticks(ticks, list(classes))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("reference class")
    return _png(fig)


def curves_png(history: list[dict]) -> bytes | None:
    """Losses and validation macro-F1 against epoch; None when no entry has any of those keys."""
    panels = {t: [k for k in keys if any(k in h for h in history)] for t, keys in CURVE_KEYS.items()}
    panels = {t: keys for t, keys in panels.items() if keys}
    if not panels:
        return None
    epochs = [h.get("epoch", i + 1) for i, h in enumerate(history)]
    fig, axes = _figure(len(panels), 4.0 * len(panels), 3.0)
    for ax, (title, keys) in zip(axes, panels.items()):
        for k in keys:
            # NaN leaves a gap where an epoch lacks the key (e.g. validation every other epoch).
            ax.plot(epochs, [h.get(k, math.nan) for h in history], marker=".", label=k)
        ax.set_xlabel("epoch")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    return _png(fig)


def tradeoff_png(points: Sequence[tuple[str, float, float, float | None]]) -> bytes:
    """macro-F1 against file size (MB) and, where measured, against latency (ms); one labelled point per model."""
    timed = [p for p in points if p[3] is not None]
    fig, axes = _figure(2 if timed else 1, 9.0 if timed else 4.8, 3.6)
    panels = [("file size (MB)", [(p[0], p[2], p[1]) for p in points])]
    if timed:
        panels.append(("median latency per beat (ms)", [(p[0], p[3], p[1]) for p in timed]))
    for ax, (xlabel, pts) in zip(axes, panels):
        for i, (label, x, y) in enumerate(pts):
            ax.scatter([x], [y], s=36, color=f"C{i % 10}", label=label)
        ax.set_xlabel(xlabel)
        ax.set_ylabel("macro-F1")
        ax.set_xlim(left=0)
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize=7, loc="best")
    return _png(fig)
