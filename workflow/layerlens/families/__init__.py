"""One small adapter per model family; :func:`adapter_for` picks it from a config's ``model_type``."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError
from .albert import AlbertAdapter
from .base import FamilyAdapter
from .bert import BertAdapter
from .deberta import DebertaV2Adapter
from .distilbert import DistilBertAdapter
from .electra import ElectraAdapter
from .modernbert import ModernBertAdapter
from .roberta import RobertaAdapter

ADAPTERS: tuple[FamilyAdapter, ...] = (BertAdapter(), RobertaAdapter(), AlbertAdapter(), DistilBertAdapter(),
                                       ElectraAdapter(), DebertaV2Adapter(), ModernBertAdapter())

_BY_TYPE = {t: a for a in ADAPTERS for t in a.model_types}


def supported_model_types() -> list[str]:
    return sorted(_BY_TYPE)


def adapter_for(model_type: str, where: str | Path = "model") -> FamilyAdapter:
    try:
        return _BY_TYPE[model_type]
    except KeyError:
        raise InputError(
            where,
            f"unsupported architecture model_type={model_type!r}; supported: {', '.join(supported_model_types())}",
        ) from None


def read_model_config(model_dir: str | Path) -> dict:
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise InputError(model_dir, "no config.json: not a Hugging Face model folder")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise InputError(path, f"not valid JSON ({e})") from None


def adapter_for_dir(model_dir: str | Path) -> FamilyAdapter:
    config = read_model_config(model_dir)
    if "model_type" not in config:
        raise InputError(Path(model_dir) / "config.json", "has no model_type")
    return adapter_for(config["model_type"], Path(model_dir) / "config.json")


def model_depth(model_dir: str | Path) -> int:
    config = read_model_config(model_dir)
    return adapter_for_dir(model_dir).depth(config)
