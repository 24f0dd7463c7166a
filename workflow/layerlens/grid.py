"""The grid a validated config describes: which models exist, which are fine-tuned or probe-only, which head reads
them, which GLUE tasks are needed, and the fine-tuning settings of each task. Read by the rule files
(``workflow/rules/common.smk``), the config check and the tests; nothing here reads a file."""

from __future__ import annotations

import copy

from .tasks import get_task


def base_of(config: dict, name: str) -> str:
    """The base model of a model, variant or control name."""
    if name in config["models"]:
        return name
    if name in config.get("variants", {}):
        return config["variants"][name]["base"]
    return controls(config)[name]["base"]


def head_of(config: dict, name: str) -> str:
    """``pretrained`` or ``fit``: the head the probe reads a model or variant with (a variant: its base's)."""
    return config["models"][base_of(config, name)]["probe"]["head"]


def fit_bases(config: dict) -> list[str]:
    """The base models whose probe uses a fitted head."""
    return [m for m in config["models"] if head_of(config, m) == "fit"]


def fit_decoders(config: dict) -> list[str]:
    """The fitted heads' decoders (``probe.fit.tie_decoder``): ``tied``, ``untied`` or both, the first being the one
    output change reads."""
    tie = config["probe"]["fit"]["tie_decoder"]
    return {True: ["tied"], False: ["untied"]}.get(tie, ["tied", "untied"])


def head_names(config: dict, name: str) -> list[str]:
    """The heads the probe reads a model or variant with: ``pretrained``, or ``fit-tied`` / ``fit-untied``."""
    return [f"fit-{d}" for d in fit_decoders(config)] if head_of(config, name) == "fit" else ["pretrained"]


def translator_bases(config: dict) -> list[str]:
    """The base models that get per-layer translators (``probe.translators.enabled``)."""
    return list(config["models"]) if config["probe"]["translators"]["enabled"] else []


def fit_tasks(config: dict) -> list[str]:
    """The GLUE tasks whose train splits give the text a head or translators are fitted on."""
    return list(config["probe"]["fit"]["tasks"] or config["tasks"])


def glue_tasks(config: dict) -> list[str]:
    """Every GLUE task the run needs: the configured tasks, then the fit tasks if a head or translators are fitted."""
    extra = fit_tasks(config) if fit_bases(config) or translator_bases(config) else []
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
    """Base models, the planned variants that are fine-tuned (not probe-only), and the controls of
    :func:`controls`."""
    variants = [v for v in planned_variants(config) if config["variants"][v].get("finetune", True)]
    return list(config["models"]) + variants + list(controls(config))


def is_materialized(config: dict, name: str) -> bool:
    """Whether a model is written to resources/models/ (bases and fine-tuned variants); probe-only variants
    are built in memory from their base when probed."""
    return name in config["models"] or config["variants"][name].get("finetune", True)


#: fine-tuning settings that do not change a result: changing them reruns nothing
RUNTIME_KEYS = ("logging_steps", "checkpoint_steps", "checkpoint_minutes", "keep_weights", "report_to")


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


# --- controls: what separates "a copied layer" from "more compute" or "any extra layer" ----------------------

#: the control kinds a variant can ask for (``variants.<name>.controls``), and how the report names each
CONTROL_LABELS = {"compute": "compute-matched base", "random": "random layers", "frozen": "frozen encoder"}


def controls(config: dict) -> dict[str, dict]:
    """Every control fine-tuning run the config asks for: ``{name: {kind, of, base, weights}}``.

    - ``{variant}.compute``: the base's weights, trained for as many more steps as the variant's extra FLOPs buy;
    - ``{variant}.random``: the variant's shape with each copied layer freshly initialised (its own folder);
    - ``{model}.frozen``: a model fine-tuned with its encoder frozen, for the variant and for its base.

    ``of`` is the model it controls, ``weights`` the model folder it is fine-tuned from.
    """
    out: dict[str, dict] = {}
    for variant, spec in config.get("variants", {}).items():
        base = spec["base"]
        for kind in spec.get("controls", []):
            if kind == "frozen":
                for model in (base, variant):
                    out[f"{model}.frozen"] = {"kind": "frozen", "of": model, "base": base, "weights": model}
            else:
                name = f"{variant}.{kind}"
                out[name] = {"kind": kind, "of": variant, "base": base,
                             "weights": base if kind == "compute" else name}
    return out


def weights_of(config: dict, name: str) -> str:
    """The model folder (``resources/models/<this>``) a fine-tuned model, variant or control starts from."""
    return controls(config)[name]["weights"] if name not in config["models"] \
        and name not in config.get("variants", {}) else name


def reference_of(config: dict, name: str) -> str:
    """What a fine-tuned run's table row is compared with: a variant's or a control's base; a frozen variant's
    frozen base; a base (and a frozen base) itself."""
    if name in config["models"]:
        return name
    spec = controls(config).get(name)
    if spec is None:
        return base_of(config, name)
    if spec["kind"] == "frozen":
        return f"{spec['base']}.frozen"
    return spec["base"]


def comparisons(config: dict) -> list[tuple[str, str, str]]:
    """The tests of the report's Holm family, per task: ``(model, reference, label)`` for each fine-tuned variant
    against its base, and against each of its controls (a frozen variant against its frozen base)."""
    out = []
    for variant, spec in config.get("variants", {}).items():
        if not spec.get("finetune", True):
            continue
        out.append((variant, spec["base"], "base"))
        for kind in spec.get("controls", []):
            if kind == "frozen":
                out.append((f"{variant}.frozen", f"{spec['base']}.frozen", CONTROL_LABELS[kind]))
            else:
                out.append((variant, f"{variant}.{kind}", CONTROL_LABELS[kind]))
    return out


def run_params(config: dict, name: str, task: str, *, runtime: bool = True) -> dict:
    """:func:`finetune_params` of a task for one fine-tuned model: a control adds what makes it one (a frozen
    encoder with ``controls.frozen``'s settings; the variant whose extra compute a compute-matched base spends)."""
    params = finetune_params(config, task, runtime=runtime)
    spec = controls(config).get(name)
    if spec is None:
        return params
    if spec["kind"] == "frozen":
        params.update(config["controls"]["frozen"], freeze_encoder=True)
    elif spec["kind"] == "compute":
        params["compute_matched"] = {"variant": spec["of"], **layer_spec(config, spec["of"])}
    return params


def layer_spec(config: dict, variant: str) -> dict:
    """The keys of a variant's entry that make its layer map (``layers``, or ``duplicate`` / ``remove``)."""
    return {k: v for k, v in config["variants"][variant].items() if k in ("layers", "duplicate", "remove")}
