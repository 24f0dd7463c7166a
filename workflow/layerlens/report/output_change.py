"""Output change in the report: each variant's final MLM distribution against its base's, as a table (CSV,
Markdown, LaTeX) and a figure against the layer touched."""

from __future__ import annotations

import pandas as pd

from ..io import write_text
from .figures import figure
from .tables import latex, markdown, write_csv

SHOWN = ["variant", "base", "kind", "touched", "kl", "agree_top1", "agree_lo", "agree_hi", "top1_base",
         "top1_variant", "n_tokens"]
MARKERS = {"duplicate": "o-", "remove": "s--", "duplicate_block": "^:"}


def write_change_report(change: pd.DataFrame, out_csv, out_md, out_tex) -> None:
    write_csv(change, out_csv)
    show = change[SHOWN].copy()
    show["agree_top1"] = [f"{a:.3f} [{lo:.3f}, {hi:.3f}]" for a, lo, hi in
                          zip(show.pop("agree_top1"), show.pop("agree_lo"), show.pop("agree_hi"))]
    show["kl"] = show["kl"].map(lambda v: f"{v:.3g}")
    for col in ("top1_base", "top1_variant"):
        show[col] = show[col].map(lambda v: f"{v:.3f}")
    show = show.set_index("variant")
    lines = ["# Output change: variant vs base", "",
             "On the probe sentences, the variant's final masked-LM distribution against its base's: mean "
             "KL(base || variant) per token (nats), top-1 agreement (95% bootstrap interval over sentences), and "
             "how often each model's last layer gives back the input token.", "",
             markdown(show), ""]
    write_text(out_md, "\n".join(lines))
    write_text(out_tex, latex(show, label="tab:output-change",
                              caption="Change of the final MLM distribution from removing or duplicating layers."))


def plot_output_change(change: pd.DataFrame, paths) -> None:
    """KL and top-1 agreement of each variant's outputs with its base's, against the (first) layer touched."""
    with figure(paths, 9.6, 3.8, ncols=2) as (fig, (ax_kl, ax_ag)):
        groups = change.dropna(subset=["first_touched"]).groupby(["base", "kind"], sort=False)
        for i, ((base, kind), g) in enumerate(groups):
            g = g.sort_values("first_touched")
            style, color = MARKERS.get(kind, "x-"), f"C{i % 10}"
            ax_kl.plot(g["first_touched"], g["kl"], style, color=color, label=f"{base}: {kind}")
            ax_ag.plot(g["first_touched"], g["agree_top1"], style, color=color, label=f"{base}: {kind}")
            ax_ag.fill_between(g["first_touched"], g["agree_lo"], g["agree_hi"], color=color, alpha=0.15,
                               linewidth=0)
        ax_kl.set_ylabel("KL(base || variant), nats / token")
        if (change["kl"] > 0).all():
            ax_kl.set_yscale("log")
        ax_ag.set_ylabel("top-1 agreement with base")
        ax_ag.set_ylim(-0.02, 1.02)
        for ax in (ax_kl, ax_ag):
            ax.set_xlabel("layer touched (first layer of a block)")
        ax_ag.legend(loc="lower left")
        fig.suptitle("Does removing or duplicating a layer change the outputs?")
