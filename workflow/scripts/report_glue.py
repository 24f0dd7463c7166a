"""Rule report_glue: every metrics.json -> results/report/glue.csv, glue.md and the delta figure."""
import os
import sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, ".."))  # noqa: F821  (the layerlens package)
from layerlens.runtime import job  # noqa: E402

with job(snakemake):  # noqa: F821
    from layerlens import report

    p = snakemake.params  # noqa: F821
    runs = report.collect_finetune(snakemake.input)  # noqa: F821
    summary = report.glue_summary(runs, p.bases, p.tasks)
    report.write_glue_report(summary, p.tasks, snakemake.output.csv, snakemake.output.md)  # noqa: F821
    report.plot_glue_deltas(summary, p.tasks, snakemake.output.deltas)  # noqa: F821
