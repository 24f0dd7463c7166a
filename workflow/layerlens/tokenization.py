"""Tokenization of a GLUE task, once per tokenizer *content*, task, data and length.

The tokenize rule writes ``resources/tokenized/{base}/{task}-len{L}/`` for each base model (a base and its
variants share it). Two different bases often share a tokenizer (bert-base-uncased and every model fine-tuned from
it), so the data itself is kept once in a content-addressed store, ``resources/tokenized/.by-content/{key}/``,
where ``key`` hashes the tokenizer files' sha256 (:func:`layerlens.modelfiles.tokenizer_fingerprint`), the GLUE
folder's manifest, the task and the length. A base whose key is already in the store gets hard links to the stored
files (a copy where the file system has none) instead of a second tokenization. No padding is stored: batches are
padded per batch when fine-tuning.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from .errors import InputError
from .families import read_model_config
from .io import atomic_dir, sha256_file, sha256_text
from .manifest import MANIFEST, verify, write_manifest
from .modelfiles import tokenizer_fingerprint
from .tasks import get_task

STORE = ".by-content"


def tokenization_key(glue_dir: str | Path, tokenizer_dir: str | Path, task: str, max_length: int) -> str:
    """What a tokenization depends on: the tokenizer files' content, the data, the task and the length."""
    blob = json.dumps({"tokenizer": tokenizer_fingerprint(tokenizer_dir),
                       "glue": sha256_file(Path(glue_dir) / MANIFEST), "task": task, "max_length": max_length},
                      sort_keys=True)
    return sha256_text(blob)[:16]


def tokenize_task(glue_dir: str | Path, tokenizer_dir: str | Path, out_dir: str | Path, task: str, max_length: int,
                  *, store: str | Path | None = None) -> dict:
    """Tokenize every split of ``task`` (truncation only) into ``out_dir``, through the content-addressed
    ``store`` (default: ``.by-content`` beside the per-base folders). Returns the manifest entry, whose
    ``reused`` says whether the store already held this tokenization."""
    verify(glue_dir)
    verify(tokenizer_dir)
    out_dir = Path(out_dir)
    store = Path(store) if store is not None else out_dir.parent.parent / STORE
    key = tokenization_key(glue_dir, tokenizer_dir, task, max_length)
    shared = store / key
    reused = (shared / MANIFEST).is_file()
    if reused:
        verify(shared)
        print(f"layerlens: {task} tokenized with these tokenizer files before: reusing {shared}", flush=True)
    else:
        _tokenize(glue_dir, tokenizer_dir, shared, task, max_length, key)
    info = {k: v for k, v in verify(shared).items() if k != "files"}
    with atomic_dir(out_dir) as tmp:
        for f in sorted(shared.rglob("*")):
            if f.is_file() and f.name != MANIFEST:
                target = tmp / f.relative_to(shared)
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(f, target)
                except OSError:  # no hard links here: a copy
                    shutil.copy2(f, target)
        entry = write_manifest(tmp, {**info, "store": str(shared), "reused": reused,
                                     "tokenizer_dir": str(tokenizer_dir)})
    return entry


def _tokenize(glue_dir, tokenizer_dir, shared: Path, task: str, max_length: int, key: str) -> None:
    from datasets import load_from_disk
    from transformers import AutoTokenizer

    spec = get_task(task)
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    check_tokenizer(tokenizer, tokenizer_dir)
    dsd = load_from_disk(str(glue_dir), keep_in_memory=True)

    def encode(batch):
        enc = tokenizer(*[batch[c] for c in spec.text_columns], truncation=True, max_length=max_length)
        enc["length"] = [len(x) for x in enc["input_ids"]]
        return enc

    tokenized = dsd.map(encode, batched=True, remove_columns=list(spec.text_columns), keep_in_memory=True,
                        desc=f"tokenize {task}")
    info = {"kind": "tokenized", "key": key, "task": task, "max_length": max_length,
            "tokenizer": tokenizer_fingerprint(tokenizer_dir),
            "glue_manifest_sha256": sha256_file(Path(glue_dir) / MANIFEST),
            "rows": {s: len(tokenized[s]) for s in tokenized},
            "truncated": {s: int(np.sum(np.asarray(tokenized[s]["length"]) >= max_length)) for s in tokenized}}
    with atomic_dir(shared) as tmp:
        tokenized.save_to_disk(str(tmp))
        write_manifest(tmp, info)


def check_tokenizer(tokenizer, where) -> None:
    """The tokenizer must fit the model's embeddings (a mismatched pair overflows token ids)."""
    vocab_size = read_model_config(where).get("vocab_size")
    if vocab_size is not None and len(tokenizer) > vocab_size:
        raise InputError(where, f"the tokenizer has {len(tokenizer)} tokens but the model's vocab_size is "
                                f"{vocab_size}: they do not belong together (token ids would overflow the "
                                "embeddings). Use the tokenizer files that ship with the checkpoint.")
