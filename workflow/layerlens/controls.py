"""Controls for the paper's second claim: does a *copied* layer help, or would more compute or any layer do?

A variant asks for them with ``controls: [compute, random, frozen]`` (names and pairing in
:func:`layerlens.grid.controls` and :func:`layerlens.grid.comparisons`); each is fine-tuned on the same tasks and
seeds, and the report compares the variant with each, paired by seed:

- **compute** (``{variant}.compute``): the base, trained for as many more optimizer steps as the variant's extra
  FLOPs buy (:mod:`layerlens.flops`: the Trainer's ``6 x N x tokens`` from the model shapes), so both spend the
  same compute. Same seed, same head and data order; the extra steps run on into the next epoch's batches, and
  the learning-rate schedule spans the longer run. :func:`matched_max_steps` fixes the count in the job from the
  base's config.json and the variant's layer map; metrics.json records it.
- **random** (``{variant}.random``): the variant's shape, each *copied* layer (:func:`copied_positions`: the
  second and later appearances of a source layer) replaced by a freshly initialised layer of the family's own
  class, initialised as the family initialises it (the model class's ``_init_weights``, through
  ``AutoModel.from_config`` under ``controls.init_seed``), everything else the variant's. Built once into its own
  folder; ``layer_map.json`` records the positions and the seed. ALBERT shares its layers across depth, so it
  has no layer to replace: refused.
- **frozen** (``{model}.frozen``, for the variant and its base): fine-tuned with every weight the checkpoint
  provides frozen, so only what fine-tuning adds (the classifier) trains (:func:`freeze_pretrained`), the way
  "Transformer Layers as Painters" reads what a changed stack still carries.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from .errors import ConfigError, InputError
from .families import adapter_for, adapter_for_dir, read_model_config


def copied_positions(layers: Sequence[int]) -> list[int]:
    """Positions of a layer map that repeat a source layer already used earlier in the map."""
    return [i for i, src in enumerate(layers) if src in layers[:i]]


# --- config checks ------------------------------------------------------------------------------------------


def check(config: dict, depth_of, model_config_of) -> None:
    """What the schema cannot say about ``variants.<name>.controls``; raises :class:`ConfigError`.
    ``depth_of(base)`` and ``model_config_of(base)`` are :func:`layerlens.config.base_depth` and
    :func:`~layerlens.config.base_model_config` for this config (None while a Hub model is not downloaded)."""
    from . import grid
    from .layermap import resolve_layers

    taken = set(config["models"]) | set(config.get("variants", {}))
    for name, spec in grid.controls(config).items():
        if name in taken:
            raise ConfigError(f"variants.{spec['of']}.controls" if spec["of"] in config.get("variants", {})
                              else "variants", f"the control {name!r} has the name of a model or variant; rename it")
    for variant, spec in config.get("variants", {}).items():
        kinds = spec.get("controls", [])
        key = f"variants.{variant}.controls"
        if kinds and not spec.get("finetune", True):
            raise ConfigError(key, "controls are fine-tuning runs: the variant must be fine-tuned (finetune: true)")
        if "random" not in kinds:
            continue
        found = model_config_of(spec["base"])
        if found is not None and found[0].shares_layers:
            raise ConfigError(key, f"random: {found[0].name} shares its layer weights across depth, so there is no "
                                   "copied layer to replace with a fresh one")
        depth = depth_of(spec["base"])
        if depth is not None and not copied_positions(resolve_layers(spec, depth)):
            raise ConfigError(key, "random replaces the variant's copied layers, and its layer map copies none")


# --- random layers ------------------------------------------------------------------------------------------


def fresh_layer_tensors(config: dict, positions: Sequence[int], seed: int) -> dict[tuple[int, str], object]:
    """``{(position, name within the layer): tensor}`` of freshly initialised layers at ``positions`` of a model
    with config.json ``config``: the family's own base-model class built from the config under ``seed``, so every
    weight is initialised by the class's own rule (``post_init``)."""
    import torch
    from transformers import CONFIG_MAPPING, AutoModel

    adapter = adapter_for(config["model_type"])
    torch.manual_seed(seed)
    model = AutoModel.from_config(CONFIG_MAPPING[config["model_type"]].from_dict(dict(config)))
    out = {}
    for key, tensor in model.state_dict().items():
        m = re.search(adapter.layer_key, key)
        if m and int(m.group(1)) in positions:
            out[(int(m.group(1)), key[m.end():])] = tensor.detach().clone().contiguous()
    return out


def build_random_control(base_dir: str | Path, out_dir: str | Path, spec: dict, *, seed: int, base_name: str = "",
                         variant_name: str = "", name: str = "") -> dict:
    """Write the random-layer control of a variant (config entry ``spec``) to ``out_dir``; return its provenance."""
    from .layermap import build_variant, config_layers
    from .manifest import verify

    verify(base_dir)
    adapter = adapter_for_dir(base_dir)
    if adapter.shares_layers:
        raise InputError(base_dir, f"{adapter.name} shares its layer weights across depth: no copied layer to replace")
    layers = config_layers(base_dir, spec, base_name=base_name, variant_name=variant_name)
    positions = copied_positions(layers)
    if not positions:
        raise ConfigError(f"variants.{variant_name}.controls", "random: the layer map copies no layer")

    def replace(state: dict, config: dict) -> dict:
        fresh = fresh_layer_tensors(config, positions, seed)
        out = {}
        for key, tensor in state.items():
            m = re.search(adapter.layer_key, key)
            if m and int(m.group(1)) in positions:
                where = (int(m.group(1)), key[m.end():])
                if where not in fresh:
                    raise InputError(base_dir, f"{key}: no freshly initialised counterpart in {adapter.name}'s class")
                tensor = fresh[where].to(tensor.dtype)
            out[key] = tensor
        return out

    notes = {"control": "random", "of": variant_name, "random_positions": positions, "init_seed": seed,
             "init": "freshly initialised by the family's class (AutoModel.from_config, post_init)"}
    return build_variant(base_dir, out_dir, layers, base_name=base_name, variant_name=name, replace=replace,
                         notes=notes)


# --- compute-matched base and frozen encoder ----------------------------------------------------------------


def matched_max_steps(base_dir: str | Path, spec: dict, base_steps: int, num_labels: int) -> dict:
    """The steps a compute-matched base trains: ``base_steps`` x the variant's training FLOPs per step over the
    base's, from config.json and the variant's layer map (``spec``: ``layers`` or ``duplicate`` / ``remove``)."""
    from .flops import flops_ratio, matched_steps
    from .layermap import config_layers

    layers = config_layers(base_dir, spec, variant_name=spec.get("variant", ""))
    config = read_model_config(base_dir)
    variant_config = adapter_for_dir(base_dir).variant_config(config, layers)
    ratio = flops_ratio(config, variant_config, num_labels)
    return {"variant": spec.get("variant"), "flops_ratio": ratio, "base_steps": base_steps,
            "steps": matched_steps(base_steps, ratio)}


def freeze_pretrained(model, newly_initialised: Sequence[str]) -> dict:
    """Freeze every parameter the checkpoint provided; only the newly initialised ones (the classifier) train."""
    new = set(newly_initialised)
    trainable = []
    for name, param in model.named_parameters():
        param.requires_grad = name in new
        if param.requires_grad:
            trainable.append(name)
    if not trainable:
        raise InputError("controls: frozen", "the checkpoint provides every weight of the classification model, so "
                                             "a frozen encoder would leave nothing to train")
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"trainable": trainable, "trainable_parameters": n_train,
            "frozen_parameters": sum(p.numel() for p in model.parameters()) - n_train}
