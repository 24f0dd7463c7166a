"""layerlens: the library behind the Snakemake pipeline.

One module per pipeline stage:

- :mod:`layerlens.config`    load, validate and expand the workflow config
- :mod:`layerlens.tasks`     GLUE task specs (the one definition of each task)
- :mod:`layerlens.metrics`   GLUE metrics, one split at a time and batched for the bootstrap
- :mod:`layerlens.grid`      the models, tasks and settings a validated config describes
- :mod:`layerlens.sources`   where a model comes from: Hub id, local folder, or a folder in an installed package
- :mod:`layerlens.download`  models and GLUE into ``resources/``, with a manifest
- :mod:`layerlens.layermap`  deeper / shallower variants by copying layers
- :mod:`layerlens.sweeps`    families of variants from one config entry: depth, layer order, chosen by similarity
- :mod:`layerlens.dedup`     variants that are the same model as another, run once
- :mod:`layerlens.sentences` the probe's sentences and a fitted head's held-apart text
- :mod:`layerlens.masking`   which positions the probe's masked mode hides, and BERT's corruption
- :mod:`layerlens.forward`   a masked-LM model's hidden states at the scored tokens, batch by batch
- :mod:`layerlens.lens_metrics` per-layer metrics of a reading (top-k, cross-entropy, entropy, rank, ECE, KL)
- :mod:`layerlens.probe`     every hidden layer through the masked-LM head, in both modes, beside its controls
- :mod:`layerlens.similarity` layer similarity (cosine, Block Influence, angular distance, linear CKA), same pass
- :mod:`layerlens.head`      a fitted masked-LM head (decoder tied or untied), for encoders that publish none
- :mod:`layerlens.translators` per-layer affine translators before the head (a tuned lens for encoders)
- :mod:`layerlens.output_change` a variant's final outputs against its base's
- :mod:`layerlens.finetune`  GLUE fine-tuning with the HF Trainer
- :mod:`layerlens.recipes`   named fine-tuning recipes (``finetune.preset``: run_glue, stable)
- :mod:`layerlens.selection` model selection on a held-out slice of the training split
- :mod:`layerlens.controls`  compute-matched, random-layer and frozen-encoder controls of a variant
- :mod:`layerlens.flops`     training FLOPs from model shapes, as the Trainer counts them
- :mod:`layerlens.tracking`  optional experiment tracking (``finetune.report_to``)
- :mod:`layerlens.provenance` library versions and the workflow's commit, recorded with every result
- :mod:`layerlens.share`     a built variant's model card, and its optional push to the Hub
- :mod:`layerlens.stats`     seed and bootstrap statistics, and power for planning
- :mod:`layerlens.design`    the design check: can the configured seeds answer the config's tests?
- :mod:`layerlens.report`    tables and figures (a package: one module per table or figure family)
- :mod:`layerlens.cluster`   pre-flight of a SLURM run against the cluster's partitions

Everything that differs between model families lives in :mod:`layerlens.families`.
"""

__version__ = "0.1.0"
