"""Rule report_similarity: every base model's layer similarity -> results/report/similarity.csv, .md and .tex."""
import os
import sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, ".."))  # noqa: F821  (the layerlens package)
from layerlens.runtime import job  # noqa: E402

with job(snakemake):  # noqa: F821
    from layerlens.report import collect, similarity

    out = snakemake.output  # noqa: F821
    similarity.write_similarity_report(collect.collect_probe(snakemake.input), out.csv, out.md, out.tex)  # noqa: F821
