"""Rule probe: every hidden layer of one model through its MLM head -> results/probe/{model}.csv and .png; the
layer similarity from the same forward pass -> results/similarity/{model}.csv."""
import os
import sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, ".."))  # noqa: F821  (the layerlens package)
from layerlens.runtime import job  # noqa: E402

with job(snakemake):  # noqa: F821
    from layerlens.probe import probe_to_file
    from layerlens.report import plot_probe
    from layerlens.sweeps import with_selected_layers

    smk = snakemake  # noqa: F821
    # fitted heads (models with `probe: {head: fit}`): one input per decoder, fit_tied / fit_untied
    heads = {name: smk.input[name.replace("-", "_")] for name in smk.params.heads} or None
    variant = with_selected_layers(smk.params.variant, smk.input.get("selected"))  # layers chosen by similarity
    table = probe_to_file(smk.input.model, smk.input.sentences, smk.output.csv, model_name=smk.wildcards.model,
                          settings=smk.params.probe, seed=smk.params.seed, variant=variant,
                          base_name=smk.params.base, heads=heads, translator_dir=smk.input.get("translators"),
                          similarity_csv=smk.output.similarity, cka=smk.params.similarity["cka"])
    plot_probe(table, smk.output.png)
