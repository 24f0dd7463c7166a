"""Download stage: models and GLUE into ``resources/``, in one normalized form, with a manifest.

Models
    ``resources/models/{name}/``: a snapshot of a Hub repo at a pinned revision (safetensors, config and
    tokenizer files only: never a pickle), or a copy of a local folder. ``manifest.json`` in the folder records
    the source, the commit actually fetched and the sha256 of every file.
GLUE
    ``resources/glue/{task}/``: a ``datasets.DatasetDict`` saved with ``save_to_disk``, with the Hub's column
    names and label ids, holding ``train`` and every dev split (MNLI: matched and mismatched). It comes from
    the Hub (``nyu-mll/glue``) or from the classic ``glue_data`` TSV folder, read as the task's
    :class:`~layerlens.tasks.TsvLayout` says. ``manifest.json`` records the source, the commit, the sha256 of
    each source and output file, the row counts and, from a TSV folder, the rows skipped as malformed: per split,
    their count and line numbers (only a task whose layout says its files hold such rows skips any; QQP).

Every consumer calls :func:`layerlens.manifest.verify` on a folder before use.
"""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

from .errors import InputError, NetworkError
from .io import atomic_dir, sha256_file
from .manifest import MANIFEST, write_manifest
from .modelfiles import MODEL_PATTERNS, PICKLE_SUFFIXES, weight_files
from .sources import is_package, local_dir, package_version
from .tasks import get_task

HUB_GLUE = "nyu-mll/glue"

OFFLINE_HELP = (
    "Cannot reach the Hugging Face Hub. Download on a machine with internet access (a login node: the download "
    "rules are local rules), or work offline: point `models.<name>.source` at a local folder holding config.json, "
    "*.safetensors and the tokenizer files, and set `glue: {source: tsv, dir: /path/to/glue_data}` for the "
    "classic GLUE folder (CoLA/, SST-2/, MRPC/, ... with train.tsv and dev.tsv)."
)


# --- models ----------------------------------------------------------------------------------------------


def fetch_model(source: str, revision: str, out_dir: str | Path, *, name: str = "", hub_id: str | None = None) -> dict:
    """Snapshot a Hub repo, or copy a local or package folder (:mod:`layerlens.sources`), into ``out_dir``
    (atomically). Returns the manifest."""
    out_dir = Path(out_dir)
    local = local_dir(source, key=f"models.{name}.source")
    with atomic_dir(out_dir) as tmp:
        if is_package(source):  # a model folder inside an installed Python package
            _copy_local_model(local, tmp)
            entry = {"kind": "model", "name": name, "source": source, "type": "package", "folder": str(local),
                     **package_version(source), "revision": None, "commit": None}
        elif local is not None:
            if not local.is_dir():
                raise InputError(local, "the model folder does not exist")
            _copy_local_model(local, tmp)
            entry = {"kind": "model", "name": name, "source": str(local.resolve()), "type": "local",
                     "revision": None, "commit": None}
        else:
            commit = _snapshot_hub_model(source, revision, tmp)
            entry = {"kind": "model", "name": name, "source": source, "type": "hub", "revision": revision,
                     "commit": commit}
        _check_model_folder(tmp, display=out_dir)
        if entry["type"] != "hub" and hub_id:
            entry["hub_id"] = hub_id  # the Hub id the local copy stands for: its variants' cards name it
        entry = write_manifest(tmp, entry)
    return entry


def _copy_local_model(src: Path, dst: Path) -> None:
    if not (src / "config.json").is_file():
        raise InputError(src, "not a Hugging Face model folder: no config.json")
    weight_files(src)  # refuses pickle-only or weightless folders with a clear message
    for f in sorted(src.iterdir()):
        if not f.is_file() or f.suffix in PICKLE_SUFFIXES or f.name == MANIFEST:
            continue
        if any(f.match(p) for p in MODEL_PATTERNS):
            shutil.copy2(f, dst / f.name)


def _snapshot_hub_model(repo: str, revision: str, dst: Path) -> str:
    from huggingface_hub import HfApi, snapshot_download

    try:
        info = HfApi().model_info(repo, revision=revision, files_metadata=False)
    except Exception as e:  # noqa: BLE001 - classified below
        raise _hub_error(e, f"model {repo}@{revision}") from None
    names = [s.rfilename for s in (info.siblings or [])]
    if not any(n.endswith(".safetensors") for n in names):
        pickles = [n for n in names if n.endswith(PICKLE_SUFFIXES)]
        raise InputError(f"hub:{repo}@{revision}",
                         "ships no safetensors weights" + (f" (only {', '.join(pickles)})" if pickles else "")
                         + "; layerlens never loads a pickle. Pick a revision with model.safetensors.")
    snapshot_download(repo, revision=info.sha, local_dir=dst, allow_patterns=list(MODEL_PATTERNS))
    cache = dst / ".cache"
    if cache.exists():
        shutil.rmtree(cache)
    return info.sha


def _check_model_folder(folder: Path, display: Path) -> None:
    if not (folder / "config.json").is_file():
        raise InputError(display, "no config.json after download")
    weight_files(folder)


def _hub_error(err: Exception, what: str) -> Exception:
    from huggingface_hub import errors as hub_errors

    if isinstance(err, (hub_errors.RepositoryNotFoundError, hub_errors.RevisionNotFoundError)):
        return InputError(f"hub:{what}", f"not found on the Hub ({err.__class__.__name__}); check the id and "
                                         "revision, and log in (hf auth login) for gated or private repos")
    if isinstance(err, hub_errors.OfflineModeIsEnabled):
        return NetworkError(f"{what}: HF_HUB_OFFLINE is set. {OFFLINE_HELP}")
    if isinstance(err, hub_errors.HfHubHTTPError):
        return NetworkError(f"{what}: the Hub answered {err}. {OFFLINE_HELP}")
    return NetworkError(f"{what}: {err.__class__.__name__}: {err}. {OFFLINE_HELP}")


# --- GLUE ------------------------------------------------------------------------------------------------


def fetch_glue(task: str, source: str, out_dir: str | Path, *, tsv_dir: str | Path | None = None,
               revision: str = "main", cache_dir: str | Path | None = None) -> dict:
    """Write ``task`` in the normalized on-disk form to ``out_dir`` (atomically). Returns the manifest."""
    spec = get_task(task)
    out_dir = Path(out_dir)
    if source == "tsv":
        dsd, sources, skipped = read_glue_tsv(task, tsv_dir)
        entry = {"kind": "glue", "task": task, "source": str(Path(tsv_dir).resolve()), "type": "tsv",
                 "revision": None, "commit": None, "source_files": sources,
                 "skipped_rows": {split: {"count": len(lines), "lines": lines} for split, lines in skipped.items()}}
        for split, lines in skipped.items():
            if lines:
                print(f"layerlens: {task} {split}: skipped {len(lines)} malformed row(s) of "
                      f"{spec.tsv.files[split]} (too few fields), at line(s) {lines}", flush=True)
    elif source == "hub":
        dsd, commit = _load_glue_hub(task, revision, cache_dir)
        entry = {"kind": "glue", "task": task, "source": HUB_GLUE, "type": "hub", "revision": revision,
                 "commit": commit}
    else:
        raise InputError("glue.source", f"unknown GLUE source {source!r} (hub or tsv)")
    for split in spec.splits:
        if split not in dsd:
            raise InputError(entry["source"], f"{task}: split {split!r} is missing")
        if len(dsd[split]) == 0:
            raise InputError(entry["source"], f"{task}: split {split!r} is empty")
    with atomic_dir(out_dir) as tmp:
        dsd.save_to_disk(str(tmp))
        entry["rows"] = {split: len(dsd[split]) for split in spec.splits}
        entry = write_manifest(tmp, entry)
    return entry


def glue_features(task: str):
    from datasets import ClassLabel, Features, Value

    spec = get_task(task)
    feats = {c: Value("string") for c in spec.text_columns}
    feats["label"] = Value("float32") if spec.is_regression else ClassLabel(names=list(spec.label_names))
    feats["idx"] = Value("int32")
    return Features(feats)


def _load_glue_hub(task: str, revision: str, cache_dir) -> tuple:
    from datasets import DatasetDict, load_dataset
    from huggingface_hub import HfApi

    try:
        info = HfApi().dataset_info(HUB_GLUE, revision=revision)
    except Exception as e:  # noqa: BLE001
        raise _hub_error(e, f"dataset {HUB_GLUE}@{revision}") from None
    dsd = load_dataset(HUB_GLUE, task, revision=info.sha, cache_dir=None if cache_dir is None else str(cache_dir))
    spec = get_task(task)
    dsd = DatasetDict({s: dsd[s] for s in spec.splits})
    features = glue_features(task)
    for s in spec.splits:
        if set(dsd[s].column_names) != set(features):
            raise InputError(f"hub:{HUB_GLUE}/{task}", f"split {s} has columns {dsd[s].column_names}, "
                                                       f"expected {list(features)}")
    return dsd.cast(features), info.sha


def read_glue_tsv(task: str, tsv_dir: str | Path) -> tuple:
    """Parse one task of the classic glue_data folder into a DatasetDict with the Hub's columns and labels.

    Returns ``(DatasetDict, {file: sha256}, {split: [line numbers]})``, the last the rows skipped as malformed
    (see :class:`~layerlens.tasks.TsvLayout`, ``short_rows``)."""
    from datasets import Dataset, DatasetDict

    if tsv_dir is None:
        raise InputError("glue.dir", "the tsv source needs glue.dir")
    root = Path(tsv_dir)
    features = glue_features(task)
    splits, sources, skipped = {}, {}, {}
    for split, rel in get_task(task).tsv.files.items():
        path = root / rel
        if not path.is_file():
            raise InputError(path, f"missing ({task} {split}); expected the classic glue_data layout")
        rows, skipped[split] = _read_tsv(task, path)
        if not rows["idx"]:
            raise InputError(path, f"{task} {split} is empty: no data rows; download GLUE again")
        splits[split] = Dataset.from_dict(rows, features=features)
        sources[rel] = sha256_file(path)
    return DatasetDict(splits), sources, skipped


def _read_tsv(task: str, path: Path) -> tuple[dict[str, list], list[int]]:
    """The rows of one file (Hub columns, ``idx`` counting the rows read) and the line numbers skipped."""
    spec = get_task(task)
    layout = spec.tsv
    csv.field_size_limit(sys.maxsize)
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
        if not layout.header:
            width, first_line, index = layout.width, 1, dict(layout.columns)
        else:
            try:
                header = next(reader)
            except StopIteration:
                raise InputError(path, f"{task}: the file is empty (no header)") from None
            width, first_line = len(header), 2
            missing = [c for c in layout.columns.values() if c not in header]
            if missing:
                raise InputError(path, f"{task}: header lacks column(s) {missing}; found {header}. Use the "
                                      "classic glue_data files as the GLUE download script writes them")
            index = {k: header.index(v) for k, v in layout.columns.items()}
        out: dict[str, list] = {k: [] for k in list(spec.text_columns) + ["label", "idx"]}
        skipped: list[int] = []
        for n, row in enumerate(reader):
            line = first_line + n
            if not row or row == [""]:
                continue
            if len(row) < width:
                if layout.short_rows == "skip":
                    skipped.append(line)
                    continue
                raise InputError(path, f"line {line}: {len(row)} fields, expected {width} (a truncated line?); "
                                      "repair the file or download GLUE again")
            for col in spec.text_columns:
                out[col].append(row[index[col]])
            out["label"].append(_parse_label(spec, row[index["label"]], path, line))
            out["idx"].append(len(out["idx"]))
    return out, skipped


def _parse_label(spec, raw: str, path: Path, line: int):
    """A label as the Hub writes it: the score (regression), else the label id."""
    raw = raw.strip()
    if spec.is_regression:
        try:
            value = float(raw)
        except ValueError:
            raise InputError(path, f"line {line}: label {raw!r} is not a number") from None
        lo, hi = spec.label_range or (-float("inf"), float("inf"))
        if not lo <= value <= hi:
            raise InputError(path, f"line {line}: {spec.name} score {value} is outside {lo:g}-{hi:g}")
        return value
    names = spec.label_names
    if raw in names:
        return names.index(raw)
    if spec.tsv.labels == "id" and raw.isdigit() and int(raw) < len(names):
        return int(raw)
    allowed = tuple(str(i) for i in range(len(names))) if spec.tsv.labels == "id" else names
    raise InputError(path, f"line {line}: bad label {raw!r} for {spec.name}; expected one of {list(allowed)}. "
                           "Repair the file or download GLUE again")
