"""Rule push_variant: a built variant's folder (model card included) -> the Hub; results/hub/{variant}.json."""
import os
import sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, ".."))  # noqa: F821  (the layerlens package)
from layerlens.runtime import job  # noqa: E402

with job(snakemake, offline=False):  # noqa: F821
    from layerlens.share import push

    smk = snakemake  # noqa: F821
    push(smk.input[0], smk.wildcards.built_variant, smk.output[0], namespace=smk.params.namespace,
         private=smk.params.private)
