"""Rule output_change: a variant's final MLM distribution against its base's -> results/probe/change/{variant}.csv."""
import os
import sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, ".."))  # noqa: F821  (the layerlens package)
from layerlens.runtime import job  # noqa: E402

with job(snakemake):  # noqa: F821
    from layerlens.output_change import output_change_to_file
    from layerlens.sweeps import with_selected_layers

    smk = snakemake  # noqa: F821
    output_change_to_file(smk.input.base, smk.input.get("variant"),  # None: a probe-only variant
                          smk.input.sentences, smk.output[0], variant_name=smk.wildcards.variant,
                          base_name=smk.params.base, settings=smk.params.probe, seed=smk.params.seed,
                          variant=with_selected_layers(smk.params.variant, smk.input.get("selected")),
                          head_dir=smk.input.get("head"))  # a fitted head, for `probe: {head: fit}`
