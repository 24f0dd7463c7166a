"""Fine-tuning: tokenize once, seed pairing of heads, outputs and their numbers."""

import json
import subprocess

import numpy as np
import pandas as pd
import pytest
import torch
from datasets import load_from_disk
from helpers import FINETUNE_PARAMS as PARAMS
from helpers import REPO
from layerlens import download, finetune, layermap, tasks, tokenization
from layerlens.errors import ConfigError, InputError
from layerlens.manifest import write_manifest
from transformers import AutoModelForSequenceClassification


@pytest.fixture(scope="module")
def prepared(tiny_bert, tiny_glue, tmp_path_factory):
    root = tmp_path_factory.mktemp("ft")
    download.fetch_model(str(tiny_bert), "main", root / "models" / "tiny", name="tiny")
    layermap.build_variant(root / "models" / "tiny", root / "models" / "tiny-dup", [0, 1, 2, 2])
    layermap.build_variant(root / "models" / "tiny", root / "models" / "tiny-id", [0, 1, 2])
    for task in ("rte", "stsb"):
        download.fetch_glue(task, "tsv", root / "glue" / task, tsv_dir=tiny_glue)
        tokenization.tokenize_task(root / "glue" / task, root / "models" / "tiny", root / "tok" / task, task, 32)
    return root


def test_tokenized_once_without_padding(prepared, tiny_bert):
    from transformers import AutoTokenizer

    data = load_from_disk(str(prepared / "tok" / "rte"))
    raw = load_from_disk(str(prepared / "glue" / "rte"))
    tok = AutoTokenizer.from_pretrained(str(tiny_bert))
    for i in (0, 5):
        ex = raw["validation"][i]
        expected = tok(ex["sentence1"], ex["sentence2"], truncation=True, max_length=32)["input_ids"]
        assert data["validation"][i]["input_ids"] == expected  # no padding stored
        assert data["validation"][i]["length"] == len(expected)
    assert set(data["train"].column_names) >= {"input_ids", "attention_mask", "label", "idx", "length"}
    assert "sentence1" not in data["train"].column_names


def test_same_seed_same_head_and_data_order_for_base_and_variant(prepared, tmp_path):
    """Through finetune() itself: a variant that is the identity map of its base is the same network, so with the
    same seed it must end with exactly the base's weights (same classifier-head initialisation, dropout and data
    order); another seed must not."""
    from safetensors.torch import load_file

    params = {**PARAMS, "epochs": 1, "keep_weights": True}
    runs = {}
    for name, model, seed in (("base", "tiny", 7), ("identity", "tiny-id", 7), ("other_seed", "tiny", 8)):
        finetune.finetune(prepared / "models" / model, prepared / "tok" / "rte", tmp_path / name, task="rte",
                          seed=seed, params=params)
        runs[name] = load_file(str(tmp_path / name / "model" / "model.safetensors"))
    assert runs["base"].keys() == runs["identity"].keys()
    for key, tensor in runs["base"].items():
        assert torch.equal(tensor, runs["identity"][key]), key
    assert not torch.equal(runs["base"]["classifier.weight"], runs["other_seed"]["classifier.weight"])


def test_a_half_precision_checkpoint_trains_in_float32(prepared, tmp_path):
    """transformers 5 loads with dtype="auto": a checkpoint saved in bf16 must still train with float32 master
    weights (mixed precision is autocast's job), so the trained weights it keeps are float32."""
    import shutil

    from safetensors.torch import load_file

    half = tmp_path / "bf16"
    AutoModelForSequenceClassification.from_pretrained(str(prepared / "models" / "tiny"), num_labels=2).to(
        torch.bfloat16).save_pretrained(str(half))
    for f in (prepared / "models" / "tiny").iterdir():
        if f.name.startswith(("vocab", "tokenizer", "special")):
            shutil.copy(f, half / f.name)
    assert json.loads((half / "config.json").read_text())["dtype"] == "bfloat16"
    assert {t.dtype for t in load_file(str(half / "model.safetensors")).values()} == {torch.bfloat16}
    write_manifest(half, {"kind": "model", "name": "bf16"})
    finetune.finetune(half, prepared / "tok" / "rte", tmp_path / "cell", task="rte", seed=1,
                      params={**PARAMS, "epochs": 1, "keep_weights": True})
    trained = load_file(str(tmp_path / "cell" / "model" / "model.safetensors"))
    assert {t.dtype for t in trained.values()} == {torch.float32}


@pytest.mark.parametrize("task", ["rte", "stsb"])
def test_finetune_cell(prepared, task, tmp_path):
    out = tmp_path / "cell"
    rec = finetune.finetune(prepared / "models" / "tiny-dup", prepared / "tok" / task, out, task=task, seed=3,
                            params=PARAMS, model_name="tiny-dup")
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "predictions.tsv"]  # weights dropped
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["model"] == "tiny-dup" and saved["task"] == task and saved["seed"] == 3
    assert saved["n_train"] == 40 and saved["n_eval"] == {"validation": 20}
    assert saved["train_seconds"] > 0 and not saved["diverged"]
    assert saved["newly_initialised"] == ["classifier.bias", "classifier.weight"]
    pred = pd.read_csv(out / "predictions.tsv", sep="\t")
    assert len(pred) == 20 and list(pred.columns) == ["split", "idx", "label", "prediction"]
    # the metrics are those of the saved predictions, recomputed independently
    m = tasks.compute_metrics(task, {"validation": (pred["label"].to_numpy(), pred["prediction"].to_numpy())})
    for k, v in m.items():
        assert saved[k] == pytest.approx(v)
    assert saved["main_score"] == pytest.approx(np.mean(list(m.values())))
    assert rec["main_score"] == saved["main_score"]
    # what the run was: the variant's layer map and depth, the library versions, the workflow's commit
    assert saved["layer_map"] == "0-2,2" and saved["num_layers"] == 4
    assert saved["versions"]["torch"] == torch.__version__
    assert saved["versions"]["transformers"] == __import__("transformers").__version__
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    assert saved["workflow_commit"] == (head.stdout.strip() if head.returncode == 0 else None)


def test_a_base_run_records_the_identity_map(prepared, tmp_path):
    rec = finetune.finetune(prepared / "models" / "tiny", prepared / "tok" / "rte", tmp_path / "c", task="rte",
                            seed=1, params={**PARAMS, "epochs": 1}, model_name="tiny")
    assert (rec["base"], rec["num_layers"], rec["layer_map"]) == ("tiny", 3, "0-2")


def test_tensorboard_tracking_writes_the_logged_losses(prepared, tmp_path):
    """report_to: tensorboard: event files in the tracking folder, holding the training losses metrics.json logs."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    rec = finetune.finetune(prepared / "models" / "tiny", prepared / "tok" / "rte", tmp_path / "cell", task="rte",
                            seed=1, params={**PARAMS, "report_to": "tensorboard"}, model_name="tiny",
                            tracking_dir=tmp_path / "tb")
    events = list((tmp_path / "tb").rglob("events.out.tfevents.*"))
    assert events
    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    logged = {e.step: e.value for e in acc.Scalars("train/loss")}
    assert logged == {h["step"]: pytest.approx(h["loss"], rel=1e-5) for h in rec["loss_history"]}
    assert sorted(p.name for p in (tmp_path / "cell").iterdir()) == ["metrics.json", "predictions.tsv"]


def test_a_tracker_that_is_not_installed_is_named(prepared, tmp_path, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(ConfigError, match="finetune.report_to.*pip install wandb"):
        finetune.finetune(prepared / "models" / "tiny", prepared / "tok" / "rte", tmp_path / "w", task="rte", seed=1,
                          params={**PARAMS, "report_to": "wandb"})


def test_same_seed_same_result(prepared, tmp_path):
    a = finetune.finetune(prepared / "models" / "tiny", prepared / "tok" / "rte", tmp_path / "a", task="rte",
                          seed=5, params=PARAMS)
    b = finetune.finetune(prepared / "models" / "tiny", prepared / "tok" / "rte", tmp_path / "b", task="rte",
                          seed=5, params=PARAMS)
    assert a["train_loss"] == b["train_loss"]
    assert (tmp_path / "a" / "predictions.tsv").read_text() == (tmp_path / "b" / "predictions.tsv").read_text()


def test_keep_weights(prepared, tmp_path):
    finetune.finetune(prepared / "models" / "tiny", prepared / "tok" / "rte", tmp_path / "k", task="rte", seed=1,
                      params={**PARAMS, "epochs": 1, "keep_weights": True})
    assert (tmp_path / "k" / "model" / "model.safetensors").is_file()


def test_tokenizer_that_does_not_match_the_model(prepared, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(prepared / "models" / "tiny", bad)
    cfg = json.loads((bad / "config.json").read_text())
    cfg["vocab_size"] = 50
    (bad / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(InputError, match="config.json: sha256 differs from the manifest"):
        tokenization.tokenize_task(prepared / "glue" / "rte", bad, tmp_path / "tok", "rte", 32)
    write_manifest(bad, {"kind": "model", "name": "bad"})  # as if it had been downloaded like this
    with pytest.raises(InputError, match="the tokenizer has \\d+ tokens but the model's vocab_size is 50"):
        tokenization.tokenize_task(prepared / "glue" / "rte", bad, tmp_path / "tok", "rte", 32)


def test_nan_loss_is_detected_and_reported(prepared, tmp_path):
    """A model whose weights hold a NaN: the run stops, is flagged diverged, and its scores are NaN, not numbers."""
    import shutil

    from safetensors.torch import load_file, save_file

    bad = tmp_path / "nan-model"
    shutil.copytree(prepared / "models" / "tiny", bad)
    state = load_file(str(bad / "model.safetensors"))
    state["bert.encoder.layer.1.output.dense.weight"][0, 0] = float("nan")
    save_file(state, str(bad / "model.safetensors"), metadata={"format": "pt"})
    write_manifest(bad, {"kind": "model", "name": "nan-model"})
    rec = finetune.finetune(bad, prepared / "tok" / "rte", tmp_path / "cell", task="rte", seed=1,
                            params={**PARAMS, "logging_steps": 1})
    assert rec["diverged"] and rec["diverged_at_step"] == 1
    assert rec["global_steps"] < 10  # stopped early, did not train on for nothing
    saved = json.loads((tmp_path / "cell" / "metrics.json").read_text())  # strict JSON: NaN is written as null
    assert saved["accuracy"] is None and saved["main_score"] is None and saved["diverged"] is True


@pytest.mark.parametrize("task", ["rte", "stsb"])
def test_constant_predictions_are_degenerate_not_diverged(prepared, task, tmp_path):
    """The last layer's LayerNorm weight zeroed and no learning: every input gets the same hidden state, hence the
    same prediction. The run is degenerate (any task), not diverged; a classifier's scores stay defined, STS-B's
    correlations of a constant are not (null)."""
    import shutil

    from safetensors.torch import load_file, save_file

    flat = tmp_path / "flat-model"
    shutil.copytree(prepared / "models" / "tiny", flat)
    state = load_file(str(flat / "model.safetensors"))
    state["bert.encoder.layer.2.output.LayerNorm.weight"].zero_()
    save_file(state, str(flat / "model.safetensors"), metadata={"format": "pt"})
    write_manifest(flat, {"kind": "model", "name": "flat-model"})
    rec = finetune.finetune(flat, prepared / "tok" / task, tmp_path / "cell", task=task, seed=1,
                            params={**PARAMS, "learning_rate": 0.0, "epochs": 1, "eval_batch_size": 32})
    pred = pd.read_csv(tmp_path / "cell" / "predictions.tsv", sep="\t")
    assert pred["prediction"].nunique() == 1  # the setup does what it says
    saved = json.loads((tmp_path / "cell" / "metrics.json").read_text())
    assert saved["degenerate"] is True and saved["diverged"] is False and rec["degenerate"]
    if task == "stsb":
        assert saved["pearson"] is None and saved["spearmanr"] is None and saved["main_score"] is None
    else:
        assert saved["accuracy"] == pytest.approx(np.mean(pred["label"] == pred["prediction"]))


def test_checkpoints_hold_no_pickle(prepared, tmp_path):
    from layerlens.checkpoint import SafeTrainer  # noqa: F401  (the trainer whose checkpoints these are)

    params = {**PARAMS, "checkpoint_steps": 2, "logging_steps": 2}
    key = finetune.run_key(prepared / "models" / "tiny", prepared / "tok" / "rte", "rte", 1, params)
    # interrupt by raising inside training after the first checkpoint, as a crash would
    from transformers import TrainerCallback

    class Crash(TrainerCallback):
        def on_save(self, args, state, control, **kw):
            raise KeyboardInterrupt

    import layerlens.checkpoint as ck

    orig = ck.TimedCheckpoints
    ck.TimedCheckpoints = lambda minutes: Crash()
    try:
        with pytest.raises(KeyboardInterrupt):
            finetune.finetune(prepared / "models" / "tiny", prepared / "tok" / "rte", tmp_path / "c", task="rte",
                              seed=1, params=params)
    finally:
        ck.TimedCheckpoints = orig
    ckpt = next((tmp_path / "c" / "checkpoints" / key).glob("checkpoint-*"))
    names = sorted(p.name for p in ckpt.iterdir())
    assert {"model.safetensors", "optimizer.safetensors", "optimizer.json", "scheduler.json", "rng_state.safetensors",
            "rng_state.json", "trainer_state.json"} <= set(names)
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pth", ".pkl"))], names
    assert not (tmp_path / "c" / "metrics.json").exists()
    # a rerun with the same settings resumes from it; different settings start afresh and drop it
    rec = finetune.finetune(prepared / "models" / "tiny", prepared / "tok" / "rte", tmp_path / "c", task="rte", seed=1,
                            params=params)
    assert rec["resumed_from"] == ckpt.name and not (tmp_path / "c" / "checkpoints").exists()
