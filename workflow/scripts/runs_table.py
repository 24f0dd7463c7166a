"""Rule runs_table: every fine-tuning cell's metrics.json and benchmark -> results/report/runs.parquet and .csv."""
import os
import sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, ".."))  # noqa: F821  (the layerlens package)
from layerlens.runtime import job  # noqa: E402

with job(snakemake):  # noqa: F821
    from layerlens.report import runs

    smk = snakemake  # noqa: F821
    runs.write_runs(runs.runs_table(smk.input.metrics, smk.input.benchmarks), smk.output.parquet, smk.output.csv)
