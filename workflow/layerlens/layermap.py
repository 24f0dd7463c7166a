"""Layer maps: deeper or shallower models built from a base by copying layers, with no training.

A layer map lists, for each layer of the new model, the 0-based index of the base layer it copies:
``"0-11,11"`` is a 13-layer model whose last two layers are copies of base layer 11. ``duplicate: [i]``
and ``remove: [i]`` are sugar over the identity map.

A variant is built from the base checkpoint's tensors, not from one model class, so everything the base
ships is carried over unchanged: embeddings, the complete masked-LM head (transform, LayerNorm, decoder, bias),
the pooler, and the tokenizer. Layer tensors are deep-copied and renumbered; the family adapter updates the
config (depth, and anything else indexed by layer). The map is recorded in ``config.json``
(``layerlens_layer_map``) and in ``layer_map.json`` beside the weights.

Only fine-tuned variants are written to disk. A probe-only variant is built in memory from the base's tensors
(:func:`variant_model`), by the same renumbering, so it is the model a saved variant would load as.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Iterable, Sequence

from .errors import ConfigError, InputError
from .families import adapter_for_dir, model_depth, read_model_config
from .io import atomic_dir, read_json, write_json
from .manifest import MANIFEST, verify, write_manifest
from .modelfiles import PICKLE_SUFFIXES, WEIGHT_SUFFIXES, load_pretrained, load_state_dict, weights_sha256
from .share import write_card

PROVENANCE_FILE = "layer_map.json"

_ITEM = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


# --- parsing ---------------------------------------------------------------------------------------------


def parse_layers(spec: str | Sequence[int]) -> list[int]:
    """``"0-5,5,6-11"`` -> [0, 1, 2, 3, 4, 5, 5, 6, ..., 11]. Ranges are inclusive, in the order written:
    ``"11-6"`` is [11, 10, 9, 8, 7, 6], so any order can be written by hand."""
    if not isinstance(spec, str):
        layers = list(spec)
        if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in layers):
            raise ValueError(f"a layer list must hold non-negative integers, got {spec!r}")
        return layers
    layers: list[int] = []
    for item in spec.split(","):
        m = _ITEM.match(item)
        if not m:
            raise ValueError(f"cannot parse {item.strip()!r} in {spec!r}: use 'i' or 'i-j', comma-separated")
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        layers.extend(range(lo, hi + 1) if hi >= lo else range(lo, hi - 1, -1))
    return layers


def format_layers(layers: Sequence[int]) -> str:
    """The inverse of :func:`parse_layers`: runs of consecutive layers, ascending or descending, folded into
    ranges (``[0, 1, 2, 5, 4, 3]`` -> ``"0-2,5-3"``), so ``parse_layers(format_layers(x)) == x``."""
    parts: list[str] = []
    i = 0
    while i < len(layers):
        j = i
        step = layers[i + 1] - layers[i] if i + 1 < len(layers) else 0
        if step in (1, -1):
            while j + 1 < len(layers) and layers[j + 1] - layers[j] == step:
                j += 1
        parts.append(str(layers[i]) if i == j else f"{layers[i]}-{layers[j]}")
        i = j + 1
    return ",".join(parts)


def sugar_layers(num_layers: int, duplicate: Iterable[int] = (), remove: Iterable[int] = ()) -> list[int]:
    """The identity map with ``remove`` dropped and each ``duplicate`` repeated right after itself."""
    duplicate, remove = list(duplicate), set(remove)
    for i in list(duplicate) + sorted(remove):
        if not 0 <= i < num_layers:
            raise ValueError(f"layer {i} is out of range: the base has {num_layers} layers (0-{num_layers - 1})")
    both = remove.intersection(duplicate)
    if both:
        raise ValueError(f"layer(s) {sorted(both)} are both removed and duplicated")
    layers: list[int] = []
    for i in range(num_layers):
        if i in remove:
            continue
        layers.extend([i] * (1 + duplicate.count(i)))
    return layers


def resolve_layers(variant: dict, num_layers: int) -> list[int]:
    """The layer map of a variant config entry (``layers`` or ``duplicate``/``remove``) for a base depth."""
    if "layers" in variant:
        if "duplicate" in variant or "remove" in variant:
            raise ValueError("give either `layers` or `duplicate`/`remove`, not both")
        layers = parse_layers(variant["layers"])
    elif "duplicate" in variant or "remove" in variant:
        layers = sugar_layers(num_layers, variant.get("duplicate", ()), variant.get("remove", ()))
    elif "select" in variant:
        raise ValueError("its layers are chosen from the base's layer similarity when the jobs run (rule "
                         "select_layers, layerlens.sweeps); they are not known before")
    else:
        raise ValueError("needs `layers` (e.g. \"0-11,11\"), `duplicate` / `remove`, or `select`")
    check_layers(layers, num_layers)
    return layers


def check_layers(layers: Sequence[int], num_layers: int) -> None:
    if not layers:
        raise ValueError("the layer map yields zero layers")
    bad = sorted({i for i in layers if not 0 <= i < num_layers})
    if bad:
        raise ValueError(
            f"layer {bad[0]} is out of range: the base has {num_layers} layers (0-{num_layers - 1})"
        )


def describe(layers: Sequence[int], num_layers: int) -> dict:
    """What a layer map does to its base, for labels and plots.

    ``kind`` is identity, duplicate (layers repeated in place), remove, duplicate_block (a block repeated right
    after itself), reorder (the same layers in another order: a block reversed or shuffled), replace (the same
    depth, some layers replaced by copies of others: a middle layer repeated over a block) or custom;
    ``touched`` lists the base layers involved (for reorder and replace: the positions that changed); ``first``
    is the first of them.
    """
    layers, L = list(layers), num_layers
    if layers == list(range(L)):
        return {"kind": "identity", "touched": [], "first": None}
    if all(a < b for a, b in zip(layers, layers[1:])):
        gone = sorted(set(range(L)) - set(layers))
        return {"kind": "remove", "touched": gone, "first": gone[0]}
    if all(a <= b for a, b in zip(layers, layers[1:])) and set(layers) == set(range(L)):
        rep = [b for a, b in zip(layers, layers[1:]) if a == b]
        return {"kind": "duplicate", "touched": rep, "first": rep[0]}
    for b in range(L):
        for a in range(b):
            if layers == list(range(0, b + 1)) + list(range(a, b + 1)) + list(range(b + 1, L)):
                return {"kind": "duplicate_block", "touched": list(range(a, b + 1)), "first": a}
    if len(layers) == L:
        moved = [i for i, src in enumerate(layers) if src != i]
        return {"kind": "reorder" if sorted(layers) == list(range(L)) else "replace", "touched": moved,
                "first": moved[0]}
    return {"kind": "custom", "touched": sorted(set(layers)), "first": None}


# --- building --------------------------------------------------------------------------------------------


def variant_tensors(base_dir: str | Path, layers: Sequence[int], *, state: dict | None = None,
                    where: str | Path | None = None) -> tuple[dict, dict]:
    """The tensors and config.json of the variant of ``base_dir`` with layer map ``layers``.

    ``state``: the base checkpoint's tensors, if already read (else they are read from ``base_dir``); the
    variant shares every tensor that is not a layer's. ``where`` names the variant in error messages.
    """
    adapter = adapter_for_dir(base_dir)
    config = read_model_config(base_dir)
    layers = list(layers)
    try:
        check_layers(layers, adapter.depth(config))
        adapter.check_layer_map(config, layers)
    except ValueError as e:
        raise InputError(where or base_dir, f"layer map {format_layers(layers)!r} on {base_dir}: {e}") from None
    state = load_state_dict(base_dir) if state is None else state
    present = sorted({i for k in state if (i := adapter.layer_of(k)) is not None})
    expected = adapter.stored_layers(config)
    if present != expected:
        raise InputError(base_dir, f"config.json implies stored layers {format_layers(expected) or 'none'} "
                                   f"({adapter.name}) but the weights hold {format_layers(present) or 'none'}")
    return adapter.variant_state_dict(state, layers, config), adapter.variant_config(config, layers)


def build_variant(base_dir: str | Path, out_dir: str | Path, layers: Sequence[int], *,
                  base_name: str = "", variant_name: str = "", replace=None, notes: dict | None = None) -> dict:
    """Write the variant of ``base_dir`` with layer map ``layers`` to ``out_dir`` (atomically).

    ``replace(state, config) -> state`` changes the tensors before they are written (:mod:`layerlens.controls`).
    Returns the provenance record that is also written to ``layer_map.json``; ``notes`` are added to it (the
    config's other names for this model, how its layers were chosen, what a control replaced).
    """
    from huggingface_hub import save_torch_state_dict

    base_dir, out_dir = Path(base_dir), Path(out_dir)
    adapter = adapter_for_dir(base_dir)
    config = read_model_config(base_dir)
    num_layers = adapter.depth(config)
    layers = list(layers)
    new_state, new_config = variant_tensors(base_dir, layers, where=out_dir)
    new_state = replace(new_state, new_config) if replace else new_state
    provenance = {
        "variant": variant_name,
        "base": base_name,
        "base_dir": str(base_dir),
        "family": adapter.name,
        "base_num_layers": num_layers,
        "num_layers": len(layers),
        "layers": list(layers),
        "layers_spec": format_layers(layers),
        "base_weights_sha256": weights_sha256(base_dir),
    }
    provenance.update(adapter.provenance_notes(config, layers))
    provenance.update(notes or {})
    new_config["layerlens_layer_map"] = {k: provenance[k] for k in ("base", "layers", "base_num_layers")}

    with atomic_dir(out_dir) as tmp:
        save_torch_state_dict(new_state, tmp, safe_serialization=True, metadata={"format": "pt"})
        write_json(tmp / "config.json", new_config)
        for f in base_dir.iterdir():
            if f.is_file() and f.name not in {"config.json", MANIFEST, PROVENANCE_FILE} \
                    and f.suffix not in WEIGHT_SUFFIXES + PICKLE_SUFFIXES \
                    and not f.name.endswith(".safetensors.index.json"):
                shutil.copy2(f, tmp / f.name)  # tokenizer, generation config, ...
        write_json(tmp / PROVENANCE_FILE, provenance)
        write_card(tmp, provenance, describe(layers, num_layers), base_dir, family=adapter.name)  # README.md
        write_manifest(tmp, {"kind": "variant", "name": variant_name, "base": base_name,
                             "layers": provenance["layers_spec"]})
    return provenance


def config_layers(base_dir: str | Path, spec: dict, *, base_name: str = "", variant_name: str = "") -> list[int]:
    """The layer map of a variant's config entry (``layers`` or ``duplicate`` / ``remove``) on ``base_dir``."""
    try:
        return resolve_layers(dict(spec), model_depth(base_dir))
    except ValueError as e:
        key = f"variants.{variant_name}" + (".layers" if "layers" in spec else "")
        raise ConfigError(key, f"{e} (base {base_name!r} at {base_dir})") from None


def build_variant_from_config(base_dir: str | Path, out_dir: str | Path, spec: dict, *, base_name: str = "",
                              variant_name: str = "", aliases: Sequence[str] = ()) -> dict:
    """Build a variant from its config entry (``layers`` or ``duplicate`` / ``remove``; a ``select`` entry with
    its chosen ``layers`` filled in). ``aliases``: the config's variants that are this same model
    (:mod:`layerlens.dedup`), recorded in the provenance."""
    verify(base_dir)
    layers = config_layers(base_dir, spec, base_name=base_name, variant_name=variant_name)
    notes = {"aliases": list(aliases)} if aliases else {}
    if "select" in spec:
        notes["select"] = spec["select"]
    return build_variant(base_dir, out_dir, layers, base_name=base_name, variant_name=variant_name, notes=notes)


def model_from_tensors(config: dict, state: dict):
    """The masked-LM model of a config.json dict with checkpoint tensors ``state``, built in memory.

    transformers' own loading does the work (``from_pretrained`` with a ``state_dict``), so key renames,
    unused tensors (a pooler, an NSP head) and missing ones are handled exactly as for a saved folder. The
    model's parameters may share storage with ``state``. Returns the model and its loading info.
    """
    from transformers import CONFIG_MAPPING, MODEL_FOR_MASKED_LM_MAPPING

    config = CONFIG_MAPPING[config["model_type"]].from_dict(dict(config))
    return load_pretrained(MODEL_FOR_MASKED_LM_MAPPING[type(config)], None, config=config, state_dict=state,
                           output_loading_info=True)


def variant_model(base_dir: str | Path, layers: Sequence[int], *, state: dict | None = None):
    """A probe-only variant: the model :func:`build_variant` would save, built in memory from the base's
    tensors (``state``, if already read) and never written anywhere. Returns the model and its loading info."""
    new_state, new_config = variant_tensors(base_dir, layers, state=state)
    return model_from_tensors(new_config, new_state)


def read_provenance(model_dir: str | Path) -> dict | None:
    path = Path(model_dir) / PROVENANCE_FILE
    return read_json(path) if path.is_file() else None


def source_layers(model_dir: str | Path) -> list[int] | None:
    """For a variant folder, the base layer behind each of its layers; None for a base model."""
    prov = read_provenance(model_dir)
    return list(prov["layers"]) if prov else None
