"""Rule probe: every hidden layer of one model through its MLM head -> results/probe/{model}.csv and .png."""
import os
import sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, ".."))  # noqa: F821  (the layerlens package)
from layerlens.runtime import job  # noqa: E402

with job(snakemake):  # noqa: F821
    from layerlens.probe import probe_to_files

    probe_to_files(snakemake.input.model, snakemake.input.sentences, snakemake.output.csv,  # noqa: F821
                   snakemake.output.png, model_name=snakemake.wildcards.model,  # noqa: F821
                   settings=snakemake.params.probe)  # noqa: F821
