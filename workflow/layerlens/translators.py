"""Per-layer translators: a tuned lens for masked-LM encoders (``probe.translators``).

The raw probe feeds layer l's state straight into a head that only ever saw the last layer. A translator is one
affine map per layer (``Linear(hidden, hidden)``), initialised to the identity, that moves layer l's states into
the head's input space before the head reads them (tuned-lens, Belrose et al. 2023, for decoders; here for
encoders, with their own MLM head). The gap between the translated and the raw curve says how far each layer's
representation is from what the head reads; what remains below the last layer is what a linear map cannot
recover.

- **Objective**: tuned-lens's: KL(model's own output || head(translator_l(state_l))) at the scored positions,
  the reference being the last layer through the head. One set per probe mode: ``input`` trains on unmasked
  sentences at every own token, ``masked`` on masked sentences (:mod:`layerlens.masking`, the probe's settings,
  drawn from the translators' seed) at the masked positions. The last layer gets none: it is read as is.
- **Frozen**: the encoder and the head (the model's own, or each fitted head it is probed with); only the
  translators train. Each layer's loss is backpropagated on its own, so memory does not grow with depth.
- **Budget and text**: the fitted head's rules: ``steps`` AdamW steps at a constant ``learning_rate``, batches
  of ``batch_size`` sentences from ``sentences`` distinct *train*-split sentences of ``probe.fit.tasks`` (the
  probe's dev sentences excluded; :func:`layerlens.sentences.fit_sentences`), shuffled with ``seed``.
- **Which models**: the base models (``models:``). A variant's layers see other inputs than its base's layers
  at the same depth, so a base's translators do not carry over; variants are read raw only.

Written to ``resources/translators/{model}/``: ``{head}_{mode}.safetensors`` (layer i's ``{i}.weight`` and
``{i}.bias``) and ``translators.json`` (settings, per-layer loss at the first step and over the last 10).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Sequence

from .errors import InputError
from .forward import load_mlm, pad_passes, sentence_passes
from .io import atomic_dir, read_json, write_json
from .manifest import verify, write_manifest
from .masking import Masking
from .modelfiles import weights_sha256
from .sentences import fit_sentences, read_sentences

INFO_FILE = "translators.json"


def translator_file(head: str, mode: str) -> str:
    return f"{head}_{mode}.safetensors"


def identity_translators(n: int, hidden: int):
    """``n`` affine maps of ``hidden`` features, each the identity."""
    import torch

    maps = torch.nn.ModuleList(torch.nn.Linear(hidden, hidden) for _ in range(n))
    with torch.no_grad():
        for m in maps:
            m.weight.copy_(torch.eye(hidden))
            m.bias.zero_()
    return maps


def load_translators(folder: str | Path, head: str, mode: str, device: str = "cpu"):
    """The translators fitted in ``folder`` for ``head`` and ``mode`` as a function (layer, states) -> states
    (the identity at the last layer, which has none); a clear error if that set was not fitted."""
    import torch
    from safetensors.torch import load_file

    path = Path(folder) / translator_file(head, mode)
    if not path.is_file():
        raise InputError(folder, f"no translators for head {head!r} in mode {mode!r} ({path.name}): rerun "
                                 "fit_translators with this head and mode")
    tensors = load_file(str(path))
    n = len({k.split(".")[0] for k in tensors})
    maps = identity_translators(n, tensors["0.weight"].shape[0])
    maps.load_state_dict(tensors)
    maps.to(device).eval()

    def translate(layer: int, h: torch.Tensor) -> torch.Tensor:
        return maps[layer](h) if layer < n else h

    return translate


def fit_translators(model_dir: str | Path, sentences: Sequence[str], out_dir: str | Path, *,
                    heads: dict[str, str | Path | None], modes: Sequence[str], masking: dict | None, steps: int,
                    batch_size: int, learning_rate: float, seed: int, max_length: int = 128,
                    weight_decay: float = 0.0, device: str | None = None, record: dict | None = None) -> dict:
    """Fit one set of translators per head (name -> fitted head folder, None for the model's own) and mode."""
    import torch
    from safetensors.torch import save_file

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    info = {"model_dir": str(model_dir), "model_weights_sha256": weights_sha256(model_dir),
            "objective": "KL(last layer through the head || head(translator(layer))) at the scored positions; "
                         "encoder and head frozen; identity initialisation",
            "settings": {"steps": steps, "batch_size": batch_size, "learning_rate": learning_rate, "seed": seed,
                         "max_length": max_length, "weight_decay": weight_decay, "masking": masking},
            "sentences": len(sentences), "sets": {}, "device": device, **(record or {})}
    with atomic_dir(out_dir) as tmp:
        for head, head_dir in heads.items():
            for mode in modes:
                started = time.perf_counter()
                maps, losses = _fit_one(model_dir, head_dir, sentences, mode=mode, masking=masking, steps=steps,
                                        batch_size=batch_size, learning_rate=learning_rate, seed=seed,
                                        max_length=max_length, weight_decay=weight_decay, device=device)
                save_file({k: v.detach().cpu().contiguous() for k, v in maps.state_dict().items()},
                          str(tmp / translator_file(head, mode)), metadata={"format": "pt"})
                tail = max(1, min(10, steps))
                info["sets"][f"{head}_{mode}"] = {
                    "head": head, "mode": mode, "layers": len(maps), "seconds": time.perf_counter() - started,
                    "first_loss": [round(x[0], 4) for x in losses],
                    "final_loss": [round(sum(x[-tail:]) / tail, 4) for x in losses]}
        write_json(tmp / INFO_FILE, info)
        write_manifest(tmp, {"kind": "translators", "model_dir": str(model_dir)})
    return info


def _fit_one(model_dir, head_dir, sentences, *, mode, masking, steps, batch_size, learning_rate, seed, max_length,
             weight_decay, device):
    import numpy as np
    import torch
    from transformers import AutoTokenizer

    model, adapter = load_mlm(model_dir, device, head_dir=head_dir)
    for p in model.parameters():
        p.requires_grad_(False)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    enc = tokenizer(list(sentences), truncation=True, max_length=max_length, return_special_tokens_mask=True)
    spec = None if mode == "input" else Masking.from_settings({**(masking or {}), "seed": seed})
    maps = None
    losses: list[list[float]] = []
    rng = np.random.default_rng(seed)
    order, pos, drawn = rng.permutation(len(sentences)), 0, 0
    for _ in range(steps):
        if pos + batch_size > len(order):
            order, pos = rng.permutation(len(sentences)), 0
        passes = []
        for i in order[pos:pos + batch_size]:
            # a running index seeds each draw's masking: every pass over the text masks it afresh
            sentence, _ = sentence_passes(tokenizer, drawn, enc["input_ids"][i], enc["special_tokens_mask"][i], spec)
            passes += sentence
            drawn += 1
        pos += batch_size
        if not passes:
            continue
        input_ids, attention, keep = pad_passes(tokenizer, passes, device)
        with torch.no_grad():
            hidden = adapter.hidden_states(model, input_ids, attention)
            rows = keep.reshape(-1).nonzero().squeeze(1)
            states = [h.reshape(-1, h.shape[-1]).index_select(0, rows) for h in hidden]
            ref_logp = torch.log_softmax(adapter.mlm_logits(model, states[-1]).float(), -1)
            ref_p = ref_logp.exp()
        if maps is None:
            maps = identity_translators(len(states) - 1, states[0].shape[-1]).to(device)
            optimizer = torch.optim.AdamW(maps.parameters(), lr=learning_rate, weight_decay=weight_decay)
            losses = [[] for _ in maps]
        optimizer.zero_grad(set_to_none=True)
        for layer, m in enumerate(maps):  # one layer's graph at a time
            logp = torch.log_softmax(adapter.mlm_logits(model, m(states[layer])).float(), -1)
            loss = (ref_p * (ref_logp - logp)).sum(-1).mean()
            loss.backward()
            losses[layer].append(loss.item())
        optimizer.step()
    if maps is None:
        raise InputError(model_dir, "no scoreable tokens in the translators' text")
    if not all(math.isfinite(x) for per_layer in losses for x in per_layer[-1:]):
        raise InputError(model_dir, "fitting the translators diverged; lower probe.translators.learning_rate")
    return maps, losses


def fit_translators_to_dir(model_dir, glue_dirs: dict[str, str | Path], probe_sentences_tsv, out_dir, *,
                           heads: dict[str, str | Path | None], settings: dict, modes: Sequence[str],
                           masking: dict | None, model_name: str = "") -> dict:
    """The fit_translators rule: verify inputs, pick the held-apart text, fit every head x mode, write ``out_dir``."""
    verify(model_dir)
    for folder in [*glue_dirs.values(), *(d for d in heads.values() if d is not None)]:
        verify(folder)
    probe_sentences = read_sentences(probe_sentences_tsv)["sentence"].tolist()
    sentences, counts = fit_sentences(glue_dirs, settings["sentences"], settings["seed"], exclude=probe_sentences)
    return fit_translators(model_dir, sentences, out_dir, heads=heads, modes=modes, masking=masking,
                           steps=settings["steps"], batch_size=settings["batch_size"],
                           learning_rate=settings["learning_rate"], seed=settings["seed"],
                           max_length=settings["max_length"], weight_decay=settings["weight_decay"],
                           record={"model": model_name, "tasks": list(glue_dirs), "split": "train",
                                   "sentence_counts": counts,
                                   "heads": {k: None if v is None else str(v) for k, v in heads.items()}})


def read_info(folder: str | Path) -> dict:
    return read_json(Path(folder) / INFO_FILE)
