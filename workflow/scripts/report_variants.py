"""Rule report_variants: every variant, its layer map and which are one model -> results/report/variants.*."""
import os
import sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, ".."))  # noqa: F821  (the layerlens package)
from layerlens.runtime import job  # noqa: E402

with job(snakemake):  # noqa: F821
    from pathlib import Path

    from layerlens.report import variants

    smk = snakemake  # noqa: F821
    selected = {Path(p).stem: p for p in smk.input.selected}  # results/similarity/selected/{variant}.json
    table = variants.variants_table(smk.params.variants, selected, smk.params.base_dirs)
    variants.write_variants_report(table, smk.output.csv, smk.output.md, smk.output.tex)
