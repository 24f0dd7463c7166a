"""Rule download_model: a Hub snapshot (safetensors only) or a local folder -> resources/models/{base}/."""
import os
import sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, ".."))  # noqa: F821  (the layerlens package)
from layerlens.runtime import job  # noqa: E402

with job(snakemake, offline=False):  # noqa: F821
    from layerlens.download import fetch_model

    smk = snakemake  # noqa: F821
    fetch_model(smk.params.source, smk.params.revision, smk.output[0], name=smk.wildcards.base,
                hub_id=smk.params.hub_id)
