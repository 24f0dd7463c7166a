"""What produced a result: the versions of the libraries that compute it and the commit of the workflow's code.

Every fine-tuning cell records :func:`provenance` in its ``metrics.json`` (so the tidy table of runs carries it
per run), and every model card names it. The commit is the checkout's ``HEAD`` (``git rev-parse``), with
``workflow_dirty`` true when tracked files differ from it; both are null outside a git checkout (an installed
wheel, a tarball).
"""

from __future__ import annotations

import functools
import subprocess
import sys
from pathlib import Path

#: the checkout: workflow/layerlens/provenance.py -> the repository root
ROOT = Path(__file__).resolve().parents[2]

LIBRARIES = ("torch", "transformers", "datasets", "huggingface_hub", "accelerate")


def versions() -> dict[str, str | None]:
    """Python, layerlens and :data:`LIBRARIES` versions (None for one that is not installed)."""
    from importlib import metadata

    from . import __version__

    out = {"python": sys.version.split()[0], "layerlens": __version__}
    for name in LIBRARIES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


@functools.lru_cache(maxsize=None)
def workflow_commit(root: str | Path = ROOT) -> dict[str, str | bool | None]:
    """``{"workflow_commit": sha or None, "workflow_dirty": bool or None}`` of the checkout at ``root``."""

    def git(*args) -> str | None:
        try:
            proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return None
        return proc.stdout.strip() if proc.returncode == 0 else None

    sha = git("rev-parse", "HEAD")
    if not sha:
        return {"workflow_commit": None, "workflow_dirty": None}
    status = git("status", "--porcelain", "--untracked-files=no")
    return {"workflow_commit": sha, "workflow_dirty": None if status is None else bool(status)}


def provenance() -> dict:
    """:func:`versions` and :func:`workflow_commit` in one record."""
    return {"versions": versions(), **workflow_commit()}
