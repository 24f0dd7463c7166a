# Shared by the stage files: config validation, the grid, paths, wildcard constraints, job environment, and
# every input function (Snakemake's best practice: functions live here, the stage files hold only rules).

import os
import re
from pathlib import Path

from snakemake.exceptions import WorkflowError

from layerlens import config as llconfig
from layerlens.cluster import gpus_per_job
from layerlens.errors import LayerLensError
from layerlens.runtime import cache_env

if (
    workflow.overwrite_configfiles
    and not workflow.config_settings.replace_workflow_config
    and not SPAWNED_WITH_CONFIGFILE
):
    # `--configfile` alone *extends* config.yaml: its models and variants would join the user's own
    raise WorkflowError(
        "--configfile needs --replace-workflow-config, so that your config replaces config.yaml instead of "
        "being merged into it (profiles/default, profiles/local and profiles/slurm set it; a profile of your "
        "own needs `replace-workflow-config: true`)"
    )

try:
    llconfig.validate(config)  # snakemake.utils.validate against the schema, then semantic checks
except LayerLensError as e:
    raise WorkflowError(f"invalid configuration: {e}") from None

os.environ.update(cache_env())  # every cache stays under resources/.cache

BASES = list(config["models"])
VARIANTS = list(config["variants"])  # explicit ones and those generated from `sweeps`
MODELS = BASES + VARIANTS
FINETUNED = llconfig.finetuned_models(config)  # probe-only variants are left out
BUILT_VARIANTS = [v for v in VARIANTS if llconfig.is_materialized(config, v)]
TASKS = config["tasks"]
GLUE_TASKS = llconfig.glue_tasks(config)  # TASKS, plus the tasks a head is fitted on
FIT_BASES = llconfig.fit_bases(config)  # base models probed with a fitted head
SEEDS = config["seeds"]
try:
    GPUS = gpus_per_job()  # LAYERLENS_GPUS: 1 by default, 0 on a cluster or machine without GPUs
except LayerLensError as e:
    raise WorkflowError(str(e)) from None
TORCH_ENV = "../../envs/torch.yaml"
REPORT_ENV = "../../envs/report.yaml"


def _alternatives(names):
    return "|".join(re.escape(n) for n in names) if names else "(?!x)x"


wildcard_constraints:
    base=_alternatives(BASES),
    variant=_alternatives(VARIANTS),
    built_variant=_alternatives(BUILT_VARIANTS),
    model=_alternatives(MODELS),
    finetuned=_alternatives(FINETUNED),
    task=_alternatives(GLUE_TASKS),
    fit_base=_alternatives(FIT_BASES),
    seed=r"\d+",
    max_length=r"\d+",


def model_dir(name):
    return f"resources/models/{name}"


def base_of(name):
    return llconfig.base_of(config, name)


def finetune_params(task):
    """What changes a result (the rule's params); logging and checkpointing come from the config at run time."""
    return llconfig.finetune_params(config, task, runtime=False)


def probe_input(name):
    """The folder a probe reads: the model's own, or its base's for a probe-only variant (built in memory)."""
    return model_dir(name if llconfig.is_materialized(config, name) else base_of(name))


def virtual_spec(name):
    """The config entry of a probe-only variant, or None."""
    return None if llconfig.is_materialized(config, name) else config["variants"][name]


def tokenized_dir(model, task):
    length = finetune_params(task)["max_length"]
    return f"resources/tokenized/{base_of(model)}/{task}-len{length}"


def head_dir(name):
    """The fitted head a model or variant is probed with (its base's), or None for a pretrained head."""
    return f"resources/heads/{base_of(name)}" if llconfig.head_of(config, name) == "fit" else None


def glue_tsv_inputs(wildcards):
    """The classic TSV files of a task (so a changed file reruns its download), or none for the Hub."""
    if config["glue"]["source"] != "tsv":
        return []
    root = Path(config["glue"]["dir"])
    return [str(root / rel) for rel in llconfig.TSV_FILES[wildcards.task].values()]


def probe_inputs(wildcards):
    """The model folder a probe reads (its base's, for a probe-only variant), its sentences, its fitted head."""
    inputs = {"model": probe_input(wildcards.model), "sentences": "results/probe/sentences.tsv"}
    if head_dir(wildcards.model):
        inputs["head"] = head_dir(wildcards.model)
    return inputs


def output_change_inputs(wildcards):
    v = wildcards.variant
    inputs = {"base": model_dir(base_of(v)), "sentences": "results/probe/sentences.tsv"}
    if llconfig.is_materialized(config, v):
        inputs["variant"] = model_dir(v)
    if head_dir(v):
        inputs["head"] = head_dir(v)
    return inputs


def cells(pattern):
    """One path per fine-tuning cell: model x task x seed."""
    return expand(pattern, finetuned=FINETUNED, task=TASKS, seed=SEEDS)
