# Stage 3: the layer probe. Every hidden layer of every model through the model's own MLM head; and, for each
# variant, how much its final outputs differ from its base's.


rule probe_sentences:
    input:
        glue=expand("resources/glue/{task}", task=TASKS),
    output:
        "results/probe/sentences.tsv",
    params:
        tasks=TASKS,
        n=config["probe"]["sentences"],
    log:
        "results/logs/probe/sentences.log",
    benchmark:
        "results/benchmarks/probe/sentences.tsv"
    conda:
        TORCH_ENV
    script:
        "../scripts/probe_sentences.py"


rule probe:
    input:
        model=lambda wc: probe_input(wc.model),
        sentences="results/probe/sentences.tsv",
    output:
        csv="results/probe/{model}.csv",
        png=report(
            "results/probe/{model}.png",
            caption="../report/probe_model.rst",
            category="1. Layer probe",
            subcategory="per model",
            labels={"model": "{model}", "figure": "per-layer probe"},
        ),
    params:
        probe=config["probe"],
        variant=lambda wc: virtual_spec(wc.model),
        base=lambda wc: base_of(wc.model),
    log:
        "results/logs/probe/{model}.log",
    benchmark:
        "results/benchmarks/probe/{model}.tsv"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        TORCH_ENV
    script:
        "../scripts/probe.py"


rule output_change:
    input:
        base=lambda wc: model_dir(base_of(wc.variant)),
        variant=lambda wc: [model_dir(wc.variant)] if llconfig.is_materialized(config, wc.variant) else [],
        sentences="results/probe/sentences.tsv",
    output:
        "results/probe/change/{variant}.csv",
    params:
        probe=config["probe"],
        variant=lambda wc: virtual_spec(wc.variant),
        base=lambda wc: base_of(wc.variant),
    log:
        "results/logs/probe/change_{variant}.log",
    benchmark:
        "results/benchmarks/probe/change_{variant}.tsv"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        TORCH_ENV
    script:
        "../scripts/output_change.py"
