"""Sharing a built variant: its model card, and the optional upload to the Hugging Face Hub.

**The model card.** Every variant written to ``resources/models/{variant}/`` gets a ``README.md`` with the Hub's
YAML metadata (:func:`model_card`), so the folder can be shared as it is:

- ``base_model``: the base's Hub id (its ``source`` when it came from the Hub, else ``models.<base>.hub_id``;
  left out when neither is known);
- ``license``: the base's, read from the base's own card (``README.md``, kept by the download); where the base
  states none, the card says so and sets none;
- ``library_name: transformers`` and ``tags`` (``layerlens``, ``layer-duplication``, the family);
- in the text: the layer map (each new layer's source layer), what it does (which layers are repeated or
  removed), how it was built (tensors copied, no training), the base's source and weights' sha256, and the
  versions and workflow commit that built it (:mod:`layerlens.provenance`).

**The upload** (rule ``push_variant``, only with ``hub: {push: true}``): :func:`push` creates the repo (private
by default) and uploads the folder with ``huggingface_hub``. The token is the user's Hub login
(``hf auth login``) or ``HF_TOKEN``, read by huggingface_hub itself: never taken from the config, never passed,
printed or written by layerlens.
"""

from __future__ import annotations

from pathlib import Path

from .errors import InputError, NetworkError
from .io import read_json, write_json, write_text
from .provenance import provenance

CARD = "README.md"


def base_card_data(base_dir: str | Path) -> dict:
    """The YAML metadata of the base's own card (``README.md``), or {} if it has none."""
    from huggingface_hub import ModelCard

    path = Path(base_dir) / CARD
    if not path.is_file():
        return {}
    try:
        return ModelCard.load(path, ignore_metadata_errors=True).data.to_dict()
    except Exception:  # noqa: BLE001 - a malformed card of the base must not stop the build
        return {}


def base_hub_id(base_dir: str | Path) -> str | None:
    """The base's Hub id: its source if downloaded from the Hub, else the ``hub_id`` its config entry names."""
    manifest = Path(base_dir) / "manifest.json"
    entry = read_json(manifest) if manifest.is_file() else {}
    if entry.get("type") == "hub":
        return entry.get("source")
    return entry.get("hub_id")


def model_card(provenance_record: dict, description: dict, base_dir: str | Path, *, family: str) -> str:
    """The ``README.md`` of a built variant: the Hub's YAML metadata and a text saying how it was built."""
    from huggingface_hub import ModelCard, ModelCardData

    p, base_dir = provenance_record, Path(base_dir)
    base_meta = base_card_data(base_dir)
    hub_id = base_hub_id(base_dir)
    manifest = Path(base_dir) / "manifest.json"
    source = read_json(manifest) if manifest.is_file() else {}
    licence = base_meta.get("license")
    data = ModelCardData(base_model=hub_id, library_name="transformers", license=licence,
                         tags=["layerlens", "layer-duplication", family],
                         language=base_meta.get("language"))
    run = provenance()
    rows = "\n".join(f"| {i} | {src} |" for i, src in enumerate(p["layers"]))
    what = _describe(description, p["base_num_layers"], len(p["layers"]))
    base_name = hub_id or p["base"]
    depth, base_depth = len(p["layers"]), p["base_num_layers"]
    shape = "deeper" if depth > base_depth else "shallower" if depth < base_depth else "of the same depth"
    origin = {"hub": f"the Hugging Face Hub, `{source.get('source')}` at commit `{source.get('commit')}`",
              "package": f"the Python package `{source.get('package')}` {source.get('version')} "
                         f"(`{source.get('source')}`)",
              "local": f"a local folder (`{source.get('source')}`)"}.get(source.get("type"), "its base folder")
    text = f"""
# {p['variant']}

A {len(p['layers'])}-layer variant of [{base_name}]({_link(hub_id)}) ({p['base_num_layers']} layers), made {shape} by
copying its layers, **with no training**: {what}. Built for fine-tuning by layerlens, which reproduces Kao et al.,
*BERT's output layer recognizes all hidden layers? Some Intriguing Phenomena and a simple way to boost BERT*
([arXiv:2001.09309](https://arxiv.org/abs/2001.09309)).

## How it was built

- Layer map `{p['layers_spec']}`: new layer *i* is a copy of base layer *source* (0-based; table below).
- The layer tensors are deep-copied and renumbered; everything else (embeddings, pooler, any masked-LM head,
  tokenizer) is the base's, unchanged. The map is also recorded in `config.json` (`layerlens_layer_map`) and in
  `layer_map.json`.
- Base: `{p['base']}`, from {origin}; weights sha256 {_sha(p.get('base_weights_sha256', {}))}.
- Licence: {('`' + licence + '`, inherited from the base') if licence else
               'the base states none; check its terms before sharing'}.
- Built with layerlens {run['versions']['layerlens']}, workflow commit `{run['workflow_commit']}`, torch
  {run['versions']['torch']}, transformers {run['versions']['transformers']}.

| new layer | source layer of the base |
|---:|---:|
{rows}

## Use

```python
from transformers import AutoModelForSequenceClassification, AutoTokenizer
model = AutoModelForSequenceClassification.from_pretrained("<this folder or repo>", num_labels=2)
tokenizer = AutoTokenizer.from_pretrained("<this folder or repo>")
```

Nothing was trained after the copy: the model is meant to be fine-tuned.
"""
    return str(ModelCard.from_template(data, template_str="---\n{{ card_data }}\n---\n" + text)).rstrip() + "\n"


def _describe(description: dict, base_layers: int, layers: int) -> str:
    kind, touched = description.get("kind"), description.get("touched", [])
    listed = ", ".join(map(str, touched))
    return {"identity": "the identity map (the same layers)",
            "duplicate": f"base layer(s) {listed} repeated right after themselves",
            "remove": f"base layer(s) {listed} removed",
            "duplicate_block": f"the block of base layers {touched[0]}-{touched[-1]} repeated right after itself"
            if touched else ""}.get(kind, f"a custom map from {base_layers} to {layers} layers")


def _link(hub_id: str | None) -> str:
    return f"https://huggingface.co/{hub_id}" if hub_id else "#how-it-was-built"


def _sha(files: dict) -> str:
    return ", ".join(f"`{name}` `{digest[:16]}`" for name, digest in files.items()) or "n/a"


def write_card(folder: str | Path, provenance_record: dict, description: dict, base_dir: str | Path, *,
               family: str) -> Path:
    path = Path(folder) / CARD
    write_text(path, model_card(provenance_record, description, base_dir, family=family))
    return path


# --- the upload ------------------------------------------------------------------------------------------


def repo_id(variant: str, namespace: str | None, whoami: dict | None = None) -> str:
    """``namespace/variant``; the logged-in user's namespace when none is configured."""
    if namespace:
        return f"{namespace}/{variant}"
    if not whoami or not whoami.get("name"):
        raise InputError("hub.namespace", "no namespace configured and the Hub did not say who is logged in")
    return f"{whoami['name']}/{variant}"


def push(folder: str | Path, variant: str, out_json: str | Path, *, namespace: str | None = None,
         private: bool = True) -> dict:
    """Upload a built variant's folder (model card included) to ``namespace/variant`` on the Hub; write what was
    pushed (repo, commit, files) to ``out_json``. The token is huggingface_hub's own: the login or HF_TOKEN."""
    from huggingface_hub import HfApi
    from huggingface_hub import errors as hub_errors

    folder = Path(folder)
    if not (folder / CARD).is_file():
        raise InputError(folder, f"no {CARD} (model card): rebuild the variant (delete the folder and rerun)")
    api = HfApi()  # token=None: huggingface_hub reads HF_TOKEN or the stored login, nothing here sees it
    try:
        who = api.whoami()
    except hub_errors.LocalTokenNotFoundError:
        raise NetworkError("pushing to the Hub needs a token: log in once with `hf auth login`, or set HF_TOKEN in "
                           "the environment (never in the config)") from None
    except Exception as e:  # noqa: BLE001
        raise NetworkError(f"the Hub cannot be reached or refused the token ({e.__class__.__name__}); check "
                           "`hf auth whoami`") from None
    repo = repo_id(variant, namespace, who)
    url = api.create_repo(repo, repo_type="model", private=private, exist_ok=True)
    info = api.upload_folder(folder_path=str(folder), repo_id=repo, repo_type="model",
                             commit_message=f"layerlens: {variant}")
    record = {"variant": variant, "repo_id": repo, "url": str(url), "private": private,
              "commit": getattr(info, "oid", None), "commit_url": getattr(info, "commit_url", None),
              "files": sorted(p.name for p in folder.iterdir() if p.is_file())}
    write_json(out_json, record)
    print(f"layerlens: pushed {folder} to {record['url']} (commit {record['commit']})", flush=True)
    return record
