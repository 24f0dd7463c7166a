# layerlens: Kao et al., "BERT's output layer recognizes all hidden layers?" (arXiv:2001.09309), as one DAG:
#   download -> layer maps (deeper / shallower variants) -> layer probe -> GLUE fine-tuning -> report
# Run:  snakemake --cores all            (config.yaml)
#       snakemake --cores all --configfile my.yaml
# The config is validated (workflow/schemas/config.schema.yaml) before any job is planned.

from pathlib import Path

if not workflow.overwrite_configfiles:
    import yaml

    _default = Path(workflow.basedir) / "config.yaml"
    try:
        yaml.safe_load(_default.read_text())
    except yaml.YAMLError as e:  # Snakemake's own message names neither the file nor the line
        raise WorkflowError(f"invalid configuration: {_default}: malformed YAML: {e}")
    workflow.configfile(str(_default))


include: "workflow/rules/common.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/layermap.smk"
include: "workflow/rules/probe.smk"
include: "workflow/rules/finetune.smk"
include: "workflow/rules/report.smk"


rule all:
    default_target: True
    input:
        "resources/manifest.json",
        rules.report_probe.output,
        expand("results/report/probe_{base}.{ext}", base=BASES, ext=["png", "pdf"]),
        rules.report_output_change.output if VARIANTS else [],
        rules.report_glue.output,
