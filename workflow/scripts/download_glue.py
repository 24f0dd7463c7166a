"""Rule download_glue: one GLUE task from the Hub or the classic TSV folder -> resources/glue/{task}/."""
import os
import sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, ".."))  # noqa: F821  (the layerlens package)
from layerlens.runtime import job  # noqa: E402

with job(snakemake, offline=False):  # noqa: F821
    from layerlens.download import fetch_glue
    from layerlens.runtime import cache_env

    p = snakemake.params  # noqa: F821
    fetch_glue(snakemake.wildcards.task, p.source, snakemake.output[0], tsv_dir=p.tsv_dir,  # noqa: F821
               revision=p.revision, cache_dir=cache_env()["HF_DATASETS_CACHE"])
