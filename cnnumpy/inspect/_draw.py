"""What the figures share: a new ``matplotlib.figure.Figure``, saving it, colour maps, and
arranging many small images into one picture.

Figures are built with matplotlib's object API and written with ``Figure.savefig``, which picks
the file format's own renderer: no backend is selected and ``pyplot`` is never imported, so the
user's backend (an interactive one in a notebook, say) is left alone and no display is needed.
matplotlib is imported on the first figure, not with the package: it takes about half a
second, which every ``cnnumpy`` command would otherwise pay.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.colors import Colormap
    from matplotlib.figure import Figure
    from matplotlib.text import Text


def new_figure(
    figsize: tuple[float, float], nrows: int = 1, ncols: int = 1, **subplots_kw: Any
) -> tuple[Figure, np.ndarray]:
    """A figure of ``figsize`` inches and its ``(nrows, ncols)`` array of axes."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots(nrows, ncols, squeeze=False, **subplots_kw)


def save(fig: Figure, path: str | Path, title: str = "") -> Path:
    """Give ``fig`` its ``title`` (wrapped to the figure's width), lay it out and write it to
    ``path`` (format from the suffix, e.g. PNG) at 100 dpi."""
    text = fig.suptitle(title) if title else None
    if text is not None:
        fit_width(fig, text)
    fig.tight_layout()
    if text is not None:
        _clear_title(fig, text)
    path = Path(path)
    fig.savefig(path, dpi=100)
    return path


def fit_width(fig: Figure, text: Text, margin: float = 0.96) -> None:
    """Wrap ``text`` onto more lines until it fits within ``margin`` of the figure's width: a
    long title over a narrow figure would otherwise run off both edges (tight_layout makes
    room above the axes for the extra lines, not beside them)."""
    # The figure's own renderer (Agg without a canvas): no backend is selected.
    renderer = fig._get_renderer()
    room = margin * fig.bbox.width
    words = text.get_text()
    for chars in range(len(words), 0, -1):
        if text.get_window_extent(renderer).width <= room:
            return
        # Shorter lines one character at a time: exact, and titles are short.
        text.set_text(textwrap.fill(words, chars, break_long_words=False))


def _clear_title(fig: Figure, text: Text, pad: float = 0.08) -> None:
    """Lower the axes until their tops (titles and labels included) are ``pad`` inches below
    ``text``: tight_layout leaves a figure title out of its sums when the axes keep the
    images' aspect, and the title would then be drawn over them."""
    renderer = fig._get_renderer()
    bottom = text.get_window_extent(renderer).y0 - pad * fig.dpi
    # A few rounds: an axes of fixed aspect, centred in its slot, drops by half the change.
    for _ in range(4):
        tops = [ax.get_tightbbox(renderer).y1 for ax in fig.axes if ax.get_visible()]
        if not tops or max(tops) <= bottom + 0.5:
            return
        fig.subplots_adjust(top=fig.subplotpars.top - (max(tops) - bottom) / fig.bbox.height)


def colormap(name: str, bad: str | None = None) -> Colormap:
    """matplotlib's colour map ``name``, drawing NaN (the gaps between tiles) in ``bad``."""
    import matplotlib

    cmap = matplotlib.colormaps[name]
    return cmap if bad is None else cmap.with_extremes(bad=bad)


def plain(ax: Axes) -> None:
    """No ticks and no frame: for axes that show a picture, not a plot."""
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)


def mosaic(images: np.ndarray, gap: int) -> np.ndarray:
    """``images: (R, K, C, H, W)`` -> one ``(R*(H+gap)-gap, K*(W+gap)-gap, C)`` picture with
    white lines of ``gap`` pixels between the images."""
    r, k, c, h, w = images.shape
    out = np.ones((r, h + gap, k, w + gap, c))
    out[:, :h, :, :w] = images.transpose(0, 3, 1, 4, 2)  # (R, H, K, W, C)
    out = out.reshape(r * (h + gap), k * (w + gap), c)
    return out[: out.shape[0] - gap, : out.shape[1] - gap]


def tile(tiles: np.ndarray, ncols: int, gap: int, fill: float) -> np.ndarray:
    """``tiles: (N, h, w, ...)`` -> one picture with ``ncols`` tiles a row, ``gap`` pixels of
    ``fill`` between them (and after a last row that is not full)."""
    n, h, w = tiles.shape[:3]
    rows = -(-n // ncols)
    out = np.full((rows * (h + gap) - gap, ncols * (w + gap) - gap, *tiles.shape[3:]), fill)
    for i, t in enumerate(tiles):
        r, c = divmod(i, ncols)
        out[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = t
    return out


def stretch(images: np.ndarray) -> np.ndarray:
    """``(N, C, H, W)`` -> ``(N, H, W)`` (C 1) or ``(N, H, W, 3)`` (C 3), each image stretched
    to [0, 1] on its own; other channel counts show their first channel."""
    x = np.asarray(images, dtype=np.float64)
    lo = x.min(axis=(1, 2, 3), keepdims=True)
    span = x.max(axis=(1, 2, 3), keepdims=True) - lo
    x = (x - lo) / np.where(span > 0, span, 1.0)
    return x.transpose(0, 2, 3, 1) if x.shape[1] == 3 else x[:, 0]
