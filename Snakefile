# layerlens: Kao et al., "BERT's output layer recognizes all hidden layers?" (arXiv:2001.09309), as one DAG:
#   download -> layer maps (deeper / shallower variants) -> layer probe -> GLUE fine-tuning -> report
# Run:  snakemake --cores all            (config.yaml)
#       snakemake --cores all --configfile my.yaml
# The config is validated (workflow/schemas/config.schema.yaml) before any job is planned.

import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "workflow"))  # the layerlens package

from layerlens.config import check_yaml  # noqa: E402
from layerlens.errors import LayerLensError  # noqa: E402

DEFAULT_CONFIG = Path(workflow.basedir) / "config.yaml"
try:
    check_yaml(DEFAULT_CONFIG)  # Snakemake's own message names neither the file nor the line
except LayerLensError as e:
    raise WorkflowError(f"invalid configuration: {e}") from None

# A job of a SLURM run is handed the main process's `--configfiles`, but not its `--replace-workflow-config`
# (Snakemake 9.27 passes no such flag to the jobs it spawns), so it would merge config.yaml back in and plan
# another DAG. Such a job skips config.yaml: it sees exactly the config the main process planned with.
SPAWNED_WITH_CONFIGFILE = bool(workflow.overwrite_configfiles) and (workflow.remote_exec or workflow.subprocess_exec)

if not SPAWNED_WITH_CONFIGFILE:

    configfile: DEFAULT_CONFIG


include: "workflow/rules/common.smk"
include: "workflow/rules/download.smk"
include: "workflow/rules/layermap.smk"
include: "workflow/rules/probe.smk"
include: "workflow/rules/finetune.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/share.smk"


onstart:
    # Once per run, on the main process (jobs run with --no-hooks and never get here); one handler only, since
    # Snakemake keeps just the last `onstart` it reads.
    # 1. the design check: what the configured seeds and test family can detect (layerlens/design.py)
    # 2. SLURM runs only (other executors return at once): every job of the planned DAG against the nodes of its
    #    partition, before anything is submitted (layerlens/cluster/)
    from layerlens import design
    from layerlens.cluster import preflight

    print(design.describe(design.check(config)), file=sys.stderr)
    preflight(workflow)


rule all:
    default_target: True
    input:
        "resources/manifest.json",
        rules.report_probe.output,
        expand("results/report/probe_{base}.{ext}", base=BASES, ext=["png", "pdf"]),
        rules.report_output_change.output if VARIANTS else [],
        rules.report_similarity.output,
        expand("results/report/similarity_{base}.{ext}", base=BASES, ext=["png", "pdf"]),
        rules.report_variants.output if config["variants"] else [],
        rules.runs_table.output,
        rules.report_glue.output,
        rules.report_expected_max.output,
        expand("results/hub/{v}.json", v=BUILT_VARIANTS) if config["hub"]["push"] else [],
