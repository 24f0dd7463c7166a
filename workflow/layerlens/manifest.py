"""Manifests: every folder the pipeline writes under ``resources/`` records the sha256 of its files.

``manifest.json`` in a model, variant, GLUE or tokenized folder says where the folder came from and lists
every file with its sha256; :func:`verify` checks them before a job uses the folder, so a file changed or
corrupted since it was written is caught before any long job runs on it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence

from .errors import InputError
from .io import read_json, sha256_file, write_json

MANIFEST = "manifest.json"


def write_manifest(folder: str | Path, entry: dict) -> dict:
    """Add the sha256 of every file in ``folder`` to ``entry`` and write it as ``folder/manifest.json``."""
    folder = Path(folder)
    entry = dict(entry)
    entry["files"] = {str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*"))
                      if p.is_file() and p.name != MANIFEST}
    write_json(folder / MANIFEST, entry)
    return entry


def verify(folder: str | Path) -> dict:
    """Check every file of ``folder`` against its manifest's sha256; return the manifest."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise InputError(folder, f"no {MANIFEST}: not written by this pipeline (rerun the rule that makes it)")
    manifest = read_json(path)
    for rel, digest in manifest.get("files", {}).items():
        f = folder / rel
        if not f.is_file():
            raise InputError(f, "listed in the manifest but missing; delete the folder and rerun its rule")
        if sha256_file(f) != digest:
            raise InputError(f, "sha256 differs from the manifest (changed or corrupted since it was written); "
                                "delete the folder and rerun its rule")
    return manifest


def merge(paths: Sequence[str | Path], out: str | Path) -> dict:
    """``resources/manifest.json``: every model and GLUE manifest, plus the library versions."""
    import datasets
    import huggingface_hub
    import torch
    import transformers

    entries = [read_json(p) for p in paths]
    merged = {
        "models": {e["name"]: e for e in entries if e["kind"] == "model"},
        "glue": {e["task"]: e for e in entries if e["kind"] == "glue"},
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__,
                     "transformers": transformers.__version__, "datasets": datasets.__version__,
                     "huggingface_hub": huggingface_hub.__version__},
    }
    write_json(out, merged)
    return merged
