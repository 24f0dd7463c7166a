"""Layer similarity against direct computations: cosines and angles from the model's own ``output_hidden_states``
one sentence at a time, linear CKA by its Gram-matrix definition (Kornblith et al.) in numpy."""

import random

import numpy as np
import pytest
import torch
from helpers import kept_states, sentence, write_sentence_table
from layerlens import probe, similarity

SENTENCES = [sentence(random.Random(100 + i)) for i in range(14)] + ["the dog ☃ saw 中 ."]


def gram_cka(x, y):
    """Linear CKA from its definition: HSIC of the centred linear kernels, normalised."""
    n = x.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    kx, ky = h @ x @ x.T @ h, h @ y @ y.T @ h
    return np.sum(kx * ky) / (np.linalg.norm(kx) * np.linalg.norm(ky))


@pytest.fixture(scope="module")
def direct(tiny_bert):
    return kept_states(tiny_bert, SENTENCES)


@pytest.mark.parametrize("batch_size, chunk", [(32, 4096), (3, 5)])
def test_similarity_matches_a_direct_computation(tiny_bert, direct, batch_size, chunk):
    sim = similarity.Similarity(len(SENTENCES))
    probe.run_probe(tiny_bert, SENTENCES, batch_size=batch_size, chunk_tokens=chunk, bootstrap=0, device="cpu",
                    also=[sim])
    table = sim.table("tiny", bootstrap=0)
    states = np.concatenate(direct, axis=1)  # (4 states, all kept tokens, hidden)
    n_states = states.shape[0]
    assert len(table) == n_states * (n_states - 1) // 2 and set(table["n_tokens"]) == {states.shape[1]}
    unit = states / np.linalg.norm(states, axis=-1, keepdims=True)
    for r in table.itertuples():
        cos = np.sum(unit[r.from_state] * unit[r.to_state], axis=-1)
        assert r.n_layers == r.to_state - r.from_state
        assert r.cos == pytest.approx(cos.mean(), abs=1e-9)
        assert r.block_influence == pytest.approx(1 - cos.mean(), abs=1e-9)
        assert r.angular == pytest.approx(np.mean(np.arccos(np.clip(cos, -1, 1)) / np.pi), abs=1e-7)
        assert r.cka == pytest.approx(gram_cka(states[r.from_state], states[r.to_state]), rel=1e-4)
    assert list(table.query("n_layers == 1")["layers"]) == ["0", "1", "2"]
    assert table.query("from_state == 0 and to_state == 3")["layers"].item() == "0-2"


def test_cka_matrix_is_the_hand_matrix(tiny_bert, direct):
    sim = similarity.Similarity(len(SENTENCES))
    probe.run_probe(tiny_bert, SENTENCES, bootstrap=0, device="cpu", also=[sim])
    states = np.concatenate(direct, axis=1)
    hand = np.array([[gram_cka(a, b) for b in states] for a in states])
    got = similarity.cka_of(sim.table(bootstrap=0))
    np.testing.assert_allclose(got, hand, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(sim.cka_matrix(), hand, rtol=1e-4)


def test_cka_survives_a_large_mean_offset():
    """States far from the origin (as with BERT's outlier dimensions): the streamed float32 products still give the
    float64 CKA, because each chunk is shifted by a reference before its products."""
    from layerlens.forward import Chunk

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 8)) + 1e3
    y = x @ rng.normal(size=(8, 8)) + 0.5 * rng.normal(size=(300, 8)) - 2e3
    sim = similarity.Similarity(30)
    sent = np.repeat(np.arange(30), 10)
    for lo in range(0, 300, 64):
        rows = torch.arange(lo, min(lo + 64, 300))
        states = (torch.tensor(x, dtype=torch.float32), torch.tensor(y, dtype=torch.float32))
        sim.add(Chunk((states,), rows, torch.zeros(len(rows), dtype=torch.long), sent[lo:lo + 64]))
    assert sim.cka_matrix()[0, 1] == pytest.approx(gram_cka(x, y), rel=1e-4)


def test_the_probe_rule_writes_the_similarity_with_intervals_over_examples(tiny_bert, tmp_path):
    """Through probe_to_file: the interval resamples examples (a pair's two sentences together), so doubling every
    sentence into a pair leaves values and intervals exactly as they were; cka: false leaves the column empty."""
    from layerlens.download import fetch_model

    fetch_model(str(tiny_bert), "main", tmp_path / "tiny", name="tiny")
    settings = {"max_length": 64, "batch_size": 8, "chunk_tokens": 256, "bootstrap": 300}
    tables = {}
    for name, pairs in (("single", False), ("pairs", True)):
        write_sentence_table(tmp_path / f"{name}.tsv", SENTENCES, pairs=pairs)
        probe.probe_to_file(tmp_path / "tiny", tmp_path / f"{name}.tsv", tmp_path / f"{name}.csv", model_name="tiny",
                            settings=settings, similarity_csv=tmp_path / f"{name}-sim.csv", cka=name == "single")
        tables[name] = similarity.read_similarity(tmp_path / f"{name}-sim.csv")
    single, pairs = tables["single"], tables["pairs"]
    cols = ["cos", "angular", "angular_lo", "angular_hi", "bi_lo", "bi_hi"]
    np.testing.assert_allclose(pairs[cols], single[cols], rtol=1e-9)
    assert (single["angular_lo"] < single["angular"]).all() and (single["angular"] < single["angular_hi"]).all()
    assert (single["bi_lo"] <= single["block_influence"]).all() and (single["block_influence"] <= single["bi_hi"]).all()
    assert single["cka"].notna().all() and pairs["cka"].isna().all()
    assert set(single["model"]) == {"tiny"}


def test_report_tables_and_figure(tiny_bert, direct, tmp_path):
    """The report's per-layer rows are the table's n_layers = 1 rows; its most similar block of each size is the
    argmin computed here; Gromov's matrix puts block (l, n) at row l, column n - 1."""
    from layerlens.report import similarity as report

    sim = similarity.Similarity(len(SENTENCES))
    probe.run_probe(tiny_bert, SENTENCES, bootstrap=0, device="cpu", also=[sim])
    table = sim.table("tiny", bootstrap=100)
    layers = report.layer_table(table)
    assert list(layers.index) == [0, 1, 2]
    assert layers["cos(in, out)"].tolist() == [f"{v:.3f}" for v in table.query("n_layers == 1")["cos"]]
    states = np.concatenate(direct, axis=1)
    unit = states / np.linalg.norm(states, axis=-1, keepdims=True)
    blocks = report.block_table(table)
    for n in (1, 2, 3):
        dist = [np.mean(np.arccos(np.clip(np.sum(unit[a] * unit[a + n], -1), -1, 1))) for a in range(4 - n)]
        expected = table.query(f"n_layers == {n}")["layers"].iloc[int(np.argmin(dist))]
        assert blocks.loc[n, "most similar block"] == expected
    matrix = report.angular_matrix(table)
    assert matrix.shape == (3, 3) and np.isnan(matrix[2, 1]) and np.isnan(matrix[1, 2])
    assert matrix[1, 1] == table.query("from_state == 1 and to_state == 3")["angular"].item()
    report.write_similarity_report(table, tmp_path / "s.csv", tmp_path / "s.md", tmp_path / "s.tex")
    assert "## tiny (3 layers" in (tmp_path / "s.md").read_text()
    assert "tab:similarity" in (tmp_path / "s.tex").read_text()
    report.plot_similarity(table, [tmp_path / "s.png", tmp_path / "s.pdf"])
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "s.pdf").read_bytes()[:4] == b"%PDF"
