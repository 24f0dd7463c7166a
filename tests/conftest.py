"""Shared fixtures: tiny models and GLUE folders built by the tests themselves (see helpers.py)."""

from __future__ import annotations

import os

import pytest
from helpers import REPO, SHARED_GLUE, make_glue_tsv, make_tiny_bert

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

#: where the rxnmapper wheel and its converted ALBERT are kept between runs (git-ignored; .ci/run fills it)
RXN_CACHE = REPO / ".cache" / "rxnmapper"


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    """A 3-layer BERT with pooler, MLM and NSP heads, trained briefly to reconstruct its input."""
    return make_tiny_bert(tmp_path_factory.mktemp("models") / "tiny-bert", layers=3, train_steps=30)


@pytest.fixture(scope="session")
def tiny_bert_mlm_only(tmp_path_factory):
    """A random 2-layer BertForMaskedLM checkpoint (no pooler, no NSP head)."""
    return make_tiny_bert(tmp_path_factory.mktemp("models") / "tiny-bert-mlm", layers=2, pretraining=False, seed=1)


@pytest.fixture(scope="session")
def tiny_glue(tmp_path_factory):
    return make_glue_tsv(tmp_path_factory.mktemp("glue") / "glue_data")


@pytest.fixture(scope="session")
def shared_glue():
    if not (SHARED_GLUE / "RTE" / "dev.tsv").is_file():
        pytest.skip(f"real GLUE files not found at {SHARED_GLUE} (the ../shared/glue folder of the checkout)")
    return SHARED_GLUE


@pytest.fixture(scope="session")
def rxn_albert():
    """rxnmapper's pretrained ALBERT masked LM (reaction SMILES), converted to safetensors with a fast tokenizer
    (see rxn.py); built once under .cache/rxnmapper, skipped, saying how to get it, where the wheel cannot be had."""
    from rxn import RxnUnavailable, build_rxn_albert

    try:
        return build_rxn_albert(RXN_CACHE)
    except RxnUnavailable as e:
        pytest.skip(f"rxnmapper's ALBERT: {e}")
