"""The variants table: every variant of the config, its layer map, how its layers were chosen, and which
variants are one model (:mod:`layerlens.dedup`).

Identical variants are found in two places. For every variant whose layer map is known from the config, the
config check set ``same_as``, and that variant was never run. For variants whose layers were chosen from the
base's similarity (``select``), the map exists only once the select_layers job has run; here, after the fact,
each is compared with its base and with every variant that was run, under the family's rules: an identical one
was run anyway (its jobs were planned before its layers were known), and the table says so.
"""

from __future__ import annotations

import pandas as pd

from ..dedup import identical_to, options, reason
from ..families import adapter_for_dir, read_model_config
from ..io import read_json, write_text
from ..layermap import describe, format_layers, resolve_layers
from .tables import latex, markdown, write_csv

COLUMNS = ["variant", "base", "layers", "n_layers", "kind", "chosen_by", "finetune", "same_as", "why"]


def variants_table(variants: dict, selected_json: dict, base_dirs: dict) -> pd.DataFrame:
    """``variants``: the validated config's entries (``same_as`` included); ``selected_json``: variant -> its
    select_layers output; ``base_dirs``: base -> its model folder (for its family's rules)."""
    bases = {b: (adapter_for_dir(d), read_model_config(d)) for b, d in base_dirs.items()}
    layers, rows = {}, {}
    for name, spec in variants.items():  # first every map the config gives
        adapter, config = bases[spec["base"]]
        layers[name] = read_json(selected_json[name])["layers"] if "select" in spec else \
            resolve_layers(spec, adapter.depth(config))
    run: dict[str, dict] = {}  # base -> {variant: map} of the variants that were run, in config order
    for name, spec in sorted(variants.items(), key=lambda kv: "select" in kv[1]):  # known maps first
        base = spec["base"]
        adapter, config = bases[base]
        depth = adapter.depth(config)
        chosen_by, same = "", spec.get("same_as")
        if "select" in spec:
            sel, rec = spec["select"], read_json(selected_json[name])
            what = (f"{sel['k']} layer(s) of lowest Block Influence" if sel["by"] == "block_influence" else
                    f"the block of {sel['k']} layer(s) of smallest angular distance")
            chosen_by = f"{sel['action']} {what}: {format_layers(rec['chosen'])}"
            alike = {v: m for v, m in run.get(base, {}).items() if options(variants[v]) == options(spec)}
            same = identical_to(adapter, config, layers[name], base, alike)
            same = None if same == base and options(spec) != options({}) else same
        if same is None:
            run.setdefault(base, {})[name] = layers[name]
        other = list(range(depth)) if same == base else layers.get(same)
        why = "" if same is None else reason(adapter, layers[name], other)
        if same is not None and "select" in spec:
            why += " (found once its layers were chosen: it was run anyway)"
        rows[name] = {"variant": name, "base": base, "layers": format_layers(layers[name]),
                      "n_layers": len(layers[name]), "kind": describe(layers[name], depth)["kind"],
                      "chosen_by": chosen_by, "finetune": bool(spec.get("finetune", True)), "same_as": same or "",
                      "why": why}
    return pd.DataFrame([rows[name] for name in variants], columns=COLUMNS)


def write_variants_report(table: pd.DataFrame, out_csv, out_md, out_tex) -> None:
    write_csv(table, out_csv)
    shown = table.set_index("variant")
    n_same = int((table["same_as"] != "").sum())
    lines = ["# Variants", "",
             "Every variant of the config: its layer map (the base layer behind each of its layers), what the map "
             "does, how its layers were chosen, whether it is fine-tuned, and whether it is the same model as another "
             "(`same_as`: the same effective layer map under its family's rules). A variant the same as another is "
             "built, probed and fine-tuned once, under that other name; one the same as its base is not run at all: "
             "its results are the base's.", "",
             f"{n_same} of {len(table)} variant(s) are the same model as another." if n_same else
             "No two variants are the same model.", "", markdown(shown), ""]
    write_text(out_md, "\n".join(lines))
    write_text(out_tex, latex(shown[["base", "layers", "kind", "same_as"]], label="tab:variants",
                              caption="Variants: layer map (base layer of each layer), what it does, and the model "
                                      "each is identical to, if any."))
