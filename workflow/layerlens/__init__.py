"""layerlens: the library behind the Snakemake pipeline.

One module per pipeline stage:

- :mod:`layerlens.config`    load, validate and expand the workflow config
- :mod:`layerlens.tasks`     GLUE task specs and their metrics
- :mod:`layerlens.download`  models and GLUE into ``resources/``, with a manifest
- :mod:`layerlens.layermap`  deeper / shallower variants by copying layers
- :mod:`layerlens.probe`     every hidden layer through the masked-LM head
- :mod:`layerlens.finetune`  GLUE fine-tuning with the HF Trainer
- :mod:`layerlens.stats`     seed statistics
- :mod:`layerlens.report`    tables and figures
- :mod:`layerlens.cluster`   pre-flight of a SLURM run against the cluster's partitions

Everything that differs between model families lives in :mod:`layerlens.families`.
"""

__version__ = "0.1.0"
