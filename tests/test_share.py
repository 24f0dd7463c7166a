"""Sharing built variants: the model card in every variant folder, and the push to the Hub with its answers stood
in for (tests/hub.py: huggingface_hub's own client against a local HTTP server)."""

import json
import os
import re
import subprocess
import sys

import pytest
import yaml
from helpers import REPO, make_tiny_bert
from hub import FakeHub
from layerlens import download, layermap, share
from layerlens.errors import NetworkError
from layerlens.manifest import verify

TOKEN = "hf_secretTokenThatMustNeverBeWritten0123"
BASE_CARD = "---\nlicense: apache-2.0\nlanguage: en\ntags:\n- sentence-similarity\n---\n# tiny\nThe base's card.\n"


@pytest.fixture
def base(tiny_bert, tmp_path):
    """The tiny BERT as the download leaves it, with a card of its own (licence apache-2.0) and a Hub id."""
    src = tmp_path / "src"
    download.fetch_model(str(tiny_bert), "main", src / "plain")  # a copy to add a card to
    (src / "plain" / "README.md").write_text(BASE_CARD)
    (src / "plain" / "manifest.json").unlink()
    download.fetch_model(str(src / "plain"), "main", tmp_path / "models" / "tiny", name="tiny",
                         hub_id="someone/tiny-bert")
    return tmp_path / "models" / "tiny"


def _layer_rows(text: str) -> list[tuple[int, int]]:
    return [(int(a), int(b)) for a, b in re.findall(r"^\| (\d+) \| (\d+) \|$", text, flags=re.M)]


def test_every_built_variant_has_a_model_card_naming_its_base(base, tmp_path):
    from huggingface_hub import ModelCard

    out = tmp_path / "models" / "tiny-dup2"
    layermap.build_variant_from_config(base, out, {"base": "tiny", "duplicate": [2]}, base_name="tiny",
                                       variant_name="tiny-dup2")
    card = ModelCard.load(out / "README.md")
    assert card.data.base_model == "someone/tiny-bert"
    assert card.data.license == "apache-2.0"  # inherited from the base's own card
    assert card.data.library_name == "transformers"
    assert {"layerlens", "layer-duplication", "bert"} <= set(card.data.tags)
    assert _layer_rows(card.text) == [(0, 0), (1, 1), (2, 2), (3, 2)]  # new layer -> base layer, by hand
    assert "no training" in card.text and "base layer(s) 2 repeated" in card.text and "`0-2,2`" in card.text
    verify(out)  # the card is part of the folder's manifest


def test_a_card_without_a_known_base_id_or_licence_says_so(tiny_bert, tmp_path):
    from huggingface_hub import ModelCard

    download.fetch_model(str(tiny_bert), "main", tmp_path / "tiny", name="tiny")  # local, no hub_id, no card
    layermap.build_variant(tmp_path / "tiny", tmp_path / "v", [0, 2], base_name="tiny", variant_name="v")
    card = ModelCard.load(tmp_path / "v" / "README.md")
    assert card.data.base_model is None and card.data.license is None
    assert "the base states none" in card.text and "base layer(s) 1 removed" in card.text


def test_a_hub_base_is_its_own_base_model(base, tmp_path):
    manifest = json.loads((base / "manifest.json").read_text())
    manifest.update(type="hub", source="google-bert/bert-base-uncased", commit="c" * 40)
    (base / "manifest.json").write_text(json.dumps(manifest))
    assert share.base_hub_id(base) == "google-bert/bert-base-uncased"


def test_push_uploads_the_folder_with_the_token_of_the_environment_and_writes_no_token(base, tmp_path, monkeypatch,
                                                                                        capfd):
    from huggingface_hub import constants

    variant = tmp_path / "models" / "tiny-dup2"
    layermap.build_variant(base, variant, [0, 1, 2, 2], base_name="tiny", variant_name="tiny-dup2")
    with FakeHub(TOKEN) as hub:
        monkeypatch.setattr(constants, "ENDPOINT", hub.url)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        record = share.push(variant, "tiny-dup2", tmp_path / "hub" / "tiny-dup2.json")
    files = {p.name: p.read_bytes() for p in variant.iterdir() if p.is_file()}
    assert hub.repos["alice/tiny-dup2"]["files"] == files and hub.repos["alice/tiny-dup2"]["private"] is True
    assert all(token == TOKEN for _, _, token in hub.requests), hub.requests  # each carried the user's token
    assert hub.validated[0]["base_model"] == "someone/tiny-bert"  # the card passed the Hub's metadata check
    assert record["repo_id"] == "alice/tiny-dup2" and record["commit"] == "ab" * 20
    written = (tmp_path / "hub" / "tiny-dup2.json").read_text()
    out, err = capfd.readouterr()
    for text in (written, out, err):
        assert TOKEN not in text and TOKEN[3:15] not in text


def test_push_without_a_token_says_how_to_log_in(base, tmp_path, monkeypatch):
    from huggingface_hub import constants

    with FakeHub(TOKEN) as hub:
        monkeypatch.setattr(constants, "ENDPOINT", hub.url)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.delenv("HF_TOKEN", raising=False)
        monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-login"))
        monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no-logins"))
        layermap.build_variant(base, tmp_path / "v", [0, 1, 2, 2], base_name="tiny", variant_name="v")
        with pytest.raises(NetworkError, match=r"hf auth login.*HF_TOKEN.*never in the config"):
            share.push(tmp_path / "v", "v", tmp_path / "v.json")
    assert not hub.repos


@pytest.mark.e2e
def test_the_push_rule_pushes_every_built_variant_and_no_file_holds_the_token(tmp_path, tiny_glue):
    """hub: {push: true} through Snakemake: the built (fine-tuned) variant is pushed, the probe-only one is not;
    the token (HF_TOKEN) appears in no log, output or config."""
    make_tiny_bert(tmp_path / "tiny-bert", layers=3)
    cfg = {"models": {"tiny": {"source": "./tiny-bert", "hub_id": "someone/tiny-bert"}},
           "variants": {"tiny-dup2": {"base": "tiny", "layers": "0-2,2"},
                        "tiny-rm1": {"base": "tiny", "remove": [1], "finetune": False}},
           "glue": {"source": "tsv", "dir": str(tiny_glue)}, "tasks": ["rte"], "seeds": [1],
           "hub": {"push": True, "namespace": "lab", "private": False}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    with FakeHub(TOKEN, user="alice") as hub:
        env = {**os.environ, "HF_ENDPOINT": hub.url, "HF_TOKEN": TOKEN}
        dry = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--configfile",
                              "config.yaml", "--cores", "2", "-n"], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=600)
        assert "push_variant" in dry.stdout and "results/hub/tiny-dup2.json" in dry.stdout
        assert "tiny-rm1.json" not in dry.stdout
        proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--configfile",
                               "config.yaml", "--cores", "2", "results/hub/tiny-dup2.json"], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert set(hub.repos) == {"lab/tiny-dup2"} and hub.repos["lab/tiny-dup2"]["private"] is False
    assert "README.md" in hub.repos["lab/tiny-dup2"]["files"]
    record = json.loads((tmp_path / "results" / "hub" / "tiny-dup2.json").read_text())
    assert record["repo_id"] == "lab/tiny-dup2"
    assert TOKEN not in proc.stdout + proc.stderr
    for path in tmp_path.rglob("*"):
        if path.is_file() and path.stat().st_size < 5_000_000:
            assert TOKEN.encode() not in path.read_bytes(), path
