# Stage 5: aggregation into report tables and figures.


rule report_probe:
    input:
        expand("results/probe/{model}.csv", model=MODELS),
    output:
        csv=report("results/report/probe.csv", caption="../report/probe_table.rst", category="1. Layer probe",
                   labels={"table": "all models x layers (CSV)"}),
        md="results/report/probe.md",
    log:
        "results/logs/report/probe.log",
    conda:
        REPORT_ENV
    script:
        "../scripts/report_probe.py"


rule probe_family_figure:
    input:
        lambda wc: expand("results/probe/{model}.csv", model=[wc.base] + llconfig.variants_of(config, wc.base)),
    output:
        report("results/report/probe_{base}.png", caption="../report/probe_family.rst", category="1. Layer probe",
               labels={"figure": "base and variants", "base": "{base}"}),
    params:
        variants=lambda wc: llconfig.variants_of(config, wc.base),
    log:
        "results/logs/report/probe_{base}.log",
    conda:
        REPORT_ENV
    script:
        "../scripts/probe_family_figure.py"


rule report_glue:
    input:
        expand("results/finetune/{model}/{task}/seed{seed}/metrics.json", model=MODELS, task=TASKS, seed=SEEDS),
    output:
        csv=report("results/report/glue.csv", caption="../report/glue_table.rst", category="2. GLUE",
                   labels={"table": "scores and deltas (CSV)"}),
        md="results/report/glue.md",
        deltas=report("results/report/glue_deltas.png", caption="../report/glue_deltas.rst", category="2. GLUE",
                      labels={"figure": "variant - base per task"}),
    params:
        bases={m: base_of(m) for m in MODELS},
        tasks=TASKS,
    log:
        "results/logs/report/glue.log",
    conda:
        REPORT_ENV
    script:
        "../scripts/report_glue.py"
