"""Rule report_output_change: every variant's output change -> tables and the figure against the layer touched."""
import os
import sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, ".."))  # noqa: F821  (the layerlens package)
from layerlens.runtime import job  # noqa: E402

with job(snakemake):  # noqa: F821
    from layerlens.report import collect, output_change, tables

    out = snakemake.output  # noqa: F821
    change = collect.collect_probe(snakemake.input)  # noqa: F821  (one CSV row per variant)
    output_change.write_change_report(change, out.csv, out.md, out.tex)
    output_change.plot_output_change(change, [out.png, out.pdf])
    tables.write_html(out.md, out.html)
