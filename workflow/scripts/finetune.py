"""Rule finetune: one (model, task, seed) cell -> metrics.json and predictions.tsv."""
import os
import sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, ".."))  # noqa: F821  (the layerlens package)
from layerlens.runtime import job  # noqa: E402

w = snakemake.wildcards  # noqa: F821
with job(snakemake, announce=f"fine-tuning {w.finetuned} on {w.task}, seed {w.seed}"):  # noqa: F821
    from pathlib import Path

    from layerlens.grid import finetune_params
    from layerlens.finetune import finetune

    smk = snakemake  # noqa: F821
    params = {**finetune_params(smk.config, w.task), **smk.params.hp}  # + logging / checkpointing settings
    finetune(smk.input.model, smk.input.data, Path(smk.output.metrics).parent, task=w.task, seed=int(w.seed),
             params=params, model_name=w.finetuned, tracking_dir=smk.params.tracking_dir)
