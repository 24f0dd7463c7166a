"""Sweeps: families of variants generated from one compact config entry (``sweeps:``), one kind each.

Depth (Kao et al.'s experiments): ``duplicate_each`` / ``remove_each`` (one variant per layer, ``dup{i}`` /
``rm{i}``), ``duplicate_block`` (a block repeated right after itself, ``dupblock{a}-{b}``), ``duplicate_top`` /
``duplicate_bottom`` (the top / bottom k layers as such a block, ``duptop{k}`` / ``dupbottom{k}``), ``interleave``
(every n-th layer repeated in place, ``interleave{n}``).

Order (what a layer map can express of "Transformer Layers as Painters", Sun et al. 2024, whose code takes the
open interval between ``start_layer`` and ``L - start_layer``; here any block ``"a-b"`` of ``blocks``):

- ``reverse_block``: the block run backwards (``rev{a}-{b}``);
- ``shuffle_block``: the block in a seeded random order, one variant per seed (``shuf{a}-{b}s{seed}``): the order
  is ``random.Random(seed).shuffle`` of the block, the draw the Painters code makes for the same block and seed
  (``random.seed(seed); random.shuffle(...)``);
- ``skip_block``: the block left out (``skip{a}-{b}``);
- ``middle_repeat``: every layer of the block replaced by its middle layer ``(a + b) // 2`` (``midrep{a}-{b}``;
  for the Painters' symmetric blocks that is their ``int(L / 2)``).

Their ``loop_parallel`` (layers run side by side, outputs averaged) is not a layer map and is not offered.

Similarity (chosen from the base's own layer similarity, :mod:`layerlens.similarity`), one variant per ``k``:

- ``remove_by_influence`` / ``duplicate_by_influence`` (``bi-rm{k}`` / ``bi-dup{k}``): the k layers of lowest Block
  Influence (ShortGPT: 1 - cos(input, output), averaged over tokens), removed / each repeated in place;
- ``remove_by_angular`` / ``duplicate_by_angular`` (``ang-rm{k}`` / ``ang-dup{k}``): the block of k consecutive
  layers whose input and output are closest in angular distance (Gromov et al.: arccos(cos) / pi, averaged over
  tokens), removed / repeated right after itself.

Ties go to the lower layer; a choice the family cannot express (ModernBERT's layer 0, say) is passed over for the
next best. Such a variant's config entry holds ``select: {by, k, action}`` instead of ``layers``.

Why similarity-chosen layers are resolved inside a job, not when the DAG is planned: the similarity is measured on
the base (by its probe job), but the DAG is planned from the config before anything runs, and the SLURM pre-flight,
``snakemake -n`` job counts and the tests all rely on that static DAG. So the variants' *names* follow from the
config alone (``{base}-bi-rm2``) and every job is planned; only their *layer maps* wait for the data. One small
local job (rule ``select_layers``, :func:`select_to_file`) reads the base's similarity table once and writes the
chosen map, with the scores behind it, to ``results/similarity/selected/{variant}.json``; every job that builds,
probes or compares the variant takes that file as input (:func:`with_selected_layers`). A Snakemake checkpoint
would re-plan the DAG mid-run instead, hiding those jobs from a dry run and the cluster pre-flight. The price:
identical variants (:mod:`layerlens.dedup`) are found when the DAG is planned for every other kind, but for these
only once their maps are chosen, so they run even when identical to another model, and the report's variants
table (:mod:`layerlens.report.variants`) says which they are.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Callable, Sequence

from .families import adapter_for_dir, read_model_config
from .io import read_json, write_json
from .layermap import check_layers, format_layers, parse_layers, sugar_layers

#: the options each kind takes (besides ``base`` and ``finetune``)
OPTIONS = {"duplicate_each": ("layers",), "remove_each": ("layers",), "duplicate_block": ("blocks",),
           "duplicate_top": ("k",), "duplicate_bottom": ("k",), "interleave": ("every",),
           "reverse_block": ("blocks",), "shuffle_block": ("blocks", "seeds"), "skip_block": ("blocks",),
           "middle_repeat": ("blocks",), "remove_by_influence": ("k",), "duplicate_by_influence": ("k",),
           "remove_by_angular": ("k",), "duplicate_by_angular": ("k",)}
#: similarity kinds: (statistic, action)
SELECT = {"remove_by_influence": ("block_influence", "remove"), "duplicate_by_influence": ("block_influence",
                                                                                          "duplicate"),
          "remove_by_angular": ("angular", "remove"), "duplicate_by_angular": ("angular", "duplicate")}
ORDER = ("reverse_block", "shuffle_block", "skip_block", "middle_repeat")


def sweep(kind: str, num_layers: int, *, layers=None, blocks=None, k=None, every=None,
          seeds=None) -> list[tuple[str, list[int] | dict]]:
    """The variants of one sweep entry: ``[(name suffix, layer map), ...]``; for a similarity kind the layer map
    is a selection ``{"by", "k", "action"}``, resolved later (:func:`select`)."""
    L = num_layers
    out: list[tuple[str, list[int] | dict]] = []
    if kind in SELECT:
        if not k:
            raise ValueError(f"{kind} needs `k`, e.g. [1, 2]")
        by, action = SELECT[kind]
        for size in k:
            selection = {"by": by, "k": size, "action": action}
            check_selection(selection, L)
            short = {"remove": "rm", "duplicate": "dup"}[action]
            out.append((f"{'bi' if by == 'block_influence' else 'ang'}-{short}{size}", selection))
        return out
    if kind in ("duplicate_each", "remove_each"):
        for i in list(range(L)) if layers is None else list(layers):
            if not 0 <= i < L:
                raise ValueError(f"layer {i} is out of range: the base has {L} layers (0-{L - 1})")
            out.append((f"dup{i}", sugar_layers(L, duplicate=[i])) if kind == "duplicate_each"
                       else (f"rm{i}", sugar_layers(L, remove=[i])))
    elif kind in ("duplicate_block", "duplicate_top", "duplicate_bottom"):
        if kind == "duplicate_block":
            spans = _spans(kind, blocks, L)
            names = [f"dupblock{a}-{b}" for a, b in spans]
        else:
            if not k:
                raise ValueError(f"{kind} needs `k`, e.g. [1, 2]")
            for size in k:
                if not 1 <= size <= L:
                    raise ValueError(f"k={size} is out of range for {L} layers")
            top = kind == "duplicate_top"
            spans = [(L - size, L - 1) if top else (0, size - 1) for size in k]
            names = [f"duptop{size}" if top else f"dupbottom{size}" for size in k]
        for (a, b), name in zip(spans, names):
            out.append((name, list(range(0, b + 1)) + list(range(a, b + 1)) + list(range(b + 1, L))))
    elif kind == "interleave":
        if not every:
            raise ValueError("interleave needs `every`, e.g. [2]")
        for n in every:
            out.append((f"interleave{n}", sugar_layers(L, duplicate=[i for i in range(L) if (i + 1) % n == 0])))
    elif kind in ORDER:
        if kind == "shuffle_block" and not seeds:
            raise ValueError("shuffle_block needs `seeds`, e.g. [0, 1, 2]")
        for a, b in _spans(kind, blocks, L):
            head, block, tail = list(range(a)), list(range(a, b + 1)), list(range(b + 1, L))
            if kind == "reverse_block":
                out.append((f"rev{a}-{b}", head + block[::-1] + tail))
            elif kind == "skip_block":
                out.append((f"skip{a}-{b}", head + tail))
            elif kind == "middle_repeat":
                out.append((f"midrep{a}-{b}", head + [(a + b) // 2] * len(block) + tail))
            else:
                for seed in seeds:
                    order = list(block)
                    random.Random(seed).shuffle(order)
                    out.append((f"shuf{a}-{b}s{seed}", head + order + tail))
    else:
        raise ValueError(f"unknown sweep kind {kind!r}")
    for _, layers_ in out:
        check_layers(layers_, L)
    return out


def _spans(kind: str, blocks, L: int) -> list[tuple[int, int]]:
    if not blocks:
        raise ValueError(f"{kind} needs `blocks`, e.g. [\"4-7\"]")
    spans = []
    for b in blocks:
        span = parse_layers(b)
        if span != list(range(span[0], span[-1] + 1)):
            raise ValueError(f"block {b!r} is not one ascending range 'a-b'")
        if span[-1] >= L:
            raise ValueError(f"block {b!r} is out of range: the base has {L} layers (0-{L - 1})")
        spans.append((span[0], span[-1]))
    return spans


# --- similarity-chosen layer maps --------------------------------------------------------------------------


def check_selection(selection: dict, num_layers: int) -> None:
    """A selection's ``k`` must leave a model: at most L - 1 layers removed, L duplicated."""
    k, action = selection["k"], selection["action"]
    limit = num_layers - 1 if action == "remove" else num_layers
    if not 1 <= k <= limit:
        raise ValueError(f"k={k} is out of range: a {num_layers}-layer base can have 1 to {limit} layers {action}d")


def _apply(action: str, chosen: Sequence[int], block: bool, L: int) -> list[int]:
    if action == "remove":
        return sugar_layers(L, remove=chosen)
    if block:
        a, b = chosen[0], chosen[-1]
        return list(range(0, b + 1)) + list(range(a, b + 1)) + list(range(b + 1, L))
    return sugar_layers(L, duplicate=chosen)


def select(table, selection: dict, num_layers: int, check: Callable[[list[int]], None] | None = None) -> dict:
    """The layer map that ``selection`` picks from a model's similarity table
    (:func:`layerlens.similarity.read_similarity`).

    ``check`` raises ``ValueError`` for maps the family cannot express (the adapter's ``check_layer_map``); those
    candidates are passed over. Returns ``layers`` (the map), ``chosen`` (the base layers removed or duplicated),
    the statistic of each candidate looked at, best first, with its bootstrap interval (``candidates``: the chosen
    ones and the next three), so a reader sees how close the runner-up came.
    """
    by, k, action = selection["by"], selection["k"], selection["action"]
    L = num_layers
    check_selection(selection, L)
    if int(table["to_state"].max()) != L:
        raise ValueError(f"the similarity table is of a {int(table['to_state'].max())}-layer model, not of this "
                         f"{L}-layer base")
    lo, hi = ("bi_lo", "bi_hi") if by == "block_influence" else ("angular_lo", "angular_hi")

    def fits(layers):
        try:
            check_layers(layers, L)
            if check is not None:
                check(layers)
            return True
        except ValueError:
            return False

    size = 1 if by == "block_influence" else k
    rows = table[table["n_layers"] == size].sort_values([by, "from_state"], kind="stable")
    chosen: list[int] = []
    candidates = []
    for r in rows.itertuples(index=False):
        here = list(range(r.from_state, r.from_state + size))
        take = (len(chosen) < k if size == 1 else not chosen) and fits(_apply(action, sorted(chosen + here),
                                                                             size > 1, L))
        if take:
            chosen = sorted(chosen + here)
        candidates.append({"layers": format_layers(here), "value": float(getattr(r, by)),
                           "lo": float(getattr(r, lo)), "hi": float(getattr(r, hi)), "chosen": take})
    if len(chosen) < k:
        raise ValueError(f"no {k} layer(s) to {action} that this family can express")
    last = max(i for i, c in enumerate(candidates) if c["chosen"])
    return {"layers": _apply(action, chosen, size > 1, L), "chosen": chosen, "candidates": candidates[:last + 4]}


def select_to_file(base_dir, similarity_csv, out_json, *, variant: str, base: str, selection: dict) -> dict:
    """The select_layers rule: choose ``variant``'s layers from its base's similarity table and write the choice
    with the scores behind it (whether it is the same model as another is for the report to say,
    :mod:`layerlens.report.variants`)."""
    from .similarity import read_similarity

    adapter, config = adapter_for_dir(base_dir), read_model_config(base_dir)
    chosen = select(read_similarity(similarity_csv), selection, adapter.depth(config),
                    check=lambda layers: adapter.check_layer_map(config, layers))
    record = {"variant": variant, "base": base, "select": selection, "layers_spec": format_layers(chosen["layers"]),
              **chosen}
    write_json(out_json, record)
    return record


def with_selected_layers(spec: dict | None, selected_json: str | Path | None) -> dict | None:
    """A variant's config entry with the layers its selection chose (the ``select_layers`` output) filled in;
    any other entry as it is."""
    if spec is None or selected_json is None:
        return spec
    return {**spec, "layers": read_json(selected_json)["layers_spec"]}
