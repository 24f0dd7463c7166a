# Stage 4: GLUE fine-tuning, one job per model x task x seed (bases, fine-tuned variants and their controls).


rule tokenize:
    input:
        glue="resources/glue/{task}",
        tokenizer=lambda wc: model_dir(wc.base),
    output:
        directory("resources/tokenized/{base}/{task}-len{max_length}"),
    log:
        "results/logs/tokenize/{base}_{task}_len{max_length}.log",
    benchmark:
        "results/benchmarks/tokenize/{base}_{task}_len{max_length}.tsv"
    conda:
        TORCH_ENV
    resources:
        mem_mb=4000,
        runtime=30,
    script:
        "../scripts/tokenize_task.py"


rule finetune:
    input:
        model=lambda wc: model_dir(grid.weights_of(config, wc.finetuned)),
        data=lambda wc: tokenized_dir(wc.finetuned, wc.task),
    output:
        metrics="results/finetune/{finetuned}/{task}/seed{seed}/metrics.json",
        predictions="results/finetune/{finetuned}/{task}/seed{seed}/predictions.tsv",
    log:
        "results/logs/finetune/{finetuned}/{task}/seed{seed}.log",
    benchmark:
        "results/benchmarks/finetune/{finetuned}/{task}/seed{seed}.tsv"
    conda:
        TORCH_ENV
    threads: 2
    resources:
        gpu=GPUS,  # 1; LAYERLENS_GPUS=0 where there are none
        mem_mb=16000,
        runtime=240,
    params:
        hp=lambda wc: run_params(wc.finetuned, wc.task),
        tracking_dir="results/tensorboard/{finetuned}/{task}/seed{seed}",  # finetune.report_to: tensorboard
    script:
        "../scripts/finetune.py"
