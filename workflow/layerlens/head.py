"""A fitted masked-LM head, for encoders that publish none (``models.<name>.probe: {head: fit}``).

Sentence encoders, fine-tuned encoders and ELECTRA discriminators ship no MLM head, so the probe has nothing to
read their layers with. :func:`fit_head` trains one, and makes the paper's premise explicit: the output layer
only ever sees the last layer.

- **The head.** The family's own MLM head class (``AutoModelForMaskedLM`` on the checkpoint), freshly
  initialised with the family's own initialisation under ``seed`` (a pretrained head, if the checkpoint has
  one, is replaced). The transform, its LayerNorm and the output bias are trained (every head parameter the
  adapter names). The decoder (``probe.fit.tie_decoder``) is either *tied* to the input embeddings and not
  trained, as in the published checkpoints, or *untied*: a vocabulary matrix of its own, initialised by the
  family (unrelated to the input embeddings) and trained with the rest. A tied decoder makes the lower layers
  easy to read back (layer 0 is the token's own embedding); the untied one measures what that tie contributes.
  ``both`` fits one of each (``resources/heads/{model}/tied`` and ``.../untied``).
- **The encoder** is frozen and in eval mode (no dropout); only the head gets gradients.
- **The objective** (``probe.fit.objective``), read from the last hidden layer through the head:
  ``reconstruct`` (the default) feeds the sentence unmasked and takes the cross-entropy of the input token at
  every position (special tokens, padding and ``[UNK]`` excluded, as the probe excludes them): the probe's own
  task, at the last layer only.
  ``mlm`` is BERT's pre-training objective: ``mlm_probability`` of the tokens selected (at least one per
  batch; never an ``[UNK]``), 80% of those masked, 10% replaced at random, 10% kept, the loss on the selected
  positions only.
  ``reconstruct`` is the default because it is what the probe measures and what a pretrained head does on
  unmasked input; a frozen sentence encoder's last layer carries little for predicting *masked* tokens, so
  in a 150-step budget ``mlm`` learns mostly token frequencies (all-MiniLM-L6-v2: last-layer top-1 about 0.1
  under ``mlm`` against about 0.8 under ``reconstruct``; see ``examples/minilm/README.md``).
- **The text** is held apart from the probe's evaluation sentences (:func:`layerlens.sentences.fit_sentences`):
  sentences from the *train* splits of ``probe.fit.tasks`` (the probe reads *dev* splits), with any sentence
  that is also a probe sentence dropped, shuffled with ``seed``, the first ``sentences`` of them. Batches go
  through them in order, reshuffled each pass, for ``steps`` AdamW steps at a constant learning rate.

The result, ``head.safetensors`` (the head's tensors only) and ``head.json`` (settings, sentence counts,
final loss, timings), sits in ``resources/heads/{model}/`` beside the model; a rerun reuses it. Variants of a
base reuse the base's fitted head: like a pretrained head, it saw only the base's last layer.
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Sequence

from .errors import InputError
from .families import adapter_for_dir
from .io import atomic_dir, read_json, write_json
from .manifest import verify, write_manifest
from .masking import mask_tokens
from .modelfiles import load_pretrained, quiet_head_report, weights_sha256
from .sentences import fit_sentences, read_sentences

HEAD_FILE = "head.safetensors"
INFO_FILE = "head.json"
OBJECTIVES = {
    "reconstruct": "give back the input tokens from the last layer: nothing masked, loss on every token "
                   "(special tokens, padding and [UNK] excluded); encoder frozen",
    "mlm": "BERT's masked LM on the last layer: {p:.0%} of the tokens selected (80% mask token, 10% random, "
           "10% kept), loss on the selected ones; encoder frozen",
}


# --- the head --------------------------------------------------------------------------------------------


def head_tensors(model, adapter) -> dict:
    """The head's own tensors by state-dict name: every head key except a decoder tied to the input embeddings."""
    embed = model.get_input_embeddings().weight
    return {k: v for k, v in model.state_dict().items()
            if adapter.is_head_key(k) and v.data_ptr() != embed.data_ptr()}


def fresh_head(model, adapter, seed: int, tie_decoder: bool = True) -> list[str]:
    """Replace the head of ``model`` with the family's own initialisation under ``seed``; tie the decoder to the
    input embeddings, or give it its own matrix (``tie_decoder=False``, from the same fresh initialisation).

    The fresh values come from a model built from the same config with the seed set, so they are what the
    family's ``_init_weights`` gives, whatever the checkpoint held. Returns the names of the tensors replaced.
    """
    import torch
    from transformers import AutoModelForMaskedLM

    _set_decoder(model, tie_decoder)
    torch.manual_seed(seed)
    fresh = AutoModelForMaskedLM.from_config(model.config, dtype=torch.float32)
    fresh_state = fresh.state_dict()
    names = sorted(head_tensors(model, adapter))
    with torch.no_grad():
        state = model.state_dict()
        for name in names:
            state[name].copy_(fresh_state[name])
    return names


def _set_decoder(model, tied: bool) -> None:
    """Tie the output embeddings to the input embeddings where the head has a vocabulary decoder, or (``tied``
    False) give the decoder a matrix of its own (a copy, to be overwritten)."""
    import torch

    out, inp = model.get_output_embeddings(), model.get_input_embeddings()
    has_decoder = out is not None and getattr(out, "weight", None) is not None and out.weight.shape == inp.weight.shape
    if tied:
        if has_decoder:
            out.weight = inp.weight
        return
    if not has_decoder:
        raise InputError(getattr(model.config, "_name_or_path", "model"),
                         "this head multiplies by the input embeddings and has no decoder of its own to untie; "
                         "set probe.fit.tie_decoder: true")
    out.weight = torch.nn.Parameter(inp.weight.detach().clone())
    model.config.tie_word_embeddings = False


def apply_head(model, adapter, head_dir: str | Path) -> None:
    """Load a fitted head into ``model``, replacing whatever head it had; it must cover the whole head."""
    import torch
    from safetensors.torch import load_file

    path = Path(head_dir) / HEAD_FILE
    if not path.is_file():
        raise InputError(head_dir, f"no {HEAD_FILE}: not a fitted head (rerun the fit_head rule)")
    tensors = load_file(str(path))
    info = Path(head_dir) / INFO_FILE
    _set_decoder(model, read_json(info).get("settings", {}).get("tie_decoder", True) if info.is_file() else True)
    state = model.state_dict()
    own = head_tensors(model, adapter)
    unknown = sorted(set(tensors) - set(own))
    uncovered = sorted(set(own) - set(tensors))
    if unknown or uncovered:
        raise InputError(path, "does not fit this model's masked-LM head ("
                         + (f"unknown: {', '.join(unknown[:4])}" if unknown else f"lacks: {', '.join(uncovered[:4])}")
                         + "); it was fitted for another architecture: delete it and rerun fit_head")
    with torch.no_grad():
        for name, tensor in tensors.items():
            if state[name].shape != tensor.shape:
                raise InputError(path, f"{name} has shape {tuple(tensor.shape)}, the model's is "
                                       f"{tuple(state[name].shape)}: fitted for another model size")
            state[name].copy_(tensor)


# --- fitting ---------------------------------------------------------------------------------------------


def fit_head(model_dir: str | Path, sentences: Sequence[str], out_dir: str | Path, *, steps: int, batch_size: int,
             learning_rate: float, seed: int, max_length: int = 128, objective: str = "reconstruct",
             mlm_probability: float = 0.15, tie_decoder: bool = True,
             weight_decay: float = 0.0, device: str | None = None, record: dict | None = None) -> dict:
    """Fit a fresh MLM head on the last layer of the frozen encoder in ``model_dir``; write it to ``out_dir``."""
    import numpy as np
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    adapter = adapter_for_dir(model_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, not {objective!r}")
    if objective == "mlm" and tokenizer.mask_token_id is None:
        raise InputError(model_dir, "the tokenizer has no mask token, which the masked-LM objective needs")
    with quiet_head_report(model_dir):
        model = load_pretrained(AutoModelForMaskedLM, model_dir)
    trained = fresh_head(model, adapter, seed, tie_decoder)
    model.to(device).eval()
    names = set(trained)
    params = list({id(p): p for n, p in model.named_parameters(remove_duplicate=False) if n in names}.values())
    for p in model.parameters():
        p.requires_grad_(False)
    for p in params:
        p.requires_grad_(True)
    optimizer = torch.optim.AdamW(params, lr=learning_rate, weight_decay=weight_decay)

    vocab_size = min(len(tokenizer), model.get_input_embeddings().weight.shape[0])
    enc = tokenizer(list(sentences), truncation=True, max_length=max_length, return_special_tokens_mask=True)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    order, pos = rng.permutation(len(sentences)), 0
    losses, accs = [], []
    started = time.perf_counter()
    for _ in range(steps):
        if pos + batch_size > len(order):
            order, pos = rng.permutation(len(sentences)), 0
        idx = order[pos:pos + batch_size]
        pos += batch_size
        batch = tokenizer.pad({k: [enc[k][i] for i in idx] for k in
                               ("input_ids", "attention_mask", "special_tokens_mask")}, return_tensors="pt")
        real = batch["attention_mask"].bool() & ~batch["special_tokens_mask"].bool()
        if tokenizer.unk_token_id is not None:  # no head can give back text the vocabulary lacks: not a target
            real &= batch["input_ids"] != tokenizer.unk_token_id
        if not real.any():  # nothing but [UNK] in this batch
            continue
        if objective == "mlm":
            inputs, selected = mask_tokens(batch["input_ids"], real, tokenizer.mask_token_id, vocab_size,
                                           mlm_probability, gen)
        else:  # reconstruct: the probe's own task, on the last layer
            inputs, selected = batch["input_ids"], real
        with torch.no_grad():
            hidden = adapter.hidden_states(model, inputs.to(device), batch["attention_mask"].to(device))[-1]
        target = batch["input_ids"][selected].to(device)
        logits = adapter.mlm_logits(model, hidden[selected.to(device)])
        loss = torch.nn.functional.cross_entropy(logits.float(), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        accs.append(float((logits.argmax(-1) == target).float().mean()))
    seconds = time.perf_counter() - started
    if not all(math.isfinite(x) for x in losses):
        raise InputError(model_dir, f"fitting the head diverged (loss {losses[-1]}); lower probe.fit.learning_rate")

    tail = max(1, min(10, len(losses)))
    info = {
        "model_dir": str(model_dir),
        "model_weights_sha256": weights_sha256(model_dir),
        "family": adapter.name,
        "objective": objective,
        "objective_text": OBJECTIVES[objective].format(p=mlm_probability),
        "trained_tensors": trained,
        "decoder": "tied to the input embeddings, not trained" if tie_decoder else
                   "untied: its own matrix, from the family's initialisation, trained",
        "settings": {"steps": steps, "batch_size": batch_size, "learning_rate": learning_rate, "seed": seed,
                     "max_length": max_length, "objective": objective, "mlm_probability": mlm_probability,
                     "weight_decay": weight_decay, "tie_decoder": tie_decoder},
        "sentences": len(sentences),
        "final_loss": float(np.mean(losses[-tail:])),
        "final_accuracy": float(np.mean(accs[-tail:])),  # top-1 at the loss positions, last steps
        "first_loss": losses[0] if losses else None,
        "loss_curve": [round(x, 4) for x in losses],
        "seconds": seconds,
        "device": device,
        **(record or {}),
    }
    with atomic_dir(out_dir) as tmp:
        save_file({k: v.detach().cpu().clone().contiguous() for k, v in head_tensors(model, adapter).items()},
                  str(tmp / HEAD_FILE), metadata={"format": "pt"})
        write_json(tmp / INFO_FILE, info)
        write_manifest(tmp, {"kind": "head", "model_dir": str(model_dir)})
    return info


def fit_head_to_dir(model_dir, glue_dirs: dict[str, str | Path], probe_sentences_tsv, out_dir, *, settings: dict,
                    model_name: str = "", tie_decoder: bool = True) -> dict:
    """The fit_head rule: verify inputs, pick the held-apart text, fit, write ``out_dir``."""
    verify(model_dir)
    for folder in glue_dirs.values():
        verify(folder)
    probe_sentences = read_sentences(probe_sentences_tsv)["sentence"].tolist()
    sentences, counts = fit_sentences(glue_dirs, settings["sentences"], settings["seed"], exclude=probe_sentences)
    return fit_head(model_dir, sentences, out_dir, steps=settings["steps"], batch_size=settings["batch_size"],
                    learning_rate=settings["learning_rate"], seed=settings["seed"],
                    max_length=settings["max_length"], objective=settings["objective"],
                    mlm_probability=settings["mlm_probability"], tie_decoder=tie_decoder,
                    weight_decay=settings["weight_decay"],
                    record={"model": model_name, "tasks": list(glue_dirs), "split": "train",
                            "sentence_counts": counts})
