"""Tokenization once per tokenizer content: two bases with the same tokenizer files share one tokenization."""

import json
import os
import shutil

from datasets import load_from_disk
from helpers import make_tiny_bert
from layerlens import download, tokenization
from transformers import AutoTokenizer


def test_bases_sharing_a_tokenizer_share_one_tokenization(tiny_bert, tiny_glue, tmp_path):
    # two different models with the same tokenizer files, and one with another vocabulary
    download.fetch_model(str(tiny_bert), "main", tmp_path / "models" / "a", name="a")
    other_weights = make_tiny_bert(tmp_path / "src-b", layers=2, seed=5)
    for f in tiny_bert.iterdir():  # b: other weights, a's tokenizer files byte for byte
        if f.name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
            shutil.copy(f, other_weights / f.name)
    download.fetch_model(str(other_weights), "main", tmp_path / "models" / "b", name="b")
    other_vocab = make_tiny_bert(tmp_path / "src-c", layers=2, corpus=["zebra quokka"] * 50)
    download.fetch_model(str(other_vocab), "main", tmp_path / "models" / "c", name="c")
    download.fetch_glue("rte", "tsv", tmp_path / "glue" / "rte", tsv_dir=tiny_glue)

    out = {m: tmp_path / "tokenized" / m / "rte-len32" for m in "abc"}
    info = {m: tokenization.tokenize_task(tmp_path / "glue" / "rte", tmp_path / "models" / m, out[m], "rte", 32)
            for m in "abc"}
    assert [info[m]["reused"] for m in "abc"] == [False, True, False]
    assert info["a"]["key"] == info["b"]["key"] != info["c"]["key"]
    store = tmp_path / "tokenized" / tokenization.STORE
    assert sorted(p.name for p in store.iterdir()) == sorted({info["a"]["key"], info["c"]["key"]})

    # b's data are a's files (hard links to the one stored copy), and they are what b's own tokenizer gives
    arrow = sorted(p.relative_to(out["a"]) for p in out["a"].rglob("*.arrow"))
    assert arrow and arrow == sorted(p.relative_to(out["b"]) for p in out["b"].rglob("*.arrow"))
    for rel in arrow:
        assert os.stat(out["a"] / rel).st_ino == os.stat(out["b"] / rel).st_ino
    raw = load_from_disk(str(tmp_path / "glue" / "rte"))["validation"][3]
    tok_b = AutoTokenizer.from_pretrained(str(tmp_path / "models" / "b"))
    expected = tok_b(raw["sentence1"], raw["sentence2"], truncation=True, max_length=32)["input_ids"]
    assert load_from_disk(str(out["b"]))["validation"][3]["input_ids"] == expected
    tok_c = AutoTokenizer.from_pretrained(str(tmp_path / "models" / "c"))
    assert load_from_disk(str(out["c"]))["validation"][3]["input_ids"] == \
        tok_c(raw["sentence1"], raw["sentence2"], truncation=True, max_length=32)["input_ids"] != expected
    manifest = json.loads((out["b"] / "manifest.json").read_text())
    assert manifest["kind"] == "tokenized" and manifest["store"].endswith(info["a"]["key"])
