"""Rule report_probe: all probe CSVs -> results/report/probe.csv, .md, .html and .tex."""
import os
import sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, ".."))  # noqa: F821  (the layerlens package)
from layerlens.runtime import job  # noqa: E402

with job(snakemake):  # noqa: F821
    from layerlens.report import collect, probe, tables

    out = snakemake.output  # noqa: F821
    probe.write_probe_report(collect.collect_probe(snakemake.input), out.csv, out.md, out.tex)  # noqa: F821
    tables.write_html(out.md, out.html)
