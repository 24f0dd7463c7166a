"""The workflow config: validation against the schema, checks the schema cannot express, and the grid.

:func:`validate` is what the Snakefile calls before any job is planned. It runs Snakemake's own
``snakemake.utils.validate`` against ``workflow/schemas/config.schema.yaml`` (which fills in every default),
then the checks that need more than a schema: a variant's base must be a model, its layer map must parse
and fit the base's depth, a TSV GLUE folder must hold every configured task's files. Any failure raises
:class:`~layerlens.errors.ConfigError`, whose message starts with the offending key.
"""

from __future__ import annotations

import copy
from pathlib import Path

from .errors import ConfigError, InputError
from .layermap import resolve_layers
from .tasks import get_task

SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"

#: files of the classic glue_data layout, per task and split
TSV_FILES = {
    "cola": {"train": "CoLA/train.tsv", "validation": "CoLA/dev.tsv"},
    "sst2": {"train": "SST-2/train.tsv", "validation": "SST-2/dev.tsv"},
    "mrpc": {"train": "MRPC/train.tsv", "validation": "MRPC/dev.tsv"},
    "stsb": {"train": "STS-B/train.tsv", "validation": "STS-B/dev.tsv"},
    "qqp": {"train": "QQP/train.tsv", "validation": "QQP/dev.tsv"},
    "mnli": {"train": "MNLI/train.tsv", "validation_matched": "MNLI/dev_matched.tsv",
             "validation_mismatched": "MNLI/dev_mismatched.tsv"},
    "qnli": {"train": "QNLI/train.tsv", "validation": "QNLI/dev.tsv"},
    "rte": {"train": "RTE/train.tsv", "validation": "RTE/dev.tsv"},
    "wnli": {"train": "WNLI/train.tsv", "validation": "WNLI/dev.tsv"},
}

RESOURCES = Path("resources")


def validate(config: dict, *, workdir: str | Path = ".") -> dict:
    """Validate ``config`` in place (defaults filled in) and return it. Raises :class:`ConfigError`."""
    _validate_schema(config)
    _check_models(config, Path(workdir))
    _check_glue(config, Path(workdir))
    return config


def load(path: str | Path, *, workdir: str | Path = ".") -> dict:
    """Read a YAML config file and validate it (for use outside Snakemake: tests, benchmarks)."""
    import yaml

    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(path, "config file not found") from None
    except yaml.YAMLError as e:
        raise InputError(path, f"malformed YAML: {e}") from None
    if not isinstance(config, dict):
        raise InputError(path, "the config must be a YAML mapping (key: value)")
    return validate(config, workdir=workdir)


def _validate_schema(config: dict) -> None:
    import jsonschema
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate as smk_validate

    try:
        smk_validate(config, str(SCHEMA), set_default=True)
    except WorkflowError as e:
        cause = e.__cause__ or e.__context__
        if not isinstance(cause, jsonschema.ValidationError):
            raise
        raise _schema_error(cause) from None


def _schema_error(err) -> ConfigError:
    import jsonschema

    # the deepest, most specific error names the key best
    err = jsonschema.exceptions.best_match([err] + list(err.context or []))
    key = _key(err.absolute_path)
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        where = f"{key}." if key else ""
        allowed = ", ".join(sorted(err.schema.get("properties", {}))) or "none"
        return ConfigError(f"{where}{extra[0]}" if extra else key or "(top level)",
                           f"unknown key; allowed here: {allowed}")
    if err.validator == "propertyNames":
        return ConfigError(key or "(top level)", err.message)
    if err.validator == "required":
        return ConfigError(key or "(top level)", err.message)
    return ConfigError(key or "(top level)", err.message)


def _key(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# --- checks the schema cannot express --------------------------------------------------------------------


def _check_models(config: dict, workdir: Path) -> None:
    models, variants = config["models"], config.get("variants", {})
    clash = sorted(set(models) & set(variants))
    if clash:
        raise ConfigError(f"variants.{clash[0]}", "a variant cannot share its name with a model")
    for name, model in models.items():
        src = model["source"]
        if _looks_local(src) and not (workdir / src).expanduser().is_dir():
            raise ConfigError(f"models.{name}.source",
                              f"{src!r} looks like a local folder but does not exist; give an existing folder "
                              "or a Hub id (owner/name)")
    for name, variant in variants.items():
        base = variant["base"]
        if base not in models:
            raise ConfigError(f"variants.{name}.base",
                              f"{base!r} is not a model under `models` (models: {', '.join(models)})")
        base_config = base_model_config(config, base, workdir)
        key = f"variants.{name}.layers" if "layers" in variant else f"variants.{name}"
        try:
            if base_config is None:
                # depth unknown until the base is downloaded: check the syntax now, the rest in the layermap rule
                resolve_layers(variant, 10**6)
            else:
                adapter, model_config = base_config
                layers = resolve_layers(variant, adapter.depth(model_config))
                adapter.check_layer_map(model_config, layers)  # what the architecture can express
        except ValueError as e:
            raise ConfigError(key, str(e)) from None


def _looks_local(source: str) -> bool:
    return source.startswith(("/", "./", "../", "~")) or Path(source).expanduser().is_dir() \
        or source.count("/") > 1


def model_dir(name: str) -> Path:
    return RESOURCES / "models" / name


def base_model_config(config: dict, base: str, workdir: Path = Path(".")):
    """(adapter, config.json) of a base model if its config.json is at hand (a local source, or already
    downloaded); None otherwise. An unsupported architecture is a ConfigError naming the model."""
    from .families import adapter_for_dir, read_model_config

    src = config["models"][base]["source"]
    for candidate in (workdir / src, workdir / model_dir(base)):
        candidate = candidate.expanduser()
        if (candidate / "config.json").is_file():
            try:
                return adapter_for_dir(candidate), read_model_config(candidate)
            except InputError as e:
                raise ConfigError(f"models.{base}.source", str(e)) from None
    return None


def _check_glue(config: dict, workdir: Path) -> None:
    glue = config["glue"]
    if glue["source"] != "tsv":
        return
    if not glue.get("dir"):
        raise ConfigError("glue.dir", "glue.source is tsv, so glue.dir must name the classic glue_data folder")
    root = (workdir / glue["dir"]).expanduser()
    if not root.is_dir():
        raise ConfigError("glue.dir", f"{glue['dir']!r} is not a folder")
    for task in glue_tasks(config):
        for split, rel in TSV_FILES[task].items():
            if not (root / rel).is_file():
                raise ConfigError("glue.dir",
                                  f"{glue['dir']!r} lacks {rel} ({task} {split}); the classic layout has "
                                  + ", ".join(TSV_FILES[task].values()))


# --- the grid --------------------------------------------------------------------------------------------


def base_of(config: dict, name: str) -> str:
    """The base model of a model or variant name."""
    if name in config["models"]:
        return name
    return config["variants"][name]["base"]


def all_models(config: dict) -> list[str]:
    """Base models first, then variants, each in config order."""
    return list(config["models"]) + list(config.get("variants", {}))


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


def variants_of(config: dict, base: str) -> list[str]:
    return [v for v, spec in config.get("variants", {}).items() if spec["base"] == base]


def finetune_params(config: dict, task: str) -> dict:
    """The fine-tuning hyperparameters of one task: the defaults with the task's overrides on top."""
    get_task(task)
    ft = copy.deepcopy(config["finetune"])
    overrides = ft.pop("per_task", {}).get(task, {})
    ft.update(overrides)
    return ft
