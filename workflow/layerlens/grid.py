"""The grid a validated config describes: which models exist, which are fine-tuned or probe-only, which head reads
them, which GLUE tasks are needed, and the fine-tuning settings of each task. Read by the rule files
(``workflow/rules/common.smk``), the config check and the tests; nothing here reads a file."""

from __future__ import annotations

import copy

from .tasks import get_task


def base_of(config: dict, name: str) -> str:
    """The base model of a model or variant name."""
    if name in config["models"]:
        return name
    return config["variants"][name]["base"]


def head_of(config: dict, name: str) -> str:
    """``pretrained`` or ``fit``: the head the probe reads a model or variant with (a variant: its base's)."""
    return config["models"][base_of(config, name)]["probe"]["head"]


def fit_bases(config: dict) -> list[str]:
    """The base models whose probe uses a fitted head."""
    return [m for m in config["models"] if head_of(config, m) == "fit"]


def fit_tasks(config: dict) -> list[str]:
    """The GLUE tasks whose train splits give the text a head is fitted on."""
    return list(config["probe"]["fit"]["tasks"] or config["tasks"])


def glue_tasks(config: dict) -> list[str]:
    """Every GLUE task the run needs: the configured tasks, then the fit tasks if any model fits a head."""
    extra = fit_tasks(config) if fit_bases(config) else []
    return list(dict.fromkeys(list(config["tasks"]) + extra))


def same_as(config: dict, name: str) -> str | None:
    """The model a variant is identical to (set by the config check, :mod:`layerlens.dedup`), or None."""
    return config.get("variants", {}).get(name, {}).get("same_as")


def planned_variants(config: dict) -> list[str]:
    """The variants that are experiments of their own: every variant but those identical to another model."""
    return [v for v, spec in config.get("variants", {}).items() if "same_as" not in spec]


def variants_of(config: dict, base: str) -> list[str]:
    """The planned variants of a base."""
    return [v for v in planned_variants(config) if config["variants"][v]["base"] == base]


def selected_variants(config: dict) -> list[str]:
    """The planned variants whose layers are chosen from their base's similarity (``select``)."""
    return [v for v in planned_variants(config) if "select" in config["variants"][v]]


def finetuned_models(config: dict) -> list[str]:
    """Base models and the planned variants that are fine-tuned (not probe-only)."""
    return list(config["models"]) + [v for v in planned_variants(config) if config["variants"][v].get("finetune", True)]


def is_materialized(config: dict, name: str) -> bool:
    """Whether a model is written to resources/models/ (bases and fine-tuned variants); probe-only variants
    are built in memory from their base when probed."""
    return name in config["models"] or config["variants"][name].get("finetune", True)


#: fine-tuning settings that do not change a result: changing them reruns nothing
RUNTIME_KEYS = ("logging_steps", "checkpoint_steps", "checkpoint_minutes", "keep_weights")


def finetune_params(config: dict, task: str, *, runtime: bool = True) -> dict:
    """The fine-tuning hyperparameters of one task: the defaults with the task's overrides on top.

    ``runtime=False`` leaves out :data:`RUNTIME_KEYS`: the finetune rule's ``params`` hold only what changes a
    result, so Snakemake reruns a task's cells when one of those changes, and nothing when logging or
    checkpointing does.
    """
    get_task(task)
    ft = copy.deepcopy(config["finetune"])
    overrides = ft.pop("per_task", {}).get(task, {})
    ft.update(overrides)
    if not runtime:
        ft = {k: v for k, v in ft.items() if k not in RUNTIME_KEYS}
    return ft
