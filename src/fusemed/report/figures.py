"""Matplotlib figures as base64 PNG data URIs, so one HTML file carries every picture and opens offline."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure as MplFigure  # noqa: E402

#: one colour per run, stable across every figure of a report
PALETTE = plt.get_cmap("tab10").colors
DPI = 90


@dataclass(frozen=True)
class Figure:
    """A rendered figure: ``uri`` is a ``data:image/png;base64,...`` string for ``<img src>``."""

    key: str
    title: str
    uri: str
    caption: str = ""


def to_data_uri(fig: MplFigure) -> str:
    """Render and close ``fig``; return its PNG as a data URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


@contextmanager
def figure(key: str, title: str, caption: str = "", *, size: tuple[float, float] = (5.5, 4.0),
           ncols: int = 1, nrows: int = 1) -> Iterator[tuple[MplFigure, object, dict[str, Figure]]]:
    """``with figure(...) as (fig, axes, out): draw; out["figure"]`` is the rendered :class:`Figure`.

    ``axes`` is one Axes, or a flat array of them ``(nrows * ncols,)``.
    """
    fig, axes = plt.subplots(nrows, ncols, figsize=size, squeeze=False)
    axes = axes[0, 0] if nrows * ncols == 1 else axes.ravel()
    out: dict[str, Figure] = {}
    try:
        yield fig, axes, out
        fig.tight_layout()
        out["figure"] = Figure(key, title, to_data_uri(fig), caption)
    finally:
        plt.close(fig)


def color(i: int) -> tuple[float, float, float]:
    return PALETTE[i % len(PALETTE)]
