"""Rule build_variant: copy the base's layers by the variant's layer map -> resources/models/{variant}/."""
import os
import sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, ".."))  # noqa: F821  (the layerlens package)
from layerlens.runtime import job  # noqa: E402

with job(snakemake):  # noqa: F821
    from layerlens.layermap import build_variant_from_config

    build_variant_from_config(snakemake.input.base, snakemake.output[0], snakemake.params.spec,  # noqa: F821
                              base_name=snakemake.params.base, variant_name=snakemake.wildcards.built_variant)  # noqa: F821
