"""Rule report_expected_max: every fine-tuning cell -> mean, median and expected maximum over seeds."""
import os
import sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, ".."))  # noqa: F821  (the layerlens package)
from layerlens.runtime import job  # noqa: E402

with job(snakemake):  # noqa: F821
    from layerlens.report import collect, expected_max

    smk = snakemake  # noqa: F821
    out, p = smk.output, smk.params
    table = expected_max.expected_max_table(collect.collect_finetune(smk.input.metrics), p.models, p.tasks)
    expected_max.write_expected_max(table, p.tasks, out.csv, out.md, out.tex)
    expected_max.plot_expected_max(table, p.tasks, [out.png, out.pdf])
