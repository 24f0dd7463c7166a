"""Rule finetune: one (model, task, seed) cell -> metrics.json and predictions.tsv."""
import os
import sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, ".."))  # noqa: F821  (the layerlens package)
from layerlens.runtime import job  # noqa: E402

with job(snakemake):  # noqa: F821
    from pathlib import Path

    from layerlens.finetune import finetune

    w = snakemake.wildcards  # noqa: F821
    finetune(snakemake.input.model, snakemake.input.data, Path(snakemake.output.metrics).parent,  # noqa: F821
             task=w.task, seed=int(w.seed), params=snakemake.params.hp, model_name=w.finetuned)  # noqa: F821
