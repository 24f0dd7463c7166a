"""Rule report_probe: all probe CSVs -> results/report/probe.csv and probe.md."""
import os
import sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, ".."))  # noqa: F821  (the layerlens package)
from layerlens.runtime import job  # noqa: E402

with job(snakemake):  # noqa: F821
    from layerlens import report

    probe = report.collect_probe(snakemake.input)  # noqa: F821
    report.write_probe_report(probe, snakemake.output.csv, snakemake.output.md)  # noqa: F821
