"""The layer probe: every hidden layer through the model's own masked-LM head.

Kao et al.'s first phenomenon: feed each hidden layer (layer 0 = the embedding output, then 1..L) straight into
the MLM output head, which in pre-training only saw the last layer, and it still reconstructs the input tokens.

**Modes** (``probe.mode``, one or both; each gives its own rows, ``mode`` column):

``input``
    the sentence unmasked; every own token is scored against itself. At the lower layers this is close to
    trivial: layer 0 is the token's own embedding (plus position and LayerNorm), and a decoder tied to the input
    embeddings reads it back by a dot product.
``masked``
    positions hidden as BERT hides them in pre-training (:mod:`layerlens.masking`); each layer's state at a
    masked position is scored against the original token. Layer 0 then holds only the mask token, position and
    segment: its accuracy is the floor, and what the layers add above it they computed from context.

**Readings** (``reading`` column; each with the head it uses, ``head`` column):

``head``
    the layer's state through the MLM head: the model's own (``pretrained``) or one fitted on the last layer
    (``fit-tied`` / ``fit-untied``: decoder tied to the input embeddings or trained apart, ``probe.fit``)
``embeddings`` (head ``none``)
    the control for triviality: the input embedding matrix as the decoder, logits = state @ E^T, no transform,
    no bias (``adapter.token_embeddings``). Rank metrics (top-1, top-5, MRR, rank) do not depend on the scale of
    the state; cross-entropy, entropy and calibration do, and are not calibrated probabilities here.
``translated``
    the state through that layer's fitted affine translator, then the head (:mod:`layerlens.translators`; base
    models with ``probe.translators.enabled``); the last layer is read as is. Its gap to ``head`` says how far
    the layer's representation is from the head's input space.

One forward pass per batch (:mod:`layerlens.forward`) gives every layer; per layer and reading one chunk of
``chunk_tokens`` positions' vocabulary-sized logits exists at a time, whatever the depth. The metrics are those
of :mod:`layerlens.lens_metrics`; ``agree_last`` and ``kl_last`` compare every reading with the model's own
output (the last layer through the head) at the same positions.

``n_tokens`` positions are scored per mode: the sentences' own tokens (input) or the masked ones (masked),
special tokens excluded, and ``[UNK]`` tokens excluded too (no head can give back text its vocabulary lacks;
``n_unk_excluded`` counts them). ``source_layer`` gives, in the same numbering as ``layer``, the base model's
hidden state the layer copies (``layers[i-1] + 1`` for a variant's layer i; 0 for the embedding output).
"""

from __future__ import annotations

from pathlib import Path
from typing import Hashable, Sequence

import pandas as pd

from .errors import InputError
from .families import FamilyAdapter, adapter_for_dir
from .forward import Chunk, Encoded, default_device, load_mlm
from .io import atomic_path
from .layermap import config_layers, source_layers
from .lens_metrics import METRIC_COLUMNS, LayerScores
from .manifest import verify
from .masking import Masking
from .sentences import read_sentences
from .similarity import Similarity, write_similarity
from .translators import load_translators

MODES = ("input", "masked")
COLUMNS = ["model", "mode", "reading", "head", "layer", "source_layer", *METRIC_COLUMNS, "n_tokens",
           "n_unk_excluded", "n_sentences"]


def run_probe(model_dir: str | Path, sentences: Sequence[str], *, model_name: str = "", max_length: int = 128,
              batch_size: int = 32, chunk_tokens: int = 2048, bootstrap: int = 1000, seed: int = 0,
              examples: Sequence[Hashable] | None = None, layers: Sequence[int] | None = None,
              device: str | None = None, head_dir: str | Path | None = None, head_name: str | None = None,
              modes: Sequence[str] = ("input",), masking: Masking | dict | None = None, embeddings: bool = True,
              translator_dir: str | Path | None = None, model=None, also: Sequence = ()) -> pd.DataFrame:
    """Probe every layer of the model in ``model_dir`` on ``sentences``; one row per mode, reading and layer.

    The head is the checkpoint's own (``head`` column: ``pretrained``) or, with ``head_dir``, a fitted one (named
    ``head_name``, default ``fit-tied``). ``modes``: ``input`` and/or ``masked`` (``masking``: a
    :class:`~layerlens.masking.Masking` or its settings). ``embeddings``: add the identity reading.
    ``translator_dir``: add the translated reading from the translators fitted there for this head.
    ``examples`` names the example each sentence comes from, e.g. (task, idx): the bootstrap resamples examples
    (default: each sentence is its own). With ``layers``, the probed model is the variant of ``model_dir`` under
    that layer map, built in memory. ``model``: the model to probe, already loaded (by
    :func:`layerlens.forward.load_mlm`). ``also``: more consumers of the same forward pass on the unmasked input,
    each given every chunk (``add(chunk)``), e.g. :class:`layerlens.similarity.Similarity`; without ``input``
    among the modes, one unmasked pass runs for them alone."""
    import torch
    from transformers import AutoTokenizer

    unknown = sorted(set(modes) - set(MODES))
    if unknown or not modes:
        raise ValueError(f"probe modes are {', '.join(MODES)}; got {list(modes)}")
    device = device or default_device()
    head_name = head_name or ("pretrained" if head_dir is None else "fit-tied")
    masking = masking if isinstance(masking, Masking) or masking is None else Masking.from_settings(masking)
    if model is None:
        model, adapter = load_mlm(model_dir, device, head_dir=head_dir, layers=layers)
    else:
        adapter = adapter_for_dir(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    tables = []
    passes = list(modes) + (["input"] if also and "input" not in modes else [])
    for mode in passes:
        scored = mode in modes
        encoded = Encoded(tokenizer, sentences, max_length,
                          masking=(masking or Masking()) if mode == "masked" else None)
        translators = None if translator_dir is None or not scored else load_translators(
            translator_dir, head_name, mode, device=device)
        readings = _Readings(model, adapter, len(sentences), embeddings=embeddings, translators=translators)
        consumers = ([readings] if scored else []) + ([c.add for c in also] if mode == "input" else [])
        with torch.inference_mode():
            for chunk in encoded.chunks([(model, adapter)], batch_size=batch_size, chunk_tokens=chunk_tokens,
                                        device=device, desc=f"probe {model_name} ({mode})"):
                for consume in consumers:
                    consume(chunk)
        if not scored:
            continue
        if not readings.scores:
            raise InputError(model_dir, "nothing to probe: no sentences, or none with a token besides special "
                                        "ones and [UNK]")
        sources = _source_layers(model_dir, layers, readings.n_layers)
        for reading, scores in readings.scores.items():
            rows = scores.rows(bootstrap=bootstrap, seed=seed, clusters=examples)
            tables.append(pd.DataFrame([{
                "model": model_name, "mode": mode, "reading": reading,
                "head": "none" if reading == "embeddings" else head_name, "layer": layer,
                "source_layer": sources[layer], "n_unk_excluded": encoded.n_unk_excluded, **row}
                for layer, row in enumerate(rows)], columns=COLUMNS))
    return pd.concat(tables, ignore_index=True)


class _Readings:
    """Consumes chunks: every reading of every layer, one layer's vocabulary logits at a time."""

    def __init__(self, model, adapter: FamilyAdapter, n_sentences: int, *, embeddings: bool, translators=None):
        self.model, self.adapter, self.n_sentences = model, adapter, n_sentences
        self.decoders = {"head": lambda layer, h: adapter.mlm_logits(model, h)}
        if embeddings:
            import torch

            with torch.inference_mode():
                table = adapter.token_embeddings(model)
            if table is not None:
                self.decoders["embeddings"] = lambda layer, h: h @ table.T
        if translators is not None:
            self.decoders["translated"] = lambda layer, h: adapter.mlm_logits(model, translators(layer, h))
        self.scores: dict[str, LayerScores] = {}
        self.n_layers = 0

    def __call__(self, chunk: Chunk) -> None:
        import torch

        n_layers = len(chunk.states[0])
        if not self.scores:
            self.n_layers = n_layers
            self.scores = {name: LayerScores(n_layers, self.n_sentences) for name in self.decoders}
        last_logp = torch.log_softmax(self.adapter.mlm_logits(self.model, chunk.hidden(n_layers - 1)).float(), -1)
        reference = (last_logp, last_logp.exp(), last_logp.argmax(-1))
        for layer in range(n_layers):
            h = chunk.hidden(layer)
            for name, decode in self.decoders.items():
                raw = name == "head" or (name == "translated" and layer == n_layers - 1)
                logp = last_logp if raw and layer == n_layers - 1 else torch.log_softmax(decode(layer, h).float(), -1)
                self.scores[name].add(layer, logp, chunk.target, reference, chunk.sentence)


def _source_layers(model_dir, layers: Sequence[int] | None, n_hidden: int) -> list[int]:
    layers = source_layers(model_dir) if layers is None else layers
    if layers is None:
        return list(range(n_hidden))
    return [0] + [s + 1 for s in layers]


def probe_to_file(model_dir, sentences_tsv, out_csv, *, model_name: str, settings: dict, seed: int = 0,
                  variant: dict | None = None, base_name: str = "", heads: dict[str, str | Path] | None = None,
                  translator_dir: str | Path | None = None, similarity_csv: str | Path | None = None,
                  cka: bool = True) -> pd.DataFrame:
    """The probe rule: verify the model (and fitted heads, translators) folders, probe, write the CSV. ``seed``
    seeds the bootstrap (``statistics.seed``), which resamples the examples of the sentence table (task, idx).
    ``settings``: the ``probe`` config (``mode``, ``masking``, sizes).

    With ``variant`` (a probe-only variant's config entry), ``model_dir`` is its base and the variant is built
    in memory from it; nothing is written but the CSV. ``heads`` (name -> folder: ``fit-tied``, ``fit-untied``)
    reads every layer through each of those fitted heads instead of the model's own; the identity reading is
    added once. ``translator_dir``: the translated reading too, for each head. With ``similarity_csv``, the same
    (unmasked) forward pass also measures the layer similarity (:mod:`layerlens.similarity`; ``cka``: with the
    CKA matrix) and writes it there.
    """
    verify(model_dir)
    for folder in [*(heads or {}).values(), translator_dir]:
        if folder is not None:
            verify(folder)
    sentences = read_sentences(sentences_tsv)
    layers = None if variant is None else config_layers(model_dir, variant, base_name=base_name,
                                                        variant_name=model_name)
    examples = list(zip(sentences["task"], sentences["idx"]))
    similarity = Similarity(len(sentences), cka=cka) if similarity_csv is not None else None
    tables = []
    for i, (head_name, head_dir) in enumerate((heads or {"pretrained": None}).items()):
        tables.append(run_probe(
            model_dir, sentences["sentence"].tolist(), layers=layers, examples=examples, model_name=model_name,
            max_length=settings["max_length"], batch_size=settings["batch_size"],
            chunk_tokens=settings["chunk_tokens"], bootstrap=settings["bootstrap"], seed=seed, head_dir=head_dir,
            head_name=head_name, modes=modes_of(settings), masking=settings.get("masking"), embeddings=i == 0,
            translator_dir=translator_dir, also=[similarity] if similarity is not None and i == 0 else ()))
    table = pd.concat(tables, ignore_index=True)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    if similarity is not None:
        write_similarity(similarity.table(model_name, bootstrap=settings["bootstrap"], seed=seed,
                                          clusters=examples), similarity_csv)
    return table


def modes_of(settings: dict) -> list[str]:
    """``probe.mode`` as a list (the config takes one mode or a list)."""
    mode = settings.get("mode", "input")
    return [mode] if isinstance(mode, str) else list(mode)
