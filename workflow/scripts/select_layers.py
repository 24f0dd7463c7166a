"""Rule select_layers: a `select` variant's layers, chosen from its base's similarity -> results/similarity/selected/."""
import os
import sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, ".."))  # noqa: F821  (the layerlens package)
from layerlens.runtime import job  # noqa: E402

with job(snakemake):  # noqa: F821
    from layerlens.sweeps import select_to_file

    smk = snakemake  # noqa: F821
    select_to_file(smk.input.base, smk.input.similarity, smk.output[0], variant=smk.wildcards.selected,
                   base=smk.params.base, selection=smk.params.select)
