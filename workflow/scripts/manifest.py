"""Rule manifest: every download's manifest in resources/manifest.json."""
import os
import sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, ".."))  # noqa: F821  (the layerlens package)
from layerlens.runtime import job  # noqa: E402

with job(snakemake):  # noqa: F821
    from pathlib import Path

    from layerlens.manifest import MANIFEST, merge

    folders = list(snakemake.input.models) + list(snakemake.input.glue)  # noqa: F821
    merge([Path(f) / MANIFEST for f in folders], snakemake.output[0])  # noqa: F821
