"""Rule report_glue: every fine-tuning cell -> GLUE tables, significance, deltas figure and cost table."""
import os
import sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, ".."))  # noqa: F821  (the layerlens package)
from layerlens.runtime import job  # noqa: E402

with job(snakemake):  # noqa: F821
    from layerlens.report import collect, cost, glue, significance

    smk = snakemake  # noqa: F821
    p, out, st = smk.params, smk.output, smk.params.statistics
    runs = collect.collect_finetune(smk.input.metrics)
    summary = glue.glue_summary(runs, p.bases, p.tasks)
    tests = significance.compare(runs, p.bases, p.tasks, alpha=st["alpha"], n_boot=st["bootstrap"],
                                 power=st["power"], seed=st["seed"], comparisons=p.comparisons, statistics=st)
    glue.write_glue_report(summary, tests, p.tasks, out.csv, out.md, out.tex, out.significance,
                           alpha=st["alpha"], power=st["power"], statistics=st)
    glue.plot_glue_deltas(summary, p.tasks, [out.deltas, out.deltas_pdf])
    benchmarks = dict(zip([(m, t, s) for m in p.bases for t in p.tasks for s in p.seeds], smk.input.benchmarks))
    costs = cost.cost_table(runs, benchmarks, summary, p.bases)
    cost.write_cost_report(costs, out.cost, out.cost_md)
