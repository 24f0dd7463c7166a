"""Fixtures built by the tests themselves: tiny BERTs with a WordPiece tokenizer, tiny GLUE folders."""

from __future__ import annotations

import collections
import json
import random
import re
import string
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_GLUE = (REPO / ".." / "shared" / "glue").resolve()

#: a few seconds of fine-tuning a tiny model on the tiny GLUE files (shared by the fine-tuning and control tests)
FINETUNE_PARAMS = {"learning_rate": 5e-3, "batch_size": 8, "eval_batch_size": 16, "epochs": 2, "max_length": 32,
                   "max_train_samples": 40, "max_eval_samples": 20, "warmup_ratio": 0.1, "weight_decay": 0.01,
                   "logging_steps": 2, "keep_weights": False}

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

WORDS = ("the a an cat dog bird man woman child house car tree river city book film story song game "
         "is was are were has had will can not no yes very good bad great poor happy sad big small old new "
         "runs ran sees saw likes liked reads read plays played eats ate goes went sings sang writes wrote "
         "and or but because if then so this that these those it he she they we you i of in on at to from "
         "with by for about over under after before quickly slowly often never always today yesterday").split()


def make_vocab(path: Path, corpus: list[str] | None = None, extra_words: int = 400) -> Path:
    """A WordPiece vocab: specials, characters (whole and ## pieces), then the commonest words."""
    counts = collections.Counter(WORDS * 3)
    for line in corpus or []:
        counts.update(re.findall(r"[a-z0-9]+", line.lower()))
    chars = list(string.ascii_lowercase + string.digits + string.punctuation)
    vocab = SPECIALS + chars + ["##" + c for c in string.ascii_lowercase + string.digits]
    seen = set(vocab)
    for word, _ in counts.most_common():
        if len(vocab) >= len(SPECIALS) + len(chars) + 36 + extra_words:
            break
        if word not in seen:
            vocab.append(word)
            seen.add(word)
    path.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return path


def make_tiny_bert(path: Path, *, layers: int = 2, hidden: int = 32, heads: int = 2, seed: int = 0,
                   pretraining: bool = True, corpus: list[str] | None = None, max_position: int = 128,
                   train_steps: int = 0) -> Path:
    """Save a tiny BERT with its full MLM head (and, with ``pretraining``, pooler and NSP head, as the
    original Google checkpoints have) plus a WordPiece tokenizer to ``path``.

    With ``train_steps``, the model is first trained for that many steps to reconstruct its (unmasked) input
    from the last layer, so the probe has something to find; otherwise its weights are random."""
    import torch
    from transformers import BertConfig, BertForMaskedLM, BertForPreTraining, BertTokenizerFast

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    vocab_file = make_vocab(path / "vocab.txt", corpus)
    tokens = vocab_file.read_text(encoding="utf-8").split("\n")[:-1]
    tokenizer = BertTokenizerFast(vocab={t: i for i, t in enumerate(tokens)}, do_lower_case=True)
    tokenizer.save_pretrained(str(path))
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=heads, intermediate_size=2 * hidden,
                        max_position_embeddings=max_position, hidden_dropout_prob=0.1,
                        attention_probs_dropout_prob=0.1)
    torch.manual_seed(seed)
    model = (BertForPreTraining if pretraining else BertForMaskedLM)(config)
    if train_steps:
        _train_reconstruction(model, tokenizer, train_steps, seed)
    model.eval()
    model.save_pretrained(str(path))
    return path


def _train_reconstruction(model, tokenizer, steps: int, seed: int) -> None:
    """Train the MLM head, on the last layer only, to give back the input tokens (15% masked, as in BERT)."""
    import torch

    rng = random.Random(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        batch = tokenizer([sentence(rng) for _ in range(16)], padding=True, return_tensors="pt")
        labels = batch["input_ids"].clone()
        labels[batch["attention_mask"] == 0] = -100
        ids = batch["input_ids"].clone()
        mask = (torch.rand(ids.shape) < 0.15) & (batch["attention_mask"] == 1)
        ids[mask] = tokenizer.mask_token_id
        out = model(input_ids=ids, attention_mask=batch["attention_mask"])
        logits = out.prediction_logits if hasattr(out, "prediction_logits") else out.logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1))
        opt.zero_grad()
        loss.backward()
        opt.step()


def sentence(rng: random.Random, n: int | None = None) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n or rng.randint(4, 12))) + " ."


def make_glue_tsv(root: Path, tasks=("rte", "mrpc", "sst2", "cola", "stsb", "wnli", "qnli"), n_train: int = 48,
                  n_dev: int = 24, seed: int = 0) -> Path:
    """A tiny glue_data folder in the classic layout (headers, label formats and quirks as the originals).

    MNLI and QQP (not made unless asked for) draw from their own random streams, so asking for them leaves the
    other tasks' files as they were. MNLI: train.tsv has one annotator label (label1), dev_matched.tsv and
    dev_mismatched.tsv five (label1..label5), ``n_dev`` and ``n_dev + 3`` rows; label1 differs from gold_label in
    some rows, as in the original. QQP: ``n_train`` / ``n_dev`` good rows, and in train.tsv the malformed rows of
    the published file (see :data:`QQP_TRAIN_MALFORMED_LINES`)."""
    rng = random.Random(seed)
    root = Path(root)

    def write(rel, header, rows):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        lines = (["\t".join(header)] if header else []) + ["\t".join(map(str, r)) for r in rows]
        p.write_text("\n".join(lines) + "\n", encoding="utf-8")

    for split, n in (("train", n_train), ("dev", n_dev)):
        if "rte" in tasks:
            rows = []
            for i in range(n):
                s1 = sentence(rng)
                ent = rng.random() < 0.5
                s2 = s1 if ent else sentence(rng)
                rows.append((i, s1, s2, "entailment" if ent else "not_entailment"))
            write(f"RTE/{split}.tsv", ["index", "sentence1", "sentence2", "label"], rows)
        if "qnli" in tasks:
            rows = [(i, sentence(rng), sentence(rng), rng.choice(["entailment", "not_entailment"])) for i in range(n)]
            write(f"QNLI/{split}.tsv", ["index", "question", "sentence", "label"], rows)
        if "wnli" in tasks:
            rows = [(i, sentence(rng), sentence(rng), rng.randint(0, 1)) for i in range(n)]
            write(f"WNLI/{split}.tsv", ["index", "sentence1", "sentence2", "label"], rows)
        if "mrpc" in tasks:
            rows = []
            for i in range(n):
                s1 = sentence(rng)
                eq = rng.random() < 0.6
                rows.append((int(eq), 1000 + i, 2000 + i, s1, s1 if eq else sentence(rng)))
            p = root / f"MRPC/{split}.tsv"
            write(f"MRPC/{split}.tsv", ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"], rows)
            p.write_text("\ufeff" + p.read_text(encoding="utf-8"), encoding="utf-8")  # the original has a BOM
        if "sst2" in tasks:
            rows = []
            for i in range(n):
                pos = rng.random() < 0.5
                rows.append((sentence(rng) + (" good great happy" if pos else " bad poor sad"), int(pos)))
            write(f"SST-2/{split}.tsv", ["sentence", "label"], rows)
        if "cola" in tasks:
            rows = [("gj04", lab, "" if lab else "*", sentence(rng)) for lab in (rng.randint(0, 1) for _ in range(n))]
            write(f"CoLA/{split}.tsv", None, rows)
        if "stsb" in tasks:
            rows = []
            for i in range(n):
                s1 = sentence(rng)
                score = round(rng.uniform(0, 5), 3)
                rows.append((i, "main-captions", "MSRvid", "2012test", f"{i:04d}", "none", "none", s1,
                             s1 if score > 2.5 else sentence(rng), score))
            write(f"STS-B/{split}.tsv", ["index", "genre", "filename", "year", "old_index", "source1", "source2",
                                        "sentence1", "sentence2", "score"], rows)
    if "mnli" in tasks:
        _write_mnli(write, random.Random(f"{seed}:mnli"), n_train, n_dev)
    if "qqp" in tasks:
        _write_qqp(write, random.Random(f"{seed}:qqp"), n_train, n_dev)
    return root


MNLI_LABELS = ("entailment", "neutral", "contradiction")
_MNLI_HEAD = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
              "sentence1_parse", "sentence2_parse", "sentence1", "sentence2"]


def _write_mnli(write, rng: random.Random, n_train: int, n_dev: int) -> None:
    """MNLI's three files with the original headers: train with label1, the dev files with label1..label5."""
    files = (("train", n_train, 1, ("fiction", "government", "slate", "telephone", "travel")),
             ("dev_matched", n_dev, 5, ("fiction", "government", "slate", "telephone", "travel")),
             ("dev_mismatched", n_dev + 3, 5, ("facetoface", "letters", "nineeleven", "oup", "verbatim")))
    for name, n, annotators, genres in files:
        rows = []
        for i in range(n):
            s1, s2 = sentence(rng), sentence(rng)
            gold = rng.choice(MNLI_LABELS)
            # a minority of annotators may disagree with the gold label (label1 included)
            votes = [gold if rng.random() < 0.7 else rng.choice(MNLI_LABELS) for _ in range(annotators)]
            prompt = 10000 + i
            rows.append((i, prompt, f"{prompt}{gold[0]}", rng.choice(genres), f"( {s1} )", f"( {s2} )",
                         f"(ROOT (S {s1}))", f"(ROOT (S {s2}))", s1, s2, *votes, gold))
        labels = [f"label{k}" for k in range(1, annotators + 1)]
        write(f"MNLI/{name}.tsv", _MNLI_HEAD + labels + ["gold_label"], rows)


#: the lines of the fixture's QQP/train.tsv (with the default n_train=48) that hold malformed rows: a row split in
#: two by a line break inside question1 (lines 8-9; the second part starts with a '"', as line 97,931 of the
#: original does), one split inside question2 (lines 25-26) and a last row cut short (line 54)
QQP_TRAIN_MALFORMED_LINES = [8, 9, 25, 26, 54]


def _write_qqp(write, rng: random.Random, n_train: int, n_dev: int) -> None:
    header = ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"]
    for split, n in (("train", n_train), ("dev", n_dev)):
        rows = []
        for i in range(n):
            q1 = sentence(rng)
            dup = rng.random() < 0.4
            rows.append((i, 2 * i + 1, 2 * i + 2, q1, q1 if dup else sentence(rng), int(dup)))
        if split == "train":
            rows.insert(6, (900, 1801, 1802, sentence(rng) + '\n"', sentence(rng), 0))
            rows.insert(22, (901, 1803, 1804, sentence(rng), sentence(rng) + "\nand more ?", 1))
            rows.append((902, 1805, 1806, "a question cut"))
        write(f"QQP/{split}.tsv", header, rows)


def write_config(workdir, glue_dir, **finetune):
    """The end-to-end tests' config: a tiny BERT, one fine-tuned variant, a probe-only sweep, 2 tasks, 2 seeds."""
    import yaml

    make_tiny_bert(workdir / "tiny-bert", layers=3, train_steps=30)
    cfg = {
        "models": {"tiny": {"source": "./tiny-bert"}},
        "variants": {"tiny-dup2": {"base": "tiny", "layers": "0-2,2"}},
        "sweeps": [{"base": "tiny", "kind": "remove_each"}],  # probe-only: probed and compared, not fine-tuned
        "glue": {"source": "tsv", "dir": str(glue_dir)},
        "tasks": ["rte", "mrpc"],
        "seeds": [1, 2],
        "probe": {"sentences": 60, "max_length": 48, "bootstrap": 200},
        "statistics": {"bootstrap": 200},
        "finetune": {"batch_size": 8, "epochs": 1, "max_length": 64, "learning_rate": 1e-3, "logging_steps": 5,
                     **finetune},
    }
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))
    return cfg


def head_reading(probe, mode="input", head=None):
    """A probe table's rows of one mode through one head (default: the first), indexed from 0."""
    head = head or next(h for h in probe["head"] if h != "none")
    return probe[(probe["mode"] == mode) & (probe["reading"] == "head") & (probe["head"] == head)].reset_index(
        drop=True)


def check_outputs(workdir, cfg, n_eval):
    """Every output of the end-to-end workflow exists and holds sane numbers (local and SLURM runs alike)."""
    import pandas as pd

    models = ["tiny", "tiny-dup2"]
    res = workdir / "results"
    manifest = json.loads((workdir / "resources" / "manifest.json").read_text())
    assert set(manifest["models"]) == {"tiny"} and set(manifest["glue"]) == {"rte", "mrpc"}

    for model, depth in (("tiny", 3), ("tiny-dup2", 4)):
        probe = head_reading(pd.read_csv(res / "probe" / f"{model}.csv"))
        assert list(probe["layer"]) == list(range(depth + 1))
        assert probe[["top1", "top5", "agree_last"]].apply(lambda c: c.between(0, 1)).all().all()
        assert (probe["top1"] <= probe["top5"]).all() and probe["agree_last"].iloc[-1] == 1.0
        assert (probe["cross_entropy"] > 0).all() and probe["n_tokens"].iloc[0] > 100
        assert (res / "probe" / f"{model}.png").stat().st_size > 1000
    assert list(head_reading(pd.read_csv(res / "probe" / "tiny-dup2.csv"))["source_layer"]) == [0, 1, 2, 3, 3]
    assert list(head_reading(pd.read_csv(res / "probe" / "tiny-rm1.csv"))["source_layer"]) == [0, 1, 3]
    assert not (workdir / "resources" / "models" / "tiny-rm1").exists()  # probe-only: never written to disk
    assert not (res / "finetune" / "tiny-rm1").exists()
    change = pd.read_csv(res / "report" / "output_change.csv").set_index("variant")
    assert set(change.index) == {"tiny-dup2", "tiny-rm0", "tiny-rm1", "tiny-rm2"}
    assert change.loc["tiny-rm1", "kind"] == "remove" and change.loc["tiny-dup2", "kind"] == "duplicate"
    assert (change["kl"] >= 0).all() and change["agree_top1"].between(0, 1).all()

    for model in models:
        for task in cfg["tasks"]:
            for seed in cfg["seeds"]:
                cell = res / "finetune" / model / task / f"seed{seed}"
                m = json.loads((cell / "metrics.json").read_text())
                assert (m["model"], m["task"], m["seed"]) == (model, task, seed)
                assert 0 <= m["accuracy"] <= 1 and 0 <= m["main_score"] <= 1
                if task == "mrpc":
                    assert 0 <= m["f1"] <= 1
                pred = pd.read_csv(cell / "predictions.tsv", sep="\t")
                assert len(pred) == n_eval[task] == sum(m["n_eval"].values())
                assert (res / "benchmarks" / "finetune" / model / task / f"seed{seed}.tsv").is_file()
                assert (res / "logs" / "finetune" / model / task / f"seed{seed}.log").stat().st_size > 0

    glue = pd.read_csv(res / "report" / "glue.csv")
    assert set(glue["model"]) == set(models) and set(glue["task"]) == {"rte", "mrpc", "average"}
    assert (glue["n_seeds"] == 2).all()
    assert glue[glue.model == "tiny-dup2"]["delta_mean"].notna().all()
    md = (res / "report" / "glue.md").read_text()
    assert "tiny-dup2" in md and "±" in md
    probe_all = pd.read_csv(res / "report" / "probe.csv")
    assert set(probe_all["model"]) == set(models) | {"tiny-rm0", "tiny-rm1", "tiny-rm2"}
    sig = pd.read_csv(res / "report" / "significance.csv")
    assert set(sig["task"]) == {"rte", "mrpc", "average"} and set(sig["variant"]) == {"tiny-dup2"}
    assert sig["p_boot"].between(0, 1).all() and (sig["n_pairs"] == 2).all()
    cost = pd.read_csv(res / "report" / "cost.csv")
    assert (cost["wall_h_per_run"] > 0).all() and (cost["train_tokens_per_s"] > 0).all()
    for f in ("probe.md", "probe.tex", "glue.tex", "glue_deltas.png", "glue_deltas.pdf", "probe_tiny.png",
              "probe_tiny.pdf", "output_change.png", "output_change.pdf", "output_change.tex", "cost.md",
              "probe.html", "glue.html", "cost.html", "output_change.html", "runs.csv"):
        assert (res / "report" / f).stat().st_size > 100
    runs = pd.read_parquet(res / "report" / "runs.parquet")  # one row per cell, as its metrics.json says
    assert len(runs) == len(models) * len(cfg["tasks"]) * len(cfg["seeds"])
    for r in runs.itertuples():
        m = json.loads((res / "finetune" / r.model / r.task / f"seed{r.seed}" / "metrics.json").read_text())
        assert r.score == m["main_score"] and r.layer_map == m["layer_map"] and r.torch == m["versions"]["torch"]
    assert set(runs.loc[runs.model == "tiny-dup2", "layer_map"]) == {"0-2,2"}


# --- tiny models of every supported family ---------------------------------------------------------------

#: family -> (config class, masked-LM class, config kwargs); every family shares the WordPiece vocab above,
#: with its special-token ids ([PAD]=0, [CLS]=2, [SEP]=3) written into the config so the two agree.
FAMILY_SPECS = {
    "bert": ("BertConfig", "BertForMaskedLM", {}),
    "roberta": ("RobertaConfig", "RobertaForMaskedLM", {"bos_token_id": 2, "eos_token_id": 3}),
    "xlm-roberta": ("XLMRobertaConfig", "XLMRobertaForMaskedLM", {"bos_token_id": 2, "eos_token_id": 3}),
    "albert": ("AlbertConfig", "AlbertForMaskedLM", {"embedding_size": 16, "num_hidden_groups": 1,
                                                      "inner_group_num": 1, "bos_token_id": 2, "eos_token_id": 3}),
    "distilbert": ("DistilBertConfig", "DistilBertForMaskedLM", {}),
    "electra": ("ElectraConfig", "ElectraForMaskedLM", {"embedding_size": 16}),
    "electra-discriminator": ("ElectraConfig", "ElectraForPreTraining", {"embedding_size": 16}),
    "deberta-v2": ("DebertaV2Config", "DebertaV2ForMaskedLM",
                   {"relative_attention": True, "position_buckets": 8, "max_relative_positions": 16,
                    "pos_att_type": ["p2c", "c2p"], "norm_rel_ebd": "layer_norm", "share_att_key": True,
                    "type_vocab_size": 0, "position_biased_input": False}),
    "modernbert": ("ModernBertConfig", "ModernBertForMaskedLM",
                   {"global_attn_every_n_layers": 2, "local_attention": 4, "bos_token_id": 2, "cls_token_id": 2,
                    "eos_token_id": 3, "sep_token_id": 3}),
}


def make_tiny_family(path: Path, family: str, *, layers: int = 3, hidden: int = 32, seed: int = 0,
                     **overrides) -> Path:
    """Save a tiny random model of ``family`` (a key of FAMILY_SPECS) with a WordPiece tokenizer to ``path``."""
    import torch
    import transformers
    from transformers import BertTokenizerFast

    config_cls, model_cls, extra = FAMILY_SPECS[family]
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokens = make_vocab(path / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1]
    tokenizer = BertTokenizerFast(vocab={t: i for i, t in enumerate(tokens)}, do_lower_case=True)
    tokenizer.save_pretrained(str(path))
    if family == "distilbert":
        sizes = {"dim": hidden, "n_layers": layers, "n_heads": 2, "hidden_dim": 2 * hidden}
    else:
        sizes = {"hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": 2,
                 "intermediate_size": 2 * hidden}
    kwargs = {"vocab_size": len(tokenizer), "pad_token_id": 0, "max_position_embeddings": 130, **sizes,
              **extra, **overrides}
    config = getattr(transformers, config_cls)(**kwargs)
    torch.manual_seed(seed)
    model = getattr(transformers, model_cls)(config).eval()
    model.save_pretrained(str(path))
    return path


def write_sentence_table(path: Path, sentences: list[str], *, pairs: bool = False) -> Path:
    """A probe sentence table (as the probe_sentences rule writes it) with one example per sentence or, with
    ``pairs``, every sentence twice as the two sentences of one example (pairs as alike as they can be)."""
    import pandas as pd
    from layerlens.io import write_tsv

    k = 2 if pairs else 1
    write_tsv(pd.DataFrame({"task": "mrpc", "idx": [i for i in range(len(sentences)) for _ in range(k)],
                            "column": ["sentence1", "sentence2"][:k] * len(sentences),
                            "sentence": [s for s in sentences for _ in range(k)]}), path)
    return path


def kept_states(model_dir, sentences):
    """Per sentence: every hidden state at the tokens the probe scores (not special, not [UNK]), float64."""
    import numpy as np
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForMaskedLM.from_pretrained(str(model_dir)).eval()
    out = []
    with torch.no_grad():
        for s in sentences:
            enc = tok(s, return_tensors="pt", return_special_tokens_mask=True)
            keep = (enc.pop("special_tokens_mask")[0] == 0) & (enc["input_ids"][0] != tok.unk_token_id)
            hidden = model(**enc, output_hidden_states=True).hidden_states
            out.append(np.stack([h[0][keep].double().numpy() for h in hidden]))  # (states, tokens, hidden)
    return out
