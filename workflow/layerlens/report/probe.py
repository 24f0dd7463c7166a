"""The layer probe in the report: the all-models table (CSV, Markdown, LaTeX), the per-model figure and the
family figure (a base and its variants against relative depth).

Every table and figure keeps the probe's modes apart (input: the unmasked token read back; masked: the hidden
token predicted from context) and shows each head reading beside its controls: the identity reading (the input
embeddings as decoder: what is trivial) and, where fitted, the translated reading. Colours are the Okabe-Ito
palette (distinguishable with the common colour-vision deficiencies); readings differ by line style too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from ..io import write_text
from .figures import colour, figure
from .tables import latex, markdown, write_csv

READING_STYLE = {"head": "-", "translated": "--", "embeddings": ":"}
READING_TEXT = {"head": "MLM head", "translated": "translator + head", "embeddings": "input embeddings as decoder"}
TABLES = (("top1", "Top-1 accuracy", None), ("mrr", "Mean reciprocal rank of the target", None),
          ("cross_entropy", "Cross-entropy of the target (nats)", "head"),
          ("entropy", "Entropy of the prediction (nats)", "head"),
          ("ece", "Top-label calibration error (ECE, L2, monotonic sweep)", "head"),
          ("agree_last", "Top-1 agreement with the model's own output (last layer through the head)", "head"))
MODE_TEXT = {
    "input": "**Input mode**: nothing masked; each of the sentence's own tokens is read back from each layer "
             "(close to trivial at the lower layers, whose states still hold the token's embedding).",
    "masked": "**Masked mode**: positions hidden as in pre-training; each layer's state at a masked position is "
              "scored against the original token. Layer 0 holds only the mask token and the position: its "
              "accuracy is the floor; what the layers add above it comes from context.",
}


def normalise(probe: pd.DataFrame) -> pd.DataFrame:
    """The probe table with ``mode``, ``reading`` and ``head`` present (tables written before they existed had
    one unmasked head reading per model)."""
    probe = probe.copy()
    for column, default in (("mode", "input"), ("reading", "head"), ("head", "pretrained")):
        if column not in probe:
            probe[column] = default
    return probe


def write_probe_report(probe: pd.DataFrame, out_csv, out_md, out_tex=None) -> None:
    probe = normalise(probe)
    write_csv(probe, out_csv)
    lines = ["# Layer probe: the masked-LM head on every hidden layer", "",
             "Each hidden layer (0 = the embedding output) read through the model's masked-LM head (`head`), "
             "beside two controls: the input embedding matrix as decoder (`embeddings`, no head: what is "
             "trivially readable) and, where fitted, the layer's affine translator then the head (`translated`). "
             "Heads: `pretrained` (the checkpoint's own), `fit-tied` / `fit-untied` (fitted here on the base's "
             "last layer only, encoder frozen, decoder tied to the input embeddings or trained apart). Special "
             "tokens, padding and [UNK] are never scored. Top-1's 95% bootstrap intervals (over examples) are in "
             "the CSV.", ""]
    for mode in dict.fromkeys(probe["mode"]):
        rows = probe[probe["mode"] == mode]
        n_tok = ", ".join(f"{m}: {int(n)}" for m, n in rows.groupby("model", sort=False)["n_tokens"].first().items())
        lines += [f"## {mode} mode", "", MODE_TEXT.get(mode, ""), f"Scored positions per model: {n_tok}.", ""]
        for metric, title, reading in TABLES:
            shown = rows if reading is None else rows[rows["reading"] == reading]
            lines += [f"### {title}", "", markdown(_shown(_wide(shown, metric))), ""]
    write_text(out_md, "\n".join(lines))
    if out_tex is not None:
        top1 = _wide(probe[probe["reading"] == "head"], "top1", with_mode=True)
        write_text(out_tex, latex(_shown(top1), rank_by=top1, axis=1, label="tab:probe",
                                  caption="Top-1 of the target token from each hidden layer (0 = embeddings) "
                                          "through the MLM head, per probe mode (input: the unmasked token; "
                                          "masked: the hidden token) and head; best layer per row in bold."))


def _row_label(t: pd.DataFrame, with_mode: bool = False) -> pd.Series:
    label = t["model"] + " · " + t["reading"].where(t["reading"] != "head", t["head"])
    return (label + " · " + t["mode"]) if with_mode else label


def _wide(probe: pd.DataFrame, metric: str, with_mode: bool = False) -> pd.DataFrame:
    """(model · head or reading) x layer, rows in the order they come."""
    t = probe.assign(row=_row_label(probe, with_mode))
    wide = t.pivot_table(index="row", columns="layer", values=metric, sort=False)
    return wide.reindex(list(dict.fromkeys(t["row"]))).rename_axis(index="model · reading")


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
    """One panel per mode: top-1 against depth for every head (its 95% bootstrap interval shaded) and its
    translated reading, the identity reading as the control, and the duplicated layers (copies) circled."""
    table = normalise(table)
    modes = list(dict.fromkeys(table["mode"]))
    heads = [h for h in dict.fromkeys(table["head"]) if h != "none"]
    with figure(path, width=5.2 * len(modes), height=4.0, ncols=len(modes)) as (fig, axes):
        axes = [axes] if len(modes) == 1 else list(axes)
        for ax, mode in zip(axes, modes):
            t = table[table["mode"] == mode]
            for (reading, head), curve in t.groupby(["reading", "head"], sort=False):
                curve = curve.sort_values("layer")
                color = "black" if head == "none" else colour(heads.index(head), len(heads))
                label = READING_TEXT[reading] + ("" if head == "none" else f" ({head})")
                ax.plot(curve["layer"], curve["top1"], READING_STYLE.get(reading, "-"), marker=".", color=color,
                        label=label)
                if reading == "head":
                    ax.fill_between(curve["layer"], curve["top1_lo"], curve["top1_hi"], alpha=0.2, color=color,
                                    linewidth=0, label=f"top-1 ({head}): {BAND}")
                    if head == heads[0]:
                        _mark_copies(ax, curve, curve["layer"], curve["top1"])
            ax.set_xlabel("hidden layer (0 = embedding output)")
            ax.set_ylabel("top-1 = target token")
            ax.set_ylim(-0.02, 1.02)
            ax.set_xticks(sorted(t["layer"].unique()))
            ax.legend(loc="best", fontsize="small")
            ax.set_title(f"{mode} mode ({int(t['n_tokens'].iloc[0])} positions)")
        fig.suptitle(title or f"{table['model'].iloc[0]}: every layer through the MLM head, and its controls")


def _mark_copies(ax, table: pd.DataFrame, x, y, color: str = "black", label: bool = True) -> None:
    dup = copies(table).to_numpy()
    if dup.any():
        ax.scatter(x[dup], y[dup], s=140, facecolors="none", edgecolors=color, linewidths=1.5, zorder=6,
                   label="copy of an earlier layer (duplicated)" if label else None)


def plot_probe_family(probe: pd.DataFrame, base: str, variants: Sequence[str], paths,
                      metric: str = "top1") -> None:
    """The probe curves of a base and its variants against relative depth, one panel per mode: the head reading
    (the first head, where a model has several), with the base's controls (identity, translated) beside it; each
    variant's duplicated layers (copies) circled."""
    probe = normalise(probe)
    shown = [m for m in [base] + list(variants) if (probe["model"] == m).any()]
    modes = list(dict.fromkeys(probe.loc[probe["model"].isin(shown), "mode"]))
    head = next(h for h in dict.fromkeys(probe.loc[probe["model"] == base, "head"]) if h != "none")
    many = len(shown) > 8
    with figure(paths, width=5.2 * len(modes), height=4.0, ncols=len(modes)) as (fig, axes):
        axes = [axes] if len(modes) == 1 else list(axes)
        for ax, mode in zip(axes, modes):
            rows = probe[(probe["mode"] == mode) & (probe["head"].isin([head, "none"]))]
            marked = False
            for i, model in enumerate(shown):
                for reading, t in rows[rows["model"] == model].groupby("reading", sort=False):
                    t = t.sort_values("layer")
                    depth = t["layer"].max()
                    x = t["layer"] / depth if depth else t["layer"]
                    if model == base:
                        ax.plot(x, t[metric], READING_STYLE.get(reading, "-"), marker="o" if reading == "head" else "",
                                color="black" if reading == "head" else "dimgrey",
                                linewidth=2 if reading == "head" else 1,
                                label=f"{model} ({depth} layers)" + ("" if reading == "head"
                                                                     else f": {READING_TEXT[reading]}"), zorder=5)
                        if reading == "head" and metric == "top1" and "top1_lo" in t:
                            ax.fill_between(x, t["top1_lo"], t["top1_hi"], color="black", alpha=0.15, linewidth=0,
                                            label=f"{model}: {BAND}")
                    elif reading == "head":
                        c = colour(i - 1, len(shown) - 1)
                        ax.plot(x, t[metric], "-" if many else ".--", color=c,
                                label=None if many else f"{model} ({depth} layers)", linewidth=1.2)
                        if not many:
                            _mark_copies(ax, t, x, t[metric], color=c, label=not marked)
                            marked = marked or bool(copies(t).any())
            ax.set_xlabel("relative depth (hidden layer / number of layers; 0 = embeddings)")
            ax.set_ylabel({"top1": "top-1 = target token", "agree_last": "agreement with the model's output"}.get(
                metric, metric))
            ax.set_ylim(-0.02, 1.02)
            ax.legend(loc="best", fontsize="small")
            ax.set_title(f"{mode} mode")
        suffix = f" ({len(shown) - 1} variants)" if many else ""
        fig.suptitle(f"MLM head ({head}) on every layer: {base} and its variants{suffix}")
