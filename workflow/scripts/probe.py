"""Rule probe: every hidden layer of one model through its MLM head -> results/probe/{model}.csv and .png."""
import os
import sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, ".."))  # noqa: F821  (the layerlens package)
from layerlens.runtime import job  # noqa: E402

with job(snakemake):  # noqa: F821
    from layerlens.probe import probe_to_file
    from layerlens.report import plot_probe

    smk = snakemake  # noqa: F821
    table = probe_to_file(smk.input.model, smk.input.sentences, smk.output.csv, model_name=smk.wildcards.model,
                          settings=smk.params.probe, seed=smk.params.seed, variant=smk.params.variant,
                          base_name=smk.params.base,
                          head_dir=smk.input.get("head"))  # a fitted head, for models with `probe: {head: fit}`
    plot_probe(table, smk.output.png)
