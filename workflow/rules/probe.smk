# Stage 3: the layer probe. Every hidden layer of every model through the model's own MLM head.


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
    conda:
        TORCH_ENV
    script:
        "../scripts/probe_sentences.py"


rule probe:
    input:
        model=lambda wc: model_dir(wc.model),
        sentences="results/probe/sentences.tsv",
    output:
        csv="results/probe/{model}.csv",
        png=report(
            "results/probe/{model}.png",
            caption="../report/probe_model.rst",
            category="1. Layer probe",
            labels={"model": "{model}", "figure": "per-layer probe"},
        ),
    params:
        probe=config["probe"],
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
