"""Rule similarity_figure: one base's CKA and angular-distance matrices (PNG and PDF)."""
import os
import sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, ".."))  # noqa: F821  (the layerlens package)
from layerlens.runtime import job  # noqa: E402

with job(snakemake):  # noqa: F821
    from layerlens.report import similarity
    from layerlens.similarity import read_similarity

    smk = snakemake  # noqa: F821
    similarity.plot_similarity(read_similarity(smk.input[0]), [smk.output.png, smk.output.pdf])
