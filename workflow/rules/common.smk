# Shared by the stage files: config validation, the grid, paths, wildcard constraints, job environment, and
# every input function (Snakemake's best practice: functions live here, the stage files hold only rules).

import os
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError

from layerlens import config as llconfig
from layerlens import grid
from layerlens.cluster import gpus_per_job
from layerlens.errors import LayerLensError
from layerlens.runtime import cache_env
from layerlens.tasks import get_task

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
# explicit ones and those generated from `sweeps`, less those identical to another model (run once, under that name)
VARIANTS = grid.planned_variants(config)
SELECTED = grid.selected_variants(config)  # layers chosen from the base's similarity, by rule select_layers
VARIANT_BASES = list(dict.fromkeys(spec["base"] for spec in config["variants"].values()))
MODELS = BASES + VARIANTS
FINETUNED = grid.finetuned_models(config)  # probe-only variants are left out; controls are in
RANDOM_CONTROLS = [c for c, spec in grid.controls(config).items() if spec["kind"] == "random"]
BUILT_VARIANTS = [v for v in VARIANTS if grid.is_materialized(config, v)]
TASKS = config["tasks"]
GLUE_TASKS = grid.glue_tasks(config)  # TASKS, plus the tasks a head is fitted on
FIT_BASES = grid.fit_bases(config)  # base models probed with a fitted head
TRANSLATOR_BASES = grid.translator_bases(config)  # base models with per-layer translators
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
    selected=_alternatives(SELECTED),
    model=_alternatives(MODELS),
    finetuned=_alternatives(FINETUNED),
    task=_alternatives(GLUE_TASKS),
    fit_base=_alternatives(FIT_BASES),
    random_control=_alternatives(RANDOM_CONTROLS),
    translator_base=_alternatives(TRANSLATOR_BASES),
    decoder="tied|untied",
    seed=r"\d+",
    max_length=r"\d+",


def model_dir(name):
    return f"resources/models/{name}"


def base_of(name):
    return grid.base_of(config, name)


def finetune_params(task):
    """What changes a result (the rule's params); logging and checkpointing come from the config at run time."""
    return grid.finetune_params(config, task, runtime=False)


def run_params(name, task):
    """finetune_params of one fine-tuned model: a control's own settings on top."""
    return grid.run_params(config, name, task, runtime=False)


def probe_input(name):
    """The folder a probe reads: the model's own, or its base's for a probe-only variant (built in memory)."""
    return model_dir(name if grid.is_materialized(config, name) else base_of(name))


def virtual_spec(name):
    """The config entry of a probe-only variant, or None."""
    return None if grid.is_materialized(config, name) else config["variants"][name]


def tokenized_dir(model, task):
    length = finetune_params(task)["max_length"]
    return f"resources/tokenized/{base_of(model)}/{task}-len{length}"


def head_dirs(name):
    """The fitted heads a model or variant is probed with (its base's), by head name (fit-tied, fit-untied); none
    for a pretrained head."""
    if grid.head_of(config, name) != "fit":
        return {}
    return {f"fit-{d}": f"resources/heads/{base_of(name)}/{d}" for d in grid.fit_decoders(config)}


def head_dir(name):
    """The fitted head output change reads a model with (the first of `probe.fit.tie_decoder`), or None."""
    return next(iter(head_dirs(name).values()), None)


def input_name(head):
    """A head's name as a rule input's name (fit-tied -> fit_tied)."""
    return head.replace("-", "_")


def translator_heads(wildcards):
    """The heads the translators of a base are fitted for: each fitted head's folder, as named inputs."""
    return {input_name(k): v for k, v in head_dirs(wildcards.translator_base).items()}


def glue_tsv_inputs(wildcards):
    """The classic TSV files of a task (so a changed file reruns its download), or none for the Hub."""
    if config["glue"]["source"] != "tsv":
        return []
    root = Path(config["glue"]["dir"])
    return [str(root / rel) for rel in get_task(wildcards.task).tsv.files.values()]


def selected_json(name):
    """The layers chosen for a variant with `select` (rule select_layers), for the jobs that build or probe it."""
    return {"selected": f"results/similarity/selected/{name}.json"} if name in SELECTED else {}


def build_variant_inputs(wildcards):
    return {"base": model_dir(base_of(wildcards.built_variant)), **selected_json(wildcards.built_variant)}


def probe_inputs(wildcards):
    """The model folder a probe reads (its base's, for a probe-only variant), its sentences, its fitted head."""
    inputs = {"model": probe_input(wildcards.model), "sentences": "results/probe/sentences.tsv"}
    inputs.update({input_name(k): v for k, v in head_dirs(wildcards.model).items()})
    if wildcards.model in TRANSLATOR_BASES:
        inputs["translators"] = f"resources/translators/{wildcards.model}"
    if virtual_spec(wildcards.model):
        inputs.update(selected_json(wildcards.model))
    return inputs


def output_change_inputs(wildcards):
    v = wildcards.variant
    inputs = {"base": model_dir(base_of(v)), "sentences": "results/probe/sentences.tsv"}
    if grid.is_materialized(config, v):
        inputs["variant"] = model_dir(v)
    else:
        inputs.update(selected_json(v))
    if head_dir(v):
        inputs["head"] = head_dir(v)
    return inputs


def cells(pattern):
    """One path per fine-tuning cell: model x task x seed."""
    return expand(pattern, finetuned=FINETUNED, task=TASKS, seed=SEEDS)
