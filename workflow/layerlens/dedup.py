"""Identical variants: one model, one experiment.

Two variants of a base are the same model when their *effective* layer maps agree: the map after the family's own
rules (:meth:`~layerlens.families.base.FamilyAdapter.effective_layers`). In most families that is the map itself,
and sweeps still overlap: ``duplicate_top`` with k=1 is ``dup{L-1}``, ``duplicate_bottom`` with k=1 is ``dup0``,
``duplicate_top`` and ``duplicate_bottom`` with k=L are one model, ``skip_block`` "a-a" is ``rm{a}``, and a shuffle
may draw the base's own order. In ALBERT, whose layers share their weights,
it is the depth alone: every single-layer duplication is the same model, and any map of the base's own depth
(``middle_repeat``, a ``duplicate`` and a ``remove`` together) is the base.

:func:`mark_identical`, part of the config check, groups each base's variants by effective map. A group's
canonical model is the base if the base is in it, else its first fine-tuned variant, else its first variant
(config order: explicit variants, then sweeps). Every other member gets ``same_as: <canonical>`` in its config
entry and is never planned as a job of its own (:func:`layerlens.grid.same_as`): the canonical model is built,
probed and fine-tuned once; the provenance of a built variant lists its aliases, and ``python -m layerlens.config``
and the report's variants table say which names are one model and why. A variant identical to its base is not
run at all: its results are the base's.

Only the layer map is compared: two entries that differ in any other option a variant takes (anything but how the
map is written, ``finetune`` and ``same_as``: :func:`options`) are different experiments, even on one map.

The family's rules need the base's config.json (a local folder, or a model already downloaded); before a Hub model
is downloaded only equal layer maps are found. Variants whose layers are chosen from the base's similarity
(``select``) are compared at report time, once their maps are chosen (:func:`identical_to`,
:mod:`layerlens.report.variants`).
"""

from __future__ import annotations

import json
from typing import Sequence

from .layermap import resolve_layers

#: the keys of a variant entry that say which layer map it has, or that do not change the model it is
MAP_KEYS = frozenset({"base", "layers", "duplicate", "remove", "select", "finetune", "same_as"})


def options(spec: dict) -> str:
    """Everything else a variant entry sets, canonically (variants identical in their maps but not in these are
    different experiments)."""
    return json.dumps({k: v for k, v in spec.items() if k not in MAP_KEYS}, sort_keys=True)


def mark_identical(config: dict, bases: dict) -> list[tuple[str, str, str]]:
    """Set ``same_as`` on every variant that is the same model as its base or an earlier variant (any earlier
    ``same_as`` is recomputed). ``bases``: base -> (depth or None, (adapter, config.json, folder) or None), as the
    config check found them. Returns ``(alias, canonical, why)`` for each alias."""
    variants = config.get("variants", {})
    for spec in variants.values():
        spec.pop("same_as", None)
    found = []
    for base, (depth, at_hand) in bases.items():
        if depth is None:
            continue  # the depth is unknown until the download: nothing can be compared
        adapter, model_config = at_hand[:2] if at_hand else (None, None)
        raw = {base: list(range(depth))}
        groups: dict[tuple, list[str]] = {}
        for name in [base] + [v for v, s in variants.items() if s["base"] == base and "select" not in s]:
            if name != base:
                raw[name] = resolve_layers(variants[name], depth)
            key = adapter.effective_layers(model_config, raw[name]) if adapter else tuple(raw[name])
            groups.setdefault((key, options(variants.get(name, {}))), []).append(name)
        for members in groups.values():
            canonical = members[0] if members[0] == base else next(
                (m for m in members if variants[m].get("finetune", True)), members[0])
            for m in members:
                if m != canonical:
                    variants[m]["same_as"] = canonical
                    found.append((m, canonical, reason(adapter, raw[m], raw[canonical])))
    return found


def reason(adapter, layers: Sequence[int], other: Sequence[int]) -> str:
    """Why two identical variants are one model: their maps are equal, or the family's rules make them so."""
    if list(layers) == list(other):
        return "the same layer map"
    return f"the same model under {adapter.name}'s rules: {adapter.same_model_rule}"


def identical_to(adapter, model_config: dict, layers: Sequence[int], base: str,
                 others: dict[str, Sequence[int]]) -> str | None:
    """``base`` if ``layers`` build the base itself, else the first of ``others`` (name -> layer map) that builds
    the same model, else None."""
    key = adapter.effective_layers(model_config, layers)
    if key == adapter.effective_layers(model_config, range(adapter.depth(model_config))):
        return base
    return next((name for name, other in others.items() if adapter.effective_layers(model_config, other) == key),
                None)
