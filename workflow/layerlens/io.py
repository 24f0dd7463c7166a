"""Small file helpers: atomic writes, hashing, JSON, TSV.

Outputs are written to a temporary file in the same folder and renamed into place, so a killed job never
leaves a half-written file that Snakemake (or a reader) could take for a finished one.

Every TSV the pipeline writes goes through :func:`write_tsv` and is read with :func:`read_tsv`, so text
comes back byte for byte: tabs, newlines, double quotes, backslashes, leading or trailing spaces, and words
such as "NA" or "null" that a default reader would turn into missing values.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

from .errors import InputError

if TYPE_CHECKING:  # pandas is imported where tables are used: the Snakefile imports this module
    import pandas as pd


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or ".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        with _disk_full_is_clear(path):
            yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def _disk_full_is_clear(path: Path):
    """Turn 'no space left' / 'quota exceeded' into one message naming the file and what to do."""
    try:
        yield
    except OSError as e:
        if e.errno in (errno.ENOSPC, errno.EDQUOT):
            raise InputError(path, f"{os.strerror(e.errno).lower()} while writing it; nothing was replaced. Free "
                                   "space or raise the quota (or run with --directory on a larger disk), then "
                                   "rerun: finished results are kept") from None
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder next to ``path``; move it onto ``path`` only if the block succeeds.

    An existing ``path`` is replaced only after the new folder is complete.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        with _disk_full_is_clear(path):
            yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: str | os.PathLike, obj) -> None:
    """Strict JSON (NaN and infinities become null, so any JSON reader can read it), written atomically."""
    write_text(path, json.dumps(_finite_or_null(obj), indent=2, allow_nan=False, default=_json_default) + "\n")


def _finite_or_null(obj):
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite_or_null(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_null(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        return _finite_or_null(obj.item())
    return obj


def read_json(path: str | os.PathLike):
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _json_default(obj):
    # numpy scalars and paths are the usual suspects
    if hasattr(obj, "item"):
        return obj.item()
    if isinstance(obj, (Path, set, tuple)):
        return str(obj) if isinstance(obj, Path) else list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def write_tsv(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write ``table`` (no index) as a tab-separated file, atomically, that :func:`read_tsv` reads back exactly.

    Every text field is quoted, with inner double quotes doubled (``csv.QUOTE_NONNUMERIC``, the CSV
    convention any CSV reader follows); numbers are bare, a missing number is an empty field. A text column
    may not hold missing values: they could not be told from empty text when read back.
    """
    import csv

    for column in table.columns:
        values = table[column]
        if values.map(lambda v: isinstance(v, str)).any() and values.isna().any():
            raise ValueError(f"column {column!r} holds a missing value among its text; it would be read back as "
                             "empty text (write '' or drop the row)")
    with atomic_path(path) as tmp:
        table.to_csv(tmp, sep="\t", index=False, quoting=csv.QUOTE_NONNUMERIC, lineterminator="\n",
                     encoding="utf-8")


def read_tsv(path: str | os.PathLike, text_columns: Sequence[str] = ()) -> pd.DataFrame:
    """A table written by :func:`write_tsv`. ``text_columns`` come back as the exact strings written (nothing
    becomes a number or a missing value); in every other column an empty field is missing and numbers are
    parsed as numbers."""
    import pandas as pd

    columns = list(pd.read_csv(path, sep="\t", nrows=0, encoding="utf-8").columns)
    missing = [c for c in text_columns if c not in columns]
    if missing:
        raise InputError(path, f"no column {missing[0]!r} (columns: {', '.join(columns)}); rerun the rule "
                               "that writes it")
    return pd.read_csv(path, sep="\t", encoding="utf-8", dtype={c: str for c in text_columns},
                       keep_default_na=False, na_values={c: [""] for c in columns if c not in text_columns})
