"""Rule probe_sentences: the first N sentences of the configured tasks' dev sets."""
import os
import sys

sys.path.insert(0, os.path.join(snakemake.scriptdir, ".."))  # noqa: F821  (the layerlens package)
from layerlens.runtime import job  # noqa: E402

with job(snakemake):  # noqa: F821
    from layerlens.sentences import write_sentences

    p = snakemake.params  # noqa: F821
    write_sentences(dict(zip(p.tasks, snakemake.input.glue)), p.n, snakemake.output[0])  # noqa: F821
