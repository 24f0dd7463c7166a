"""Rule tokenize: one task for one base model, tokenized once per tokenizer content (shared store)."""
import os
import sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, ".."))  # noqa: F821  (the layerlens package)
from layerlens.runtime import job  # noqa: E402

with job(snakemake):  # noqa: F821
    from layerlens.tokenization import tokenize_task

    w = snakemake.wildcards  # noqa: F821
    tokenize_task(snakemake.input.glue, snakemake.input.tokenizer, snakemake.output[0],  # noqa: F821
                  task=w.task, max_length=int(w.max_length))
