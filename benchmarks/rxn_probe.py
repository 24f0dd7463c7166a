"""The probe on a head pre-trained with its layers: rxnmapper's ALBERT (reaction SMILES) through both modes.

Every head this project fits is fitted here, on the last layer; rxnmapper's ALBERT masked LM (tests/rxn.py) is the
one real pretrained MLM head obtainable offline, trained with its own layers. This runs the pipeline's probe
(:func:`layerlens.probe.run_probe`, the model's own head and the identity reading) on the reaction SMILES quoted in
the wheel (tests/rxn.py ``wheel_reactions``), in the input mode and in the masked mode with every token masked in
turn (``scheme: each``, ``corruption: mask``), and writes the table (CSV, Markdown) and the figure.

    python benchmarks/rxn_probe.py --out benchmarks/results/rxn

The wheel comes from ``$LAYERLENS_RXNMAPPER_WHEEL`` or the test cache (``.cache/rxnmapper``), as for the tests.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "workflow"), str(REPO / "tests")]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "rxn"))
    parser.add_argument("--cache", default=str(REPO / ".cache" / "rxnmapper"))
    parser.add_argument("--bootstrap", type=int, default=2000)
    args = parser.parse_args(argv)

    import torch
    from layerlens.probe import run_probe
    from layerlens.report.probe import plot_probe
    from rxn import build_rxn_albert, wheel_reactions

    torch.manual_seed(0)
    model = build_rxn_albert(args.cache)
    reactions = wheel_reactions(args.cache)
    table = run_probe(model, reactions, model_name="rxnmapper-albert", modes=["input", "masked"],
                      masking={"scheme": "each", "corruption": "mask", "max_positions": 512}, max_length=512,
                      bootstrap=args.bootstrap, seed=0, device="cpu")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "probe.csv", index=False)
    plot_probe(table, out / "probe.png")
    shown = table.pivot_table(index=["mode", "reading"], columns="layer", values="top1", sort=False)
    (out / "probe.md").write_text(
        f"{len(reactions)} reactions; positions scored: "
        + ", ".join(f"{m} {int(n)}" for m, n in table.groupby("mode", sort=False)["n_tokens"].first().items())
        + "\n\n" + shown.map(lambda v: f"{v:.3f}").to_markdown() + "\n")
    cols = ["mode", "reading", "layer", "top1", "top1_lo", "top1_hi", "mrr", "median_rank", "entropy", "ece",
            "agree_last"]
    print(table[cols].round(3).to_string(index=False))


if __name__ == "__main__":
    main()
