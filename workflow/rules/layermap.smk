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


rule build_random_control:
    input:
        base=lambda wc: model_dir(base_of(wc.random_control)),
    output:
        directory("resources/models/{random_control}"),
    log:
        "results/logs/layermap/{random_control}.log",
    benchmark:
        "results/benchmarks/layermap/{random_control}.tsv"
    conda:
        TORCH_ENV
    resources:
        mem_mb=8000,
        runtime=20,
    params:
        variant=lambda wc: grid.controls(config)[wc.random_control]["of"],
        spec=lambda wc: grid.layer_spec(config, grid.controls(config)[wc.random_control]["of"]),
        base=lambda wc: base_of(wc.random_control),
        seed=config["controls"]["init_seed"],
    script:
        "../scripts/build_random_control.py"
