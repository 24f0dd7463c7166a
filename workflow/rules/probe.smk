# Stage 3: the layer probe. Every hidden layer of every model through the model's own MLM head; and, for each
# variant, how much its final outputs differ from its base's.


rule probe_sentences:
    input:
        glue=expand("resources/glue/{task}", task=TASKS),
    output:
        "results/probe/sentences.tsv",
    log:
        "results/logs/probe/sentences.log",
    benchmark:
        "results/benchmarks/probe/sentences.tsv"
    conda:
        TORCH_ENV
    params:
        tasks=TASKS,
        n=config["probe"]["sentences"],
    script:
        "../scripts/probe_sentences.py"


rule fit_head:
    # Only for models with `probe: {head: fit}`: a fresh MLM head on the last layer, encoder frozen, on train-split
    # text held apart from the probe's sentences; decoder tied or untied (`probe.fit.tie_decoder`: one or both).
    # Variants reuse their base's heads.
    input:
        model=lambda wc: model_dir(wc.fit_base),
        glue=expand("resources/glue/{task}", task=grid.fit_tasks(config)),
        probe_sentences="results/probe/sentences.tsv",
    output:
        directory("resources/heads/{fit_base}/{decoder}"),
    log:
        "results/logs/probe/fit_head_{fit_base}_{decoder}.log",
    benchmark:
        "results/benchmarks/probe/fit_head_{fit_base}_{decoder}.tsv"
    conda:
        TORCH_ENV
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        fit={k: v for k, v in config["probe"]["fit"].items() if k != "tie_decoder"},  # the wildcard says which
        tasks=grid.fit_tasks(config),
    script:
        "../scripts/fit_head.py"


rule fit_translators:
    # Only with `probe.translators.enabled`: per-layer affine translators of a base model (a tuned lens), one set
    # per head it is probed with and per probe mode; encoder and head frozen; train-split text of probe.fit.tasks
    # held apart from the probe's sentences. Variants are read without translators.
    input:
        unpack(translator_heads),
        model=lambda wc: model_dir(wc.translator_base),
        glue=expand("resources/glue/{task}", task=grid.fit_tasks(config)),
        probe_sentences="results/probe/sentences.tsv",
    output:
        directory("resources/translators/{translator_base}"),
    log:
        "results/logs/probe/fit_translators_{translator_base}.log",
    benchmark:
        "results/benchmarks/probe/fit_translators_{translator_base}.tsv"
    conda:
        TORCH_ENV
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        settings=config["probe"]["translators"],
        heads=lambda wc: grid.head_names(config, wc.translator_base),
        modes=config["probe"]["mode"],
        masking=config["probe"]["masking"],
        tasks=grid.fit_tasks(config),
    script:
        "../scripts/fit_translators.py"


rule probe:
    input:
        unpack(probe_inputs),
    output:
        csv="results/probe/{model}.csv",
        png=report(
            "results/probe/{model}.png",
            caption="../report/probe_model.rst",
            category="1. Layer probe",
            subcategory="per model",
            labels={"model": "{model}", "figure": "per-layer probe"},
        ),
        similarity="results/similarity/{model}.csv",  # from the same forward pass (layerlens.similarity)
    log:
        "results/logs/probe/{model}.log",
    benchmark:
        "results/benchmarks/probe/{model}.tsv"
    conda:
        TORCH_ENV
    threads: 2
    resources:
        gpu=GPUS,
        mem_mb=8000,
        runtime=60,
    params:
        # fit and translator settings change the heads and translators (inputs), not this
        probe={k: v for k, v in config["probe"].items() if k not in ("fit", "translators")},
        seed=config["statistics"]["seed"],  # of the bootstrap over examples
        variant=lambda wc: virtual_spec(wc.model),
        base=lambda wc: base_of(wc.model),
        heads=lambda wc: list(head_dirs(wc.model)),  # fitted heads' input names; none for a pretrained head
        similarity=config["similarity"],
    script:
        "../scripts/probe.py"


rule output_change:
    input:
        unpack(output_change_inputs),
    output:
        "results/probe/change/{variant}.csv",
    log:
        "results/logs/probe/change_{variant}.log",
    benchmark:
        "results/benchmarks/probe/change_{variant}.tsv"
    conda:
        TORCH_ENV
    threads: 2
    resources:
        gpu=GPUS,
        mem_mb=8000,
        runtime=60,
    params:
        probe={k: v for k, v in config["probe"].items() if k not in ("fit", "translators", "mode", "masking")},
        seed=config["statistics"]["seed"],
        variant=lambda wc: virtual_spec(wc.variant),
        base=lambda wc: base_of(wc.variant),
    script:
        "../scripts/output_change.py"
