# Stage 2: duplicate-model construction. Each variant copies layers of its base; no training.


rule build_variant:
    input:
        base=lambda wc: model_dir(base_of(wc.variant)),
    output:
        directory("resources/models/{variant}"),
    params:
        spec=lambda wc: config["variants"][wc.variant],
        base=lambda wc: base_of(wc.variant),
    log:
        "results/logs/layermap/{variant}.log",
    benchmark:
        "results/benchmarks/layermap/{variant}.tsv"
    resources:
        mem_mb=8000,
        runtime=20,
    conda:
        TORCH_ENV
    script:
        "../scripts/build_variant.py"
