"""Rule probe_family_figure: the probe curves of a base and its variants on one plot (PNG and PDF)."""
import os
import sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, ".."))  # noqa: F821  (the layerlens package)
from layerlens.runtime import job  # noqa: E402

with job(snakemake):  # noqa: F821
    from layerlens import report

    smk = snakemake  # noqa: F821
    report.plot_probe_family(report.collect_probe(smk.input), smk.wildcards.base, smk.params.variants,
                             [smk.output.png, smk.output.pdf])
