"""Rule report_glue: the tidy table of runs -> GLUE tables, significance, deltas figure and cost table."""
import os
import sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, ".."))  # noqa: F821  (the layerlens package)
from layerlens.runtime import job  # noqa: E402

with job(snakemake):  # noqa: F821
    from layerlens.report import cost, glue, runs, significance, tables

    smk = snakemake  # noqa: F821
    p, out, st = smk.params, smk.output, smk.params.statistics
    table = runs.read_runs(smk.input.runs)
    summary = glue.glue_summary(table, p.bases, p.tasks)
    tests = significance.compare(table, p.bases, p.tasks, alpha=st["alpha"], n_boot=st["bootstrap"],
                                 power=st["power"], seed=st["seed"], comparisons=p.comparisons, statistics=st)
    glue.write_glue_report(summary, tests, p.tasks, out.csv, out.md, out.tex, out.significance,
                           alpha=st["alpha"], power=st["power"], statistics=st)
    glue.plot_glue_deltas(summary, p.tasks, [out.deltas, out.deltas_pdf])
    cost.write_cost_report(cost.cost_table(table, summary, p.bases), out.cost, out.cost_md)
    tables.write_html(out.md, out.html)
    tables.write_html(out.cost_md, out.cost_html)
