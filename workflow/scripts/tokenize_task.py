"""Rule tokenize: one task tokenized once per (tokenizer, task, max_length), shared by models and seeds."""
import os
import sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, ".."))  # noqa: F821  (the layerlens package)
from layerlens.runtime import job  # noqa: E402

with job(snakemake):  # noqa: F821
    from layerlens.finetune import tokenize_task

    w = snakemake.wildcards  # noqa: F821
    tokenize_task(snakemake.input.glue, snakemake.input.tokenizer, snakemake.output[0],  # noqa: F821
                  task=w.task, max_length=int(w.max_length))
