"""The one table writer: CSV for the data, Markdown, HTML and LaTeX for reading, and the cell formats they share.

- :func:`write_csv`: the full-precision table, as the analysis downstream reads it.
- :func:`markdown`: a GitHub table (tabulate), cells exactly as given.
- :func:`html_page`: a Markdown report as a self-contained HTML page (Python-Markdown), for the HTML report.
- :func:`latex`: a booktabs ``table`` through pandas' Styler, cells LaTeX-escaped (``Styler.format(escape="latex")``)
  with the symbols pdflatex's default fonts lack (± † Δ ∞) written as LaTeX, a caption and a label, and optionally
  the best cell of each column or row in bold (ranked by numbers, not by the formatted text).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..io import atomic_path, write_text

#: the Styler's LaTeX props for bold: ``\textbf{cell}``
BOLD = "textbf:--rwrap;"
#: characters the tables use that need LaTeX of their own (after Styler's escaping of ``& % $ # _ { } ~ ^ \``)
LATEX_SYMBOLS = str.maketrans({"±": r"$\pm$", "†": r"\textdagger{}", "Δ": r"$\Delta$", "∞": r"$\infty$"})


def write_csv(table: pd.DataFrame, path) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)


def markdown(table: pd.DataFrame, index: bool = True) -> str:
    return table.to_markdown(index=index, disable_numparse=True)


def latex(table: pd.DataFrame, *, caption: str, label: str, rank_by: pd.DataFrame | None = None,
          axis: int = 0) -> str:
    """``table`` (index = row labels) as a booktabs table; ``caption`` is LaTeX already.

    With ``rank_by`` (numbers, same labels as ``table``), the cells holding the largest value of their column
    (``axis=0``) or row (``axis=1``) are set in bold: ``Styler.highlight_max``'s rule, applied to the numbers
    behind the formatted cells (highlight_max itself would rank the text). Ties are all bold; NaN is never best.
    """
    shown = table.rename_axis(index=None, columns=None).fillna("").astype(str)
    styler = (shown.style.format(_symbols, escape="latex")
              .format_index(_symbols, escape="latex", axis=0)
              .format_index(_symbols, escape="latex", axis=1))
    if rank_by is not None:
        values = rank_by.apply(pd.to_numeric, errors="coerce").reindex(index=table.index, columns=table.columns)
        values = values.rename_axis(index=None, columns=None)
        styler = styler.apply(_bold_max, axis=axis, values=values, along=axis)
    return styler.to_latex(hrules=True, caption=caption, label=label, position="htbp",
                           column_format="l" + "r" * table.shape[1]) + "\n"


def _bold_max(cells: pd.Series, values: pd.DataFrame, along: int) -> np.ndarray:
    """``Styler.highlight_max``'s rule applied to the numbers behind ``cells`` (a column, or a row for along=1)."""
    v = values[cells.name] if along == 0 else values.loc[cells.name]
    return np.where(v.eq(v.max(skipna=True)), BOLD, "")


def _symbols(text) -> str:
    return str(text).translate(LATEX_SYMBOLS)


def write_latex(path, table: pd.DataFrame, **kwargs) -> None:
    write_text(path, latex(table, **kwargs))


HTML_STYLE = ("body{font-family:sans-serif;font-size:13px;margin:1em;max-width:75em}table{border-collapse:collapse}"
              "th,td{padding:3px 8px;border-bottom:1px solid #ddd;white-space:nowrap}th{background:#f4f4f4}")


def html_page(markdown_text: str) -> str:
    """A Markdown report (text and pipe tables, as :func:`markdown` writes them) as one self-contained HTML page,
    through Python-Markdown: ``snakemake --report`` shows HTML inline, where a CSV is only a download."""
    import markdown as md

    body = md.markdown(markdown_text, extensions=["tables"], output_format="html")
    first = next((line.lstrip("# ").strip() for line in markdown_text.splitlines() if line.startswith("#")), "")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{first}</title><style>{HTML_STYLE}</style>"
            f"</head><body>{body}</body></html>\n")


def write_html(markdown_path, html_path) -> None:
    """The HTML twin of a Markdown report file."""
    from pathlib import Path

    write_text(html_path, html_page(Path(markdown_path).read_text(encoding="utf-8")))


# --- cell formats ----------------------------------------------------------------------------------------


def finite(x) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def fmt(value, spec: str, missing: str = "") -> str:
    """``spec.format(value)``, or ``missing`` for NaN / None."""
    return spec.format(value) if finite(value) else missing


def pm(mean, sd) -> str:
    if not finite(mean):
        return "n/a"
    return f"{mean:.2f} ± {sd:.2f}" if finite(sd) else f"{mean:.2f}"


def signed(mean, sd) -> str:
    if not finite(mean):
        return "n/a"
    return f"{mean:+.2f} ± {sd:.2f}" if finite(sd) else f"{mean:+.2f}"


def p_value(v) -> str:
    return "n/a" if not finite(v) else (f"{v:.3f}" if v >= 0.001 else f"{v:.1e}")
