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
    # text held apart from the probe's sentences. Variants reuse their base's head.
    input:
        model=lambda wc: model_dir(wc.fit_base),
        glue=expand("resources/glue/{task}", task=llconfig.fit_tasks(config)),
        probe_sentences="results/probe/sentences.tsv",
    output:
        directory("resources/heads/{fit_base}"),
    log:
        "results/logs/probe/fit_head_{fit_base}.log",
    benchmark:
        "results/benchmarks/probe/fit_head_{fit_base}.tsv"
    conda:
        TORCH_ENV
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        fit=config["probe"]["fit"],
        tasks=llconfig.fit_tasks(config),
    script:
        "../scripts/fit_head.py"


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
        probe={k: v for k, v in config["probe"].items() if k != "fit"},  # fit settings change the head, not this
        variant=lambda wc: virtual_spec(wc.model),
        base=lambda wc: base_of(wc.model),
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
        probe={k: v for k, v in config["probe"].items() if k != "fit"},
        variant=lambda wc: virtual_spec(wc.variant),
        base=lambda wc: base_of(wc.variant),
    script:
        "../scripts/output_change.py"
