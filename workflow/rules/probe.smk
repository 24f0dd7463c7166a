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


rule fit_head:
    # Only for models with `probe: {head: fit}`: a fresh MLM head on the last layer, encoder frozen, on train-split
    # text held apart from the probe's sentences. Variants reuse their base's head.
    input:
        model=lambda wc: model_dir(wc.fit_base),
        glue=expand("resources/glue/{task}", task=llconfig.fit_tasks(config)),
        probe_sentences="results/probe/sentences.tsv",
    output:
        directory("resources/heads/{fit_base}"),
    params:
        fit=config["probe"]["fit"],
        tasks=llconfig.fit_tasks(config),
    log:
        "results/logs/probe/fit_head_{fit_base}.log",
    benchmark:
        "results/benchmarks/probe/fit_head_{fit_base}.tsv"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        TORCH_ENV
    script:
        "../scripts/fit_head.py"


def probe_inputs(wildcards):
    inputs = {"model": model_dir(wildcards.model), "sentences": "results/probe/sentences.tsv"}
    if head_dir(wildcards.model):
        inputs["head"] = head_dir(wildcards.model)
    return inputs


rule probe:
    input:
        unpack(probe_inputs),
    output:
        csv="results/probe/{model}.csv",
        png=report(
            "results/probe/{model}.png",
            caption="../report/probe_model.rst",
            category="1. Layer probe",
            labels={"model": "{model}", "figure": "per-layer probe"},
        ),
    params:
        probe={k: v for k, v in config["probe"].items() if k != "fit"},  # fit settings change the head, not this
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
