# Stage 1: download. Local rules: login nodes have the internet, compute nodes often do not.


rule download_model:
    output:
        directory("resources/models/{base}"),
    params:
        source=lambda wc: config["models"][wc.base]["source"],
        revision=lambda wc: config["models"][wc.base]["revision"],
    log:
        "results/logs/download/model_{base}.log",
    localrule: True
    conda:
        TORCH_ENV
    script:
        "../scripts/download_model.py"


def glue_tsv_inputs(wildcards):
    if config["glue"]["source"] != "tsv":
        return []
    root = Path(config["glue"]["dir"])
    return [str(root / rel) for rel in llconfig.TSV_FILES[wildcards.task].values()]


rule download_glue:
    input:
        glue_tsv_inputs,
    output:
        directory("resources/glue/{task}"),
    params:
        source=config["glue"]["source"],
        tsv_dir=config["glue"]["dir"],
        revision=config["glue"]["revision"],
    log:
        "results/logs/download/glue_{task}.log",
    localrule: True
    conda:
        TORCH_ENV
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
