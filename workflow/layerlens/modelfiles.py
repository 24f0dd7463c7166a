"""What a model folder holds: which files are weights (safetensors only), which are pickles (refused), which are
the tokenizer's. One place for these facts, read by the download, the layer maps, the fitted head and the
tokenization (whose cache key is the tokenizer files' content)."""

from __future__ import annotations

import contextlib
from pathlib import Path

from .errors import InputError
from .io import sha256_file

WEIGHT_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".h5", ".msgpack")
#: every file a Hugging Face tokenizer may be saved as
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt", "vocab.json",
                   "merges.txt", "spm.model", "sentencepiece.bpe.model", "added_tokens.json")
#: files taken from a Hub repo or a local folder: weights (safetensors only), configs, tokenizers, the model card
#: (README.md: a variant's card inherits its licence)
MODEL_PATTERNS = ("*.safetensors", "*.safetensors.index.json", "config.json", "generation_config.json", "*.model",
                  "layer_map.json", "README.md") + TOKENIZER_FILES


def weight_files(model_dir: str | Path) -> list[Path]:
    """The safetensors files of a model folder; refuse pickle-only checkpoints."""
    model_dir = Path(model_dir)
    files = sorted(p for p in model_dir.iterdir() if p.suffix in WEIGHT_SUFFIXES)
    if files:
        return files
    pickles = sorted(p.name for p in model_dir.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise InputError(
            model_dir,
            f"only pickle weights ({', '.join(pickles)}); layerlens loads safetensors only, never a pickle. "
            "Convert the checkpoint once in a trusted environment (load it and call save_pretrained(..., "
            "safe_serialization=True)) or use a Hub revision that ships model.safetensors.",
        )
    raise InputError(model_dir, "no weights (*.safetensors) in the model folder")


def weights_sha256(model_dir: str | Path) -> dict[str, str]:
    """sha256 of each weight file, for provenance records."""
    return {f.name: sha256_file(f) for f in weight_files(model_dir)}


def load_state_dict(model_dir: str | Path) -> dict:
    from safetensors.torch import load_file

    state = {}
    for f in weight_files(model_dir):
        state.update(load_file(str(f)))
    return state


def tokenizer_fingerprint(model_dir: str | Path) -> dict[str, str]:
    """sha256 of each tokenizer file in ``model_dir``: two folders with the same fingerprint tokenize alike."""
    model_dir = Path(model_dir)
    return {f: sha256_file(model_dir / f) for f in TOKENIZER_FILES if (model_dir / f).is_file()}


def load_pretrained(auto_class, model_dir: str | Path | None, **kwargs):
    """``auto_class.from_pretrained`` as every stage loads a model: float32 weights whatever dtype the checkpoint
    was saved in. transformers 5 loads with ``dtype="auto"`` (the config's dtype), so a checkpoint saved in bf16 or
    fp16 would otherwise train with half-precision master weights and probe in half precision; mixed precision is
    autocast's job (the Trainer's ``bf16``), not the stored weights'. ``model_dir`` None: from ``config`` and
    ``state_dict`` in ``kwargs`` (a model built in memory)."""
    import torch

    return auto_class.from_pretrained(None if model_dir is None else str(model_dir), dtype=torch.float32, **kwargs)


@contextlib.contextmanager
def quiet_head_report(model_dir, head_dir=None):
    """Loading a checkpoint whose masked-LM head is replaced by a fitted one: transformers' load report (a table of
    the head's weights missing from the checkpoint, "This checkpoint seem corrupted") says nothing wrong there, so
    it is muted and one line says what happens instead."""
    from transformers.utils import logging as hf_logging

    what = f"the head fitted on its last layer ({head_dir})" if head_dir else \
        "a fresh head, to be fitted on its last layer"
    print(f"layerlens: {model_dir} is read through {what}; the checkpoint's own masked-LM head, if any, is not "
          "used (transformers' report of missing head weights is not shown)", flush=True)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
