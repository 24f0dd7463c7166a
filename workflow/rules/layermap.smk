# Stage 2: duplicate-model construction. Each variant copies layers of its base; no training.
# Only fine-tuned variants are written to disk; probe-only variants are built in memory when probed.


rule build_variant:
    input:
        base=lambda wc: model_dir(base_of(wc.built_variant)),
    output:
        directory("resources/models/{built_variant}"),
    log:
        "results/logs/layermap/{built_variant}.log",
    benchmark:
        "results/benchmarks/layermap/{built_variant}.tsv"
    conda:
        TORCH_ENV
    resources:
        mem_mb=8000,
        runtime=20,
    params:
        spec=lambda wc: config["variants"][wc.built_variant],
        base=lambda wc: base_of(wc.built_variant),
    script:
        "../scripts/build_variant.py"
