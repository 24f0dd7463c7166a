"""Rule build_variant: copy the base's layers by the variant's layer map -> resources/models/{variant}/."""
import os
import sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, ".."))  # noqa: F821  (the layerlens package)
from layerlens.runtime import job  # noqa: E402

with job(snakemake):  # noqa: F821
    from layerlens.layermap import build_variant_from_config
    from layerlens.sweeps import with_selected_layers

    smk = snakemake  # noqa: F821
    spec = with_selected_layers(smk.params.spec, smk.input.get("selected"))  # layers chosen by similarity
    build_variant_from_config(smk.input.base, smk.output[0], spec, base_name=smk.params.base,
                              variant_name=smk.wildcards.built_variant, aliases=smk.params.aliases)
