"""layerlens: the library behind the Snakemake pipeline.

One module per pipeline stage:

- :mod:`layerlens.config`    load, validate and expand the workflow config
- :mod:`layerlens.tasks`     GLUE task specs (the one definition of each task)
- :mod:`layerlens.metrics`   GLUE metrics, one split at a time and batched for the bootstrap
- :mod:`layerlens.grid`      the models, tasks and settings a validated config describes
- :mod:`layerlens.download`  models and GLUE into ``resources/``, with a manifest
- :mod:`layerlens.layermap`  deeper / shallower variants by copying layers
- :mod:`layerlens.sweeps`    families of variants from one config entry: depth, layer order, chosen by similarity
- :mod:`layerlens.dedup`     variants that are the same model as another, run once
- :mod:`layerlens.sentences` the probe's sentences and a fitted head's held-apart text
- :mod:`layerlens.forward`   a masked-LM model's hidden states at the input tokens, batch by batch
- :mod:`layerlens.probe`     every hidden layer through the masked-LM head
- :mod:`layerlens.similarity` layer similarity (cosine, Block Influence, angular distance, linear CKA), same pass
- :mod:`layerlens.head`      a fitted masked-LM head, for encoders that publish none
- :mod:`layerlens.output_change` a variant's final outputs against its base's
- :mod:`layerlens.finetune`  GLUE fine-tuning with the HF Trainer
- :mod:`layerlens.stats`     seed and bootstrap statistics
- :mod:`layerlens.report`    tables and figures (a package: one module per table or figure family)

Everything that differs between model families lives in :mod:`layerlens.families`.
"""

__version__ = "0.1.0"
