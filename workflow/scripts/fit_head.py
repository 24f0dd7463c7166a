"""Rule fit_head: a fresh MLM head on the last layer of a frozen encoder -> resources/heads/{fit_base}/{decoder}/."""
import os
import sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, ".."))  # noqa: F821  (the layerlens package)
from layerlens.runtime import job  # noqa: E402

with job(snakemake, announce=f"fitting a masked-LM head on {snakemake.wildcards.fit_base}'s last layer"):  # noqa: F821
    from layerlens.head import fit_head_to_dir

    smk = snakemake  # noqa: F821
    fit_head_to_dir(smk.input.model, dict(zip(smk.params.tasks, smk.input.glue)), smk.input.probe_sentences,
                    smk.output[0], settings=smk.params.fit, model_name=smk.wildcards.fit_base,
                    tie_decoder=smk.wildcards.decoder == "tied")
