"""Rule probe_family_figure: the probe curves of a base and its variants on one plot (PNG and PDF)."""
import os
import sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, ".."))  # noqa: F821  (the layerlens package)
from layerlens.runtime import job  # noqa: E402

with job(snakemake):  # noqa: F821
    from layerlens.report import collect, probe

    smk = snakemake  # noqa: F821
    probe.plot_probe_family(collect.collect_probe(smk.input), smk.wildcards.base, smk.params.variants,
                            [smk.output.png, smk.output.pdf])
