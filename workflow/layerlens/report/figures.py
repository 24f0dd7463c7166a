"""The one way a report figure is made and saved: one style, one colour-blind-safe palette, one dpi, PNG and PDF
from the same drawing.

Every figure is drawn inside :func:`figure`, which applies :data:`STYLE`, hands over the figure and its axes, and
on leaving saves it to every path given (the format from the suffix, atomically) and closes it.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from ..io import atomic_path

DPI = 150
#: Okabe and Ito's colour-blind-safe palette, only its colours with a contrast of at least 3:1 on white (blue
#: 5.2, vermillion 3.9, bluish green 3.4, reddish purple 3.1; its yellow, orange and sky blue are 1.3-2.3); black is
#: kept for a base or reference
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7")
STYLE = {
    "axes.prop_cycle": f"cycler('color', {list(PALETTE)})",
    "figure.constrained_layout.use": True,
    "savefig.dpi": DPI,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.titlesize": 10,
    "figure.titlesize": 10,
    "legend.fontsize": 7,
}


@contextlib.contextmanager
def figure(paths, width: float = 6.4, height: float = 4.0, ncols: int = 1) -> Iterator[tuple]:
    """``with figure(paths) as (fig, ax):`` draw; the figure is saved to ``paths`` (PNG, PDF) when the block ends.

    ``paths`` is one path or several; ``ncols > 1`` gives a row of axes.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, ncols, figsize=(width, height))
        try:
            yield fig, axes
            save_figure(fig, paths)
        finally:
            plt.close(fig)


def colour(i: int, n: int) -> str:
    """The colour of series ``i`` of ``n``: the palette's, or beyond its length a dark-to-mid ramp of cividis
    (0 to 0.6 of it: its pale yellow end left out), so every line keeps a contrast of 3:1 on white."""
    if n <= len(PALETTE):
        return PALETTE[i % len(PALETTE)]
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    return to_hex(colormaps["cividis"](0.6 * i / max(1, n - 1)))


def save_figure(fig, paths) -> None:
    """Save one figure to every path given, in the format its suffix names, atomically."""
    for path in [paths] if isinstance(paths, (str, Path)) else paths:
        path = Path(path)
        with atomic_path(path, suffix=path.suffix) as tmp:
            fig.savefig(tmp, dpi=DPI, format=path.suffix.lstrip("."))
