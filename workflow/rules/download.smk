# Stage 1: download. Local rules: login nodes have the internet, compute nodes often do not.


rule download_model:
    output:
        directory("resources/models/{base}"),
    log:
        "results/logs/download/model_{base}.log",
    localrule: True
    conda:
        TORCH_ENV
    params:
        source=lambda wc: config["models"][wc.base]["source"],
        revision=lambda wc: config["models"][wc.base]["revision"],
        hub_id=lambda wc: config["models"][wc.base].get("hub_id"),
    script:
        "../scripts/download_model.py"


rule download_glue:
    input:
        glue_tsv_inputs,
    output:
        directory("resources/glue/{task}"),
    log:
        "results/logs/download/glue_{task}.log",
    localrule: True
    conda:
        TORCH_ENV
    params:
        source=config["glue"]["source"],
        tsv_dir=config["glue"]["dir"],
        revision=config["glue"]["revision"],
    script:
        "../scripts/download_glue.py"


rule manifest:
    input:
        models=expand("resources/models/{base}", base=BASES),
        glue=expand("resources/glue/{task}", task=GLUE_TASKS),
    output:
        "resources/manifest.json",
    log:
        "results/logs/download/manifest.log",
    localrule: True
    conda:
        TORCH_ENV
    script:
        "../scripts/manifest.py"
