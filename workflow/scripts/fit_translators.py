"""Rule fit_translators: per-layer affine translators of a base model -> resources/translators/{translator_base}/."""
import os
import sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, ".."))  # noqa: F821  (the layerlens package)
from layerlens.runtime import job  # noqa: E402

with job(snakemake):  # noqa: F821
    from layerlens.probe import modes_of
    from layerlens.translators import fit_translators_to_dir

    smk = snakemake  # noqa: F821
    # the fitted heads' folders; None for the model's own (pretrained) head
    heads = {name: smk.input.get(name.replace("-", "_")) for name in smk.params.heads}
    fit_translators_to_dir(smk.input.model, dict(zip(smk.params.tasks, smk.input.glue)), smk.input.probe_sentences,
                           smk.output[0], heads=heads, settings=smk.params.settings,
                           modes=modes_of({"mode": smk.params.modes}), masking=smk.params.masking,
                           model_name=smk.wildcards.translator_base)
