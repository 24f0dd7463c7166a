# Stage 4: GLUE fine-tuning, one job per model x task x seed.


rule tokenize:
    input:
        glue="resources/glue/{task}",
        tokenizer=lambda wc: model_dir(wc.base),
    output:
        directory("resources/tokenized/{base}/{task}-len{max_length}"),
    log:
        "results/logs/tokenize/{base}_{task}_len{max_length}.log",
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        TORCH_ENV
    script:
        "../scripts/tokenize_task.py"


rule finetune:
    input:
        model=lambda wc: model_dir(wc.model),
        data=lambda wc: tokenized_dir(wc.model, wc.task),
    output:
        metrics="results/finetune/{model}/{task}/seed{seed}/metrics.json",
        predictions="results/finetune/{model}/{task}/seed{seed}/predictions.tsv",
    params:
        hp=lambda wc: finetune_params(wc.task),
    log:
        "results/logs/finetune/{model}/{task}/seed{seed}.log",
    benchmark:
        "results/benchmarks/finetune/{model}/{task}/seed{seed}.tsv"
    threads: 2
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=240,
    conda:
        TORCH_ENV
    script:
        "../scripts/finetune.py"
