"""The layer probe in the report: the all-models table (CSV, Markdown, LaTeX), the per-model figure and the
family figure (a base and its variants against relative depth)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from ..io import write_text
from .figures import colour, figure
from .tables import latex, markdown, write_csv

METRICS = (("top1", "Top-1 accuracy"), ("agree_last", "Top-1 agreement with the last layer"),
           ("cross_entropy", "Cross-entropy of the input token (nats)"))


def write_probe_report(probe: pd.DataFrame, out_csv, out_md, out_tex=None) -> None:
    write_csv(probe, out_csv)
    lines = ["# Layer probe: the masked-LM head on every hidden layer", "",
             "Share of input tokens (special tokens and padding excluded, nothing masked) that the model's own "
             "MLM head predicts back from each hidden layer; layer 0 is the embedding output. "
             "Top-1 with its 95% bootstrap interval over sentences.", ""]
    if "head" in probe and (probe["head"] == "fit").any():
        fitted = ", ".join(dict.fromkeys(probe.loc[probe["head"] == "fit", "model"]))
        lines += [f"Read with a fitted head (trained on the base's last layer only, encoder frozen): {fitted}. "
                  "Every other model is read with its own pretrained head.", ""]
    for metric, title in METRICS:
        lines += [f"## {title}", "", markdown(_shown(_wide(probe, metric))), ""]
    write_text(out_md, "\n".join(lines))
    if out_tex is not None:
        top1 = _wide(probe, "top1")
        write_text(out_tex, latex(_shown(top1), rank_by=top1, axis=1, label="tab:probe",
                                  caption="Top-1 reconstruction of the input tokens from each hidden layer "
                                          "(0 = embeddings) through the MLM head; best layer per model in bold."))


def _wide(probe: pd.DataFrame, metric: str) -> pd.DataFrame:
    """model x layer, models in the order they come."""
    wide = probe.pivot_table(index="model", columns="layer", values=metric, sort=False)
    return wide.reindex(list(dict.fromkeys(probe["model"])))


def _shown(wide: pd.DataFrame) -> pd.DataFrame:
    return wide.map(lambda v: "" if pd.isna(v) else f"{v:.3f}")


BAND = "95% bootstrap interval over examples"


def copies(table: pd.DataFrame) -> pd.Series:
    """Per row of one model's probe table: whether the layer is a copy of a base layer an earlier layer already
    holds (a duplicated layer's second and later copies); False for a base model and for layer 0."""
    if "source_layer" not in table:
        return pd.Series(False, index=table.index)
    return table.sort_values("layer")["source_layer"].duplicated().reindex(table.index)


def plot_probe(table: pd.DataFrame, path: str | Path, title: str | None = None) -> None:
    """Top-1, top-5 and agreement with the last layer against depth, with the top-1 interval shaded and the
    duplicated layers (copies) marked."""
    with figure(path) as (fig, ax):
        table = table.sort_values("layer")
        x = table["layer"]
        ax.fill_between(x, table["top1_lo"], table["top1_hi"], alpha=0.25, color="C0", linewidth=0,
                        label=f"top-1: {BAND}")
        ax.plot(x, table["top1"], "o-", color="C0", label="top-1 = input token")
        ax.plot(x, table["top5"], "s--", color="C1", label="input token in top-5")
        ax.plot(x, table["agree_last"], "^:", color="C2", label="top-1 agrees with last layer")
        _mark_copies(ax, table, table["layer"], table["top1"])
        ax.set_xlabel("hidden layer (0 = embedding output)")
        ax.set_ylabel("share of input tokens")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xticks(list(x))
        ax.legend(loc="lower left")
        n_tok = int(table["n_tokens"].iloc[0])
        head = "fitted MLM head" if table["head"].iloc[0] == "fit" else "MLM head"
        ax.set_title(title or f"{table['model'].iloc[0]}: {head} on every layer ({n_tok} tokens)")


def _mark_copies(ax, table: pd.DataFrame, x, y, color: str = "black", label: bool = True) -> None:
    dup = copies(table).to_numpy()
    if dup.any():
        ax.scatter(x[dup], y[dup], s=140, facecolors="none", edgecolors=color, linewidths=1.5, zorder=6,
                   label="copy of an earlier layer (duplicated)" if label else None)


def plot_probe_family(probe: pd.DataFrame, base: str, variants: Sequence[str], paths,
                      metric: str = "top1") -> None:
    """The probe curves of a base and its variants on one plot, against relative depth; each variant's
    duplicated layers (copies) circled."""
    shown = [m for m in [base] + list(variants) if (probe["model"] == m).any()]
    many = len(shown) > 8
    with figure(paths) as (fig, ax):
        marked = False
        for i, model in enumerate(shown):
            t = probe[probe["model"] == model].sort_values("layer")
            depth = t["layer"].max()
            x = t["layer"] / depth if depth else t["layer"]
            if model == base:
                ax.plot(x, t[metric], "o-", color="black", label=f"{model} ({depth} layers)", linewidth=2, zorder=5)
                if metric == "top1" and "top1_lo" in t:
                    ax.fill_between(x, t["top1_lo"], t["top1_hi"], color="black", alpha=0.15, linewidth=0,
                                    label=f"{model}: {BAND}")
                continue
            c = colour(i - 1, len(shown) - 1)
            ax.plot(x, t[metric], "-" if many else ".--", color=c, label=None if many else f"{model} ({depth} layers)",
                    linewidth=1.2)
            if not many:
                _mark_copies(ax, t, x, t[metric], color=c, label=not marked)
                marked = marked or bool(copies(t).any())
        ax.set_xlabel("relative depth (hidden layer / number of layers; 0 = embeddings)")
        ax.set_ylabel({"top1": "top-1 = input token", "agree_last": "agreement with last layer"}.get(metric, metric))
        ax.set_ylim(-0.02, 1.02)
        ax.legend(loc="lower left")
        suffix = f" ({len(shown) - 1} variants)" if many else ""
        ax.set_title(f"MLM head on every layer: {base} and its variants{suffix}")
