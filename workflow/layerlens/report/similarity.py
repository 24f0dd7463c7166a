"""Layer similarity in the report (:mod:`layerlens.similarity`): per base model, how much each layer changes its
input and which block of each size changes it least (CSV, Markdown, LaTeX), and a figure with the linear CKA
matrix and Gromov et al.'s angular-distance matrix (first layer x block size)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..io import write_text
from ..similarity import cka_of
from .figures import figure
from .tables import fmt, latex, markdown, write_csv


def _ci(value, lo, hi) -> str:
    """Three significant digits: a Block Influence or distance can be far below 0.001."""
    return f"{value:.3g} [{fmt(lo, '{:.3g}', '?')}, {fmt(hi, '{:.3g}', '?')}]"


def layer_table(sim: pd.DataFrame) -> pd.DataFrame:
    """One model's layers: input-output cosine, Block Influence and angular distance (95% intervals), CKA."""
    t = sim[sim["n_layers"] == 1].sort_values("from_state")
    return pd.DataFrame({"cos(in, out)": t["cos"].map("{:.3f}".format).to_numpy(),
                         "Block Influence": [_ci(*v) for v in zip(t["block_influence"], t["bi_lo"], t["bi_hi"])],
                         "angular distance": [_ci(*v) for v in zip(t["angular"], t["angular_lo"], t["angular_hi"])],
                         "CKA(in, out)": t["cka"].map(lambda v: fmt(v, "{:.3f}", "")).to_numpy()},
                        index=pd.Index(t["from_state"].to_numpy(), name="layer"))


def block_table(sim: pd.DataFrame) -> pd.DataFrame:
    """Per block size n: the block of n layers whose input and output are closest in angular distance (ties to the
    lower layer), and the runner-up, each with its 95% interval."""
    rows = []
    for n, g in sim.groupby("n_layers"):
        g = g.sort_values(["angular", "from_state"], kind="stable")
        best = g.iloc[0]
        row = {"n": int(n), "most similar block": best["layers"],
               "angular distance": _ci(best["angular"], best["angular_lo"], best["angular_hi"]),
               "runner-up": "", "its distance": ""}
        if len(g) > 1:
            second = g.iloc[1]
            row.update({"runner-up": second["layers"],
                        "its distance": _ci(second["angular"], second["angular_lo"], second["angular_hi"])})
        rows.append(row)
    return pd.DataFrame(rows).set_index("n")


def write_similarity_report(sim: pd.DataFrame, out_csv, out_md, out_tex) -> None:
    write_csv(sim, out_csv)
    lines = ["# Layer similarity", "",
             "Measured in each probe's own forward pass, on the tokens it scores. Layer l maps hidden state l to "
             "state l + 1 (state 0: the embedding output). Cosine and Block Influence (ShortGPT: 1 - cos) between a "
             "layer's input and output, angular distance arccos(cos) / pi (Gromov et al.), each averaged over tokens "
             "with a 95% bootstrap interval over examples; linear CKA over all tokens (no interval). A low Block "
             "Influence or angular distance marks a layer that changes its input little: what ShortGPT and Gromov "
             "et al. prune. It describes these sentences, not a task.", ""]
    for model, t in sim.groupby("model", sort=False):
        lines += [f"## {model} ({int(t['to_state'].max())} layers, {int(t['n_tokens'].iloc[0])} tokens)", "",
                  "### Each layer: input against output", "", markdown(layer_table(t)), "",
                  "### The most similar block of n layers (smallest angular distance)", "", markdown(block_table(t)),
                  ""]
    write_text(out_md, "\n".join(lines))
    per_layer = pd.concat({m: layer_table(t) for m, t in sim.groupby("model", sort=False)}, names=["model", "layer"])
    per_layer.index = [f"{m} {layer}" for m, layer in per_layer.index]
    write_text(out_tex, latex(per_layer, label="tab:similarity",
                              caption="Each layer's input against its output: cosine, Block Influence and angular "
                                      "distance (mean over tokens, 95\\% bootstrap interval over examples), linear "
                                      "CKA."))


def angular_matrix(sim: pd.DataFrame) -> np.ndarray:
    """Gromov et al.'s matrix: angular distance by first layer (rows, 0..L-1) and block size (columns, 1..L);
    NaN where the block would run past the last layer."""
    L = int(sim["to_state"].max())
    out = np.full((L, L), np.nan)
    out[sim["from_state"], sim["n_layers"] - 1] = sim["angular"]
    return out


def plot_similarity(sim: pd.DataFrame, paths, title: str | None = None) -> None:
    """One model: the linear CKA matrix between hidden states, and the angular distance between each block's input
    and output by first layer and block size, the most similar block of each size circled."""
    from matplotlib.ticker import MaxNLocator

    L = int(sim["to_state"].max())
    with figure(paths, 10.5, 4.4, ncols=2) as (fig, (ax_cka, ax_ang)):
        cka = cka_of(sim)
        im = ax_cka.imshow(cka, origin="lower", vmin=0, vmax=1, cmap="viridis")
        fig.colorbar(im, ax=ax_cka, label="linear CKA")
        ax_cka.set_xlabel("hidden state (0 = embedding output)")
        ax_cka.set_ylabel("hidden state")
        ax_cka.set_title("linear CKA between hidden states")
        ang = angular_matrix(sim)
        im = ax_ang.imshow(ang, origin="lower", cmap="magma", extent=(0.5, L + 0.5, -0.5, L - 0.5), aspect="auto")
        fig.colorbar(im, ax=ax_ang, label="angular distance, arccos(cos) / pi")
        best = [int(np.nanargmin(ang[:, n - 1])) for n in range(1, L + 1)]
        ax_ang.plot(range(1, L + 1), best, "o", mfc="none", mec="cyan", label="most similar block of n")
        ax_ang.set_xlabel("block size n (layers)")
        ax_ang.set_ylabel("first layer of the block")
        ax_ang.set_title("input vs output of each block")
        ax_ang.legend(loc="upper right")
        for ax in (ax_cka, ax_ang):
            ax.grid(False)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        fig.suptitle(title or f"{sim['model'].iloc[0]}: layer similarity ({int(sim['n_tokens'].iloc[0])} tokens)")
