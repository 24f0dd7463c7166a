# Stage 2: duplicate-model construction. Each variant copies layers of its base; no training.
# Only fine-tuned variants are written to disk; probe-only variants are built in memory when probed.
# Variants identical to another model (`same_as`, set by the config check) are not built again.


rule select_layers:
    # Variants whose layers are chosen by similarity (`select`): the choice is made once, from the base's
    # similarity table (written by the base's probe job), and read by every job that builds, probes or compares
    # the variant. A few seconds on the submitting machine.
    input:
        similarity=lambda wc: f"results/similarity/{base_of(wc.selected)}.csv",
        base=lambda wc: model_dir(base_of(wc.selected)),
    output:
        "results/similarity/selected/{selected}.json",
    log:
        "results/logs/layermap/select_{selected}.log",
    localrule: True
    conda:
        REPORT_ENV
    params:
        select=lambda wc: config["variants"][wc.selected]["select"],
        base=lambda wc: base_of(wc.selected),
    script:
        "../scripts/select_layers.py"


rule build_variant:
    input:
        unpack(build_variant_inputs),
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
        aliases=lambda wc: [v for v in config["variants"] if grid.same_as(config, v) == wc.built_variant],
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
