"""Rule build_random_control: the variant's shape, each copied layer freshly initialised -> resources/models/{c}/."""
import os
import sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, ".."))  # noqa: F821  (the layerlens package)
from layerlens.runtime import job  # noqa: E402

with job(snakemake):  # noqa: F821
    from layerlens.controls import build_random_control

    p = snakemake.params  # noqa: F821
    build_random_control(snakemake.input.base, snakemake.output[0], p.spec, seed=p.seed,  # noqa: F821
                         base_name=p.base, variant_name=p.variant, name=snakemake.wildcards.random_control)  # noqa: F821
