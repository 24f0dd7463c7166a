"""Rule probe_family_figure: the probe curves of a base and its variants on one plot."""
import os
import sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, ".."))  # noqa: F821  (the layerlens package)
from layerlens.runtime import job  # noqa: E402

with job(snakemake):  # noqa: F821
    from layerlens import report

    probe = report.collect_probe(snakemake.input)  # noqa: F821
    report.plot_probe_family(probe, snakemake.wildcards.base, snakemake.params.variants,  # noqa: F821
                             snakemake.output[0])  # noqa: F821
