"""The probe's sentences and a fitted head's held-apart text, against the GLUE folders they come from."""

import pandas as pd
import pytest
from datasets import load_from_disk
from layerlens import sentences
from layerlens.download import fetch_glue


def glue_dirs(tsv_dir, root, tasks=("rte", "sst2")):
    dirs = {t: root / t for t in tasks}
    for t, d in dirs.items():
        fetch_glue(t, "tsv", d, tsv_dir=tsv_dir)
    return dirs


def test_sentence_selection_is_deterministic_and_round_robin(tiny_glue, tmp_path):
    dirs = glue_dirs(tiny_glue, tmp_path)
    a = sentences.select_sentences(dirs, 30)
    b = sentences.select_sentences(dirs, 30)
    pd.testing.assert_frame_equal(a, b)
    assert len(a) == 30 and a["sentence"].is_unique
    assert list(a["task"][:4]) == ["rte", "sst2", "rte", "sst2"]
    assert (a[a.task == "sst2"]["idx"].diff().dropna() > 0).all()  # in dev-set order
    out = tmp_path / "s.tsv"
    sentences.write_sentences(dirs, 5, out)
    pd.testing.assert_frame_equal(sentences.read_sentences(out), a[:5])


def test_the_text_is_held_apart_from_the_probe_sentences(tiny_glue, tmp_path):
    dirs = glue_dirs(tiny_glue, tmp_path)
    probe_sents = sentences.select_sentences(dirs, 30)["sentence"].tolist()
    train_text = set()
    for t, d in dirs.items():
        train = load_from_disk(str(d))["train"]
        for col in ("sentence1", "sentence2") if t == "rte" else ("sentence",):
            train_text.update(s.strip() for s in train[col])
    shared = sorted(train_text & set(probe_sents))
    chosen, counts = sentences.fit_sentences(dirs, 10_000, seed=1, exclude=probe_sents)
    assert not set(chosen) & set(probe_sents)
    assert counts["dropped_as_probe_sentences"] == len(shared) and counts["used"] == len(chosen)
    assert set(chosen) == train_text - set(probe_sents)  # all of it, from the train splits only
    again, _ = sentences.fit_sentences(dirs, 25, seed=1, exclude=probe_sents)
    assert again == sentences.fit_sentences(dirs, 25, seed=1, exclude=probe_sents)[0] and len(again) == 25
    assert again != sentences.fit_sentences(dirs, 25, seed=2, exclude=probe_sents)[0]


@pytest.mark.realdata
def test_real_rte_and_mrpc_dev_text_round_trips_byte_for_byte(shared_glue, tmp_path):
    """Every RTE and MRPC dev sentence (a fifth hold a double quote) comes back from sentences.tsv as it is in
    the original dev.tsv."""
    dirs = glue_dirs(shared_glue, tmp_path, ("rte", "mrpc"))
    out = tmp_path / "sentences.tsv"
    written = sentences.write_sentences(dirs, 100_000, out)
    back = sentences.read_sentences(out)
    changed = [(a, b) for a, b in zip(written["sentence"], back["sentence"]) if a.encode() != b.encode()]
    assert len(back) == len(written) and not changed, f"{len(changed)} sentences changed, e.g. {changed[:1]}"
    pd.testing.assert_frame_equal(back, written)
    raw = {"rte": raw_fields(shared_glue / "RTE" / "dev.tsv", (1, 2)),
           "mrpc": raw_fields(shared_glue / "MRPC" / "dev.tsv", (3, 4))}
    for task, fields in raw.items():
        got = back[back.task == task]["sentence"]
        assert got.is_unique and set(got) == set(fields)  # every field of the original file, unchanged
        assert sum('"' in s for s in got) == {"rte": 54, "mrpc": 138}[task]  # on 48 and 85 of the lines


def raw_fields(path, columns):
    """The text fields of an original GLUE file, split by hand (the files are unquoted TSV)."""
    lines = path.read_text(encoding="utf-8-sig").splitlines()[1:]
    return [line.split("\t")[c] for line in lines if line for c in columns]
