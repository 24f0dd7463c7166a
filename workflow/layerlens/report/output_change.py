"""Output change in the report: each variant's final MLM distribution against its base's, as a table (CSV,
Markdown, LaTeX) and a figure against the layer touched."""

from __future__ import annotations

import pandas as pd

from ..io import write_text
from .figures import colour, figure
from .tables import latex, markdown, write_csv

SHOWN = ["variant", "base", "kind", "touched", "kl", "agree_top1", "agree_lo", "agree_hi", "top1_base",
         "top1_variant", "n_tokens"]
MARKERS = {"duplicate": "o", "remove": "s", "duplicate_block": "^"}


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
                              caption="Change of the final MLM distribution of each variant from its base's."))


#: the verb of each kind of layer map, for the title
VERBS = {"duplicate": "duplicating", "remove": "removing", "duplicate_block": "duplicating"}


def plot_output_change(change: pd.DataFrame, paths) -> None:
    """KL and top-1 agreement of each variant's outputs with its base's, against the (first) layer touched: one
    point per variant (variants are separate models, not a series: no line joins them), the agreement with its
    95% bootstrap interval over examples as error bars."""
    from matplotlib.ticker import MaxNLocator

    groups = list(change.dropna(subset=["first_touched"]).groupby(["base", "kind"], sort=False))
    with figure(paths, 9.6, 4.2, ncols=2) as (fig, (ax_kl, ax_ag)):
        for i, ((base, kind), g) in enumerate(groups):
            g = g.sort_values("first_touched")
            marker, color = MARKERS.get(kind, "x"), colour(i, len(groups))
            label = f"{base}: {kind} ({len(g)} variant{'s' if len(g) > 1 else ''})"
            ax_kl.plot(g["first_touched"], g["kl"], marker, linestyle="none", color=color, label=label)
            ax_ag.errorbar(g["first_touched"], g["agree_top1"],
                           yerr=[g["agree_top1"] - g["agree_lo"], g["agree_hi"] - g["agree_top1"]],
                           fmt=marker, color=color, capsize=3, label=label)
        ax_kl.set_ylabel("KL(base || variant), nats / token")
        if (change["kl"] > 0).all():
            ax_kl.set_yscale("log")
        ax_ag.set_ylabel("top-1 agreement with base")
        ax_ag.set_ylim(-0.02, 1.02)
        for ax in (ax_kl, ax_ag):
            ax.set_xlabel("base layer touched (first of a block)")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            if groups:
                ax.legend(loc="best")
        ax_ag.set_title("error bars: 95% bootstrap interval over examples", fontsize=8)
        verbs = sorted({VERBS.get(kind, "changing") for _, kind in (k for k, _ in groups)})
        fig.suptitle(f"Does {' or '.join(verbs) or 'changing'} a layer change the final outputs? "
                     "(each point: one variant vs its base)")
