"""What every rule's script does around its one library call: logging, offline mode, threads, caches.

``with job(snakemake): ...`` in a script

- sends everything the job prints (Python, tqdm progress, C libraries) to the rule's ``log:`` file;
- turns on ``HF_HUB_OFFLINE`` / ``HF_DATASETS_OFFLINE`` (all rules but the download rules: compute nodes often
  have no internet, and nothing after the download needs it);
- keeps every cache (Hugging Face, matplotlib, torch compile) under ``resources/.cache``;
- sets torch's thread count to the rule's ``threads``;
- for a long job, says on the terminal where its progress can be followed (``announce``);
- on a :class:`~layerlens.errors.LayerLensError`, writes its one-line message to the terminal as well as the log.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from pathlib import Path

CACHE = Path("resources") / ".cache"


def cache_env(root: str | os.PathLike = CACHE) -> dict[str, str]:
    """Every cache under ``root``; the Hub login stays the user's (``HF_TOKEN_PATH``: where huggingface_hub kept
    it before ``HF_HOME`` moved here), so gated downloads and pushes see it."""
    root = Path(root).resolve()
    return {
        "HF_TOKEN_PATH": user_token_path(),
        "HF_HOME": str(root / "huggingface"),
        "HF_DATASETS_CACHE": str(root / "huggingface" / "datasets"),
        "MPLCONFIGDIR": str(root / "matplotlib"),
        "TORCHINDUCTOR_CACHE_DIR": str(root / "torchinductor"),
        "TRITON_CACHE_DIR": str(root / "triton"),
        "TOKENIZERS_PARALLELISM": "false",
    }


def user_token_path() -> str:
    """The file huggingface_hub reads the user's login token from, as the user's own environment says (set once,
    before :func:`cache_env` moves ``HF_HOME``; jobs inherit it). layerlens never reads the file itself."""
    if os.environ.get("HF_TOKEN_PATH"):
        return os.environ["HF_TOKEN_PATH"]
    home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")) / "huggingface"
    return str(Path(home).expanduser() / "token")


def set_offline(offline: bool = True) -> None:
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ[var] = "1" if offline else "0"


@contextlib.contextmanager
def job(smk, *, offline: bool = True, announce: str | None = None):
    """Context for the body of a rule's script; ``smk`` is the ``snakemake`` object. ``announce`` (long jobs):
    what the job does, written to the terminal with where its progress can be followed (its log)."""
    os.environ.update(cache_env())
    set_offline(offline)
    log = smk.log[0] if len(smk.log) else None
    terminal = os.dup(2)
    if announce and log:
        os.write(terminal, f"layerlens: {announce}; progress (steps, loss, time left) in {log}, e.g. "
                           f"tail -f {log}\n".encode())
    if log:
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        fh = open(log, "w", buffering=1, encoding="utf-8")
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(fh.fileno(), 1)
        os.dup2(fh.fileno(), 2)
        sys.stdout = sys.stderr = fh
    try:
        try:
            import torch
        except ImportError:  # the report environment has no torch
            pass
        else:
            torch.set_num_threads(max(1, int(smk.threads)))
        yield
    except Exception as e:
        from .errors import LayerLensError

        traceback.print_exc()
        if isinstance(e, LayerLensError):
            os.write(terminal, f"\nlayerlens error in rule {smk.rule}: {e}\n".encode())
        raise
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
