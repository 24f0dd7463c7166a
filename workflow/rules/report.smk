# Stage 5: aggregation into report tables (CSV, Markdown, LaTeX) and figures (PNG, PDF).
# `snakemake --report report.html` collects everything flagged with report() below, with its caption.


rule report_probe:
    input:
        expand("results/probe/{model}.csv", model=MODELS),
    output:
        csv=report(
            "results/report/probe.csv",
            caption="../report/probe_table.rst",
            category="1. Layer probe",
            subcategory="tables",
            labels={"table": "all models x layers (CSV)"},
        ),
        md="results/report/probe.md",
        html=report(
            "results/report/probe.html",
            caption="../report/probe_table.rst",
            category="1. Layer probe",
            subcategory="tables",
            labels={"table": "all models x layers (HTML)"},
        ),
        tex="results/report/probe.tex",
    log:
        "results/logs/report/probe.log",
    benchmark:
        "results/benchmarks/report/probe.tsv"
    conda:
        REPORT_ENV
    script:
        "../scripts/report_probe.py"


rule probe_family_figure:
    input:
        lambda wc: expand("results/probe/{model}.csv", model=[wc.base] + grid.variants_of(config, wc.base)),
    output:
        png=report(
            "results/report/probe_{base}.png",
            caption="../report/probe_family.rst",
            category="1. Layer probe",
            subcategory="figures",
            labels={"figure": "base and variants", "base": "{base}"},
        ),
        pdf="results/report/probe_{base}.pdf",
    log:
        "results/logs/report/probe_{base}.log",
    benchmark:
        "results/benchmarks/report/probe_{base}.tsv"
    conda:
        REPORT_ENV
    params:
        variants=lambda wc: grid.variants_of(config, wc.base),
    script:
        "../scripts/probe_family_figure.py"


rule report_similarity:
    input:
        expand("results/similarity/{base}.csv", base=BASES),
    output:
        csv=report(
            "results/report/similarity.csv",
            caption="../report/similarity_table.rst",
            category="5. Layer similarity",
            labels={"table": "pairs of hidden states"},
        ),
        md="results/report/similarity.md",
        tex="results/report/similarity.tex",
    log:
        "results/logs/report/similarity.log",
    benchmark:
        "results/benchmarks/report/similarity.tsv"
    conda:
        REPORT_ENV
    script:
        "../scripts/report_similarity.py"


rule similarity_figure:
    input:
        "results/similarity/{base}.csv",
    output:
        png=report(
            "results/report/similarity_{base}.png",
            caption="../report/similarity_figure.rst",
            category="5. Layer similarity",
            labels={"figure": "CKA and angular distance", "base": "{base}"},
        ),
        pdf="results/report/similarity_{base}.pdf",
    log:
        "results/logs/report/similarity_{base}.log",
    benchmark:
        "results/benchmarks/report/similarity_{base}.tsv"
    conda:
        REPORT_ENV
    script:
        "../scripts/similarity_figure.py"


rule report_variants:
    input:
        selected=expand("results/similarity/selected/{selected}.json", selected=SELECTED),
        bases=[model_dir(b) for b in VARIANT_BASES],
    output:
        csv=report(
            "results/report/variants.csv",
            caption="../report/variants.rst",
            category="6. Variants",
            labels={"table": "layer maps and identical variants"},
        ),
        md="results/report/variants.md",
        tex="results/report/variants.tex",
    log:
        "results/logs/report/variants.log",
    benchmark:
        "results/benchmarks/report/variants.tsv"
    conda:
        REPORT_ENV
    params:
        variants=config["variants"],  # every variant, those identical to another included (same_as)
        base_dirs={b: model_dir(b) for b in VARIANT_BASES},
    script:
        "../scripts/report_variants.py"


rule report_output_change:
    input:
        expand("results/probe/change/{variant}.csv", variant=VARIANTS),
    output:
        csv=report(
            "results/report/output_change.csv",
            caption="../report/output_change_table.rst",
            category="2. Output change",
            labels={"table": "variant vs base (CSV)"},
        ),
        md="results/report/output_change.md",
        html=report(
            "results/report/output_change.html",
            caption="../report/output_change_table.rst",
            category="2. Output change",
            labels={"table": "variant vs base (HTML)"},
        ),
        tex="results/report/output_change.tex",
        png=report(
            "results/report/output_change.png",
            caption="../report/output_change.rst",
            category="2. Output change",
            labels={"figure": "against the layer touched"},
        ),
        pdf="results/report/output_change.pdf",
    log:
        "results/logs/report/output_change.log",
    benchmark:
        "results/benchmarks/report/output_change.tsv"
    conda:
        REPORT_ENV
    script:
        "../scripts/report_output_change.py"


rule runs_table:
    # the tidy table of every fine-tuning run: what the GLUE tables, tests and cost below are computed from
    input:
        metrics=cells("results/finetune/{finetuned}/{task}/seed{seed}/metrics.json"),
        benchmarks=cells("results/benchmarks/finetune/{finetuned}/{task}/seed{seed}.tsv"),
    output:
        parquet="results/report/runs.parquet",
        csv=report(
            "results/report/runs.csv",
            caption="../report/runs.rst",
            category="3. GLUE",
            subcategory="tables",
            labels={"table": "every run: model x task x seed (CSV)"},
        ),
    log:
        "results/logs/report/runs.log",
    benchmark:
        "results/benchmarks/report/runs.tsv"
    conda:
        REPORT_ENV
    script:
        "../scripts/runs_table.py"


rule report_glue:
    input:
        runs=rules.runs_table.output.parquet,
        predictions=cells("results/finetune/{finetuned}/{task}/seed{seed}/predictions.tsv"),
    output:
        csv=report(
            "results/report/glue.csv",
            caption="../report/glue_table.rst",
            category="3. GLUE",
            subcategory="tables",
            labels={"table": "scores: mean, sd, CI over seeds (CSV)"},
        ),
        md="results/report/glue.md",
        html=report(
            "results/report/glue.html",
            caption="../report/glue_table.rst",
            category="3. GLUE",
            subcategory="tables",
            labels={"table": "scores and variant vs base tests (HTML)"},
        ),
        tex="results/report/glue.tex",
        significance=report(
            "results/report/significance.csv",
            caption="../report/significance.rst",
            category="3. GLUE",
            subcategory="tables",
            labels={"table": "variant vs base: tests (CSV)"},
        ),
        deltas=report(
            "results/report/glue_deltas.png",
            caption="../report/glue_deltas.rst",
            category="3. GLUE",
            subcategory="figures",
            labels={"figure": "variant - base per task"},
        ),
        deltas_pdf="results/report/glue_deltas.pdf",
        cost=report(
            "results/report/cost.csv",
            caption="../report/cost.rst",
            category="4. Cost",
            labels={"table": "per model x task (CSV)"},
        ),
        cost_md="results/report/cost.md",
        cost_html=report(
            "results/report/cost.html",
            caption="../report/cost.rst",
            category="4. Cost",
            labels={"table": "per model x task (HTML)"},
        ),
    log:
        "results/logs/report/glue.log",
    benchmark:
        "results/benchmarks/report/glue.tsv"
    conda:
        REPORT_ENV
    params:
        bases={m: grid.reference_of(config, m) for m in FINETUNED},
        comparisons=grid.comparisons(config),
        tasks=TASKS,
        statistics=config["statistics"],
    script:
        "../scripts/report_glue.py"


rule report_expected_max:
    input:
        metrics=cells("results/finetune/{finetuned}/{task}/seed{seed}/metrics.json"),
    output:
        csv=report(
            "results/report/expected_max.csv",
            caption="../report/expected_max.rst",
            category="3. GLUE",
            subcategory="tables",
            labels={"table": "mean, median, expected max over seeds"},
        ),
        md="results/report/expected_max.md",
        tex="results/report/expected_max.tex",
        png=report(
            "results/report/expected_max.png",
            caption="../report/expected_max.rst",
            category="3. GLUE",
            subcategory="figures",
            labels={"figure": "expected max over k seeds"},
        ),
        pdf="results/report/expected_max.pdf",
    log:
        "results/logs/report/expected_max.log",
    benchmark:
        "results/benchmarks/report/expected_max.tsv"
    conda:
        REPORT_ENV
    params:
        models=FINETUNED,
        tasks=TASKS,
    script:
        "../scripts/report_expected_max.py"
