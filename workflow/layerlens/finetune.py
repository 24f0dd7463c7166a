"""GLUE fine-tuning of one (model, task, seed) cell with the Hugging Face Trainer.

- The data comes tokenized (:mod:`layerlens.tokenization`: once per tokenizer content, task and length, shared by
  every model with that tokenizer and every seed; no padding stored).
- :func:`finetune` sets the seed *before* the classifier head is built, so a base and its variants start from the
  same head for a given seed and see the data in the same order (``seed`` and ``data_seed``): their scores are
  paired by seed.
- Batches are padded per batch (:func:`layerlens.batches.collator`; on a GPU to a multiple of 8 tokens), never
  to ``max_length``.
- Metrics are computed locally (:mod:`layerlens.tasks`); ``metrics.json`` and ``predictions.tsv`` are written
  atomically; the trained weights are dropped unless ``keep_weights``.
- ``metrics.json`` flags a run ``diverged`` (non-finite loss, gradient norm or logits: null scores) or
  ``degenerate`` (finite, but the same prediction for every example of a dev split).
- The dev set is predicted once, after training, without its labels; with ``model_selection: holdout`` the epoch
  is chosen on held-out training examples (:mod:`layerlens.selection`). A control run (:mod:`layerlens.controls`)
  freezes the checkpoint's weights (``freeze_encoder``) or trains a compute-matched number of steps
  (``compute_matched``); metrics.json records either.
"""

from __future__ import annotations

import math
import shutil
import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import controls, flops, selection
from .errors import ConfigError, InputError
from .families import model_depth
from .grid import RUNTIME_KEYS
from .io import atomic_dir, sha256_file, sha256_text, write_json, write_tsv
from .layermap import format_layers, read_provenance
from .manifest import MANIFEST, verify
from .modelfiles import load_pretrained
from .provenance import provenance
from .tasks import compute_metrics, get_task, task_score
from .tokenization import check_tokenizer
from .tracking import tracking

# --- fine-tuning -----------------------------------------------------------------------------------------


def run_key(model_dir, tokenized_dir, task: str, seed: int, params: dict) -> str:
    """What a checkpoint belongs to: the exact model and data files, the task, the seed, the hyperparameters.
    A checkpoint is only ever resumed by a job with the same key."""
    import json

    settings = {k: v for k, v in params.items() if k not in RUNTIME_KEYS}
    blob = json.dumps({"model": sha256_file(Path(model_dir) / MANIFEST),
                       "data": sha256_file(Path(tokenized_dir) / MANIFEST),
                       "task": task, "seed": seed, "params": settings}, sort_keys=True)
    return sha256_text(blob)[:16]


def finetune(model_dir: str | Path, tokenized_dir: str | Path, out_dir: str | Path, *, task: str, seed: int,
             params: dict, model_name: str = "", tracking_dir: str | Path | None = None) -> dict:
    """Fine-tune and evaluate one cell; write ``metrics.json`` and ``predictions.tsv`` to ``out_dir``.

    ``params["report_to"]`` (``none``, ``tensorboard``, ``wandb``, ``mlflow``) goes to the Trainer; TensorBoard's
    event files go to ``tracking_dir`` (the rule gives ``results/tensorboard/{model}/{task}/seed{seed}``).

    With ``checkpoint_steps`` / ``checkpoint_minutes``, checkpoints go to ``out_dir/checkpoints/<run key>/`` and a
    rerun of an interrupted job resumes from the last one (exactly: weights, optimizer, scheduler, RNG and data
    position are restored). They are deleted once the cell is finished.
    """
    import torch
    from datasets import load_from_disk
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        TrainerCallback,
        TrainingArguments,
        set_seed,
    )
    from transformers.trainer_utils import get_last_checkpoint

    from . import batches
    from .checkpoint import SafeTrainer, TimedCheckpoints, mean_loss

    spec = get_task(task)
    verify(model_dir)
    verify(tokenized_dir)
    out_dir = Path(out_dir)
    checkpoints = out_dir / "checkpoints"
    work_dir = checkpoints / run_key(model_dir, tokenized_dir, task, seed, params)
    if checkpoints.is_dir():  # checkpoints of other settings can never be resumed
        for stale in checkpoints.iterdir():
            if stale != work_dir:
                shutil.rmtree(stale, ignore_errors=True)
    resume = get_last_checkpoint(str(work_dir)) if work_dir.is_dir() else None
    every = params.get("checkpoint_steps")
    if every and every % params["logging_steps"]:  # keep checkpoints on logging steps: exact loss logs on resume
        every = math.ceil(every / params["logging_steps"]) * params["logging_steps"]
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    check_tokenizer(tokenizer, model_dir)
    data = load_from_disk(str(tokenized_dir))
    train = _first(data["train"], params.get("max_train_samples"))
    evals = {s: _first(data[s], params.get("max_eval_samples")) for s in spec.dev_splits}
    holdout = None
    if params.get("model_selection", "last") == "holdout":
        train, holdout = selection.split_holdout(train, params["holdout_fraction"], seed)
    matched = None
    if params.get("compute_matched"):  # a compute-matched base: the variant's steps x its FLOPs per step over ours
        steps = flops.trainer_steps(len(train), params["batch_size"], params["epochs"])
        matched = controls.matched_max_steps(model_dir, params["compute_matched"], steps, spec.num_labels)

    set_seed(seed)  # before the head is built: same seed, same head, for a base and its variants
    attention = params.get("attention", "auto")
    try:
        model, info = load_pretrained(
            AutoModelForSequenceClassification, model_dir, num_labels=spec.num_labels, output_loading_info=True,
            problem_type="regression" if spec.is_regression else "single_label_classification",
            # auto: the library's choice, SDPA where the family's class supports it (DeBERTa-v2's does not)
            **({} if attention == "auto" else {"attn_implementation": attention}))
    except ValueError as e:
        if attention == "auto" or "attention" not in str(e):
            raise
        raise ConfigError("finetune.attention", f"{attention!r} is not available for {model_dir}: {e}; use auto "
                                                "(SDPA where the model class supports it, eager otherwise)") from None
    frozen = controls.freeze_pretrained(model, info["missing_keys"]) if params.get("freeze_encoder") else None

    use_cuda = torch.cuda.is_available()
    bf16, tf32 = precision_flags(params.get("precision", "auto"))
    report_to = tracking(params.get("report_to", "none"), tracking_dir)
    args = TrainingArguments(
        output_dir=str(work_dir),
        learning_rate=params["learning_rate"],
        per_device_train_batch_size=params["batch_size"],
        per_device_eval_batch_size=params["eval_batch_size"],
        num_train_epochs=params["epochs"],
        max_steps=matched["steps"] if matched else -1,
        max_grad_norm=params.get("max_grad_norm", 1.0),
        warmup_steps=params["warmup_ratio"],
        weight_decay=params["weight_decay"],
        lr_scheduler_type="linear",
        seed=seed,
        data_seed=seed,
        logging_steps=params["logging_steps"],
        logging_first_step=True,
        eval_strategy="epoch" if holdout is not None else "no",
        save_strategy="steps" if every else "no",
        save_steps=every or 500,
        save_total_limit=1,
        report_to=report_to,
        run_name=f"{model_name}/{task}/seed{seed}",
        bf16=bf16,
        tf32=tf32,
        torch_compile=bool(params.get("compile", False)),
        train_sampling_strategy="group_by_length" if params.get("group_by_length", False) else "random",
        dataloader_pin_memory=use_cuda,
        disable_tqdm=False,
    )
    class StopOnNonFiniteLoss(TrainerCallback):
        """A NaN or infinite loss ends training at once: the run has diverged."""

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and any(k in logs and not math.isfinite(float(logs[k])) for k in ("loss", "grad_norm")):
                control.should_training_stop = True

    keep = selection.KeepBest(work_dir / "best") if holdout is not None else None
    collate = batches.collator(tokenizer, on_gpu=use_cuda)
    trainer = SafeTrainer(model=model, args=args, train_dataset=train, processing_class=tokenizer,
                          data_collator=collate,
                          eval_dataset=holdout, compute_metrics=selection.holdout_scorer(task) if keep else None,
                          callbacks=[StopOnNonFiniteLoss(), TimedCheckpoints(params.get("checkpoint_minutes") or 0)]
                          + ([keep] if keep else []))
    if use_cuda:
        torch.cuda.reset_peak_memory_stats()
    if resume:
        print(f"layerlens: resuming from {resume}", flush=True)
    started = time.perf_counter()
    train_out = trainer.train(resume_from_checkpoint=resume)
    train_seconds = time.perf_counter() - started
    peak_gpu_mb = torch.cuda.max_memory_allocated() / 2**20 if use_cuda else None

    history = trainer.state.log_history
    losses = [h["loss"] for h in history if "loss" in h] + [h["grad_norm"] for h in history if "grad_norm" in h]
    train_loss = mean_loss(history)
    diverged = not all(math.isfinite(float(x)) for x in losses + [train_loss])
    diverged_at = next((h.get("step") for h in history
                        if any(k in h and not math.isfinite(float(h[k])) for k in ("loss", "grad_norm"))), None)

    if keep and not diverged and not any("eval_score" in h and h.get("step") == trainer.state.global_step
                                         for h in history):
        # resumed from the checkpoint of the last step, which the Trainer saves before that epoch's held-out score
        trainer.evaluate()
        history = trainer.state.log_history
    if keep:
        keep.restore(trainer.model)
    predictions, outputs = [], {}
    for split, ds in evals.items():
        pred = trainer.predict(ds.remove_columns("label"))  # the labels only meet the predictions in the metrics
        logits = np.asarray(pred.predictions, dtype=np.float64)
        labels = np.asarray(ds["label"])
        yhat = logits.squeeze(-1) if spec.is_regression else logits.argmax(-1)
        if not np.all(np.isfinite(logits)):
            diverged = True
        outputs[split] = (labels, yhat)
        predictions.append(pd.DataFrame({"split": split, "idx": ds["idx"], "label": labels, "prediction": yhat}))

    if diverged:
        metrics = {k: float("nan") for k in spec.metric_names}
    else:
        metrics = compute_metrics(task, outputs)
    record = {
        "model": model_name, "task": task, "seed": seed,
        **{k: metrics[k] for k in spec.metric_names},
        "main_score": task_score(task, metrics),
        "main_metric": "mean of " + ", ".join(spec.metric_names) if len(spec.metric_names) > 1
        else spec.metric_names[0],
        "n_train": len(train), "n_eval": {s: len(d) for s, d in evals.items()},
        "train_seconds": train_seconds,
        "train_loss": train_loss,
        "loss_history": [{"step": h["step"], "loss": h["loss"]} for h in history if "loss" in h],
        "diverged": diverged,
        "diverged_at_step": diverged_at,
        "resumed_from": Path(resume).name if resume else None,
        # constant predictions on a dev split, any task (not from a divergence): a real outcome of the recipe, whose
        # accuracy / F1 / MCC are defined and STS-B's correlations are not (null)
        "degenerate": not diverged and any(len(np.unique(y)) == 1 for _, y in outputs.values()),
        "total_flos": float(trainer.state.total_flos),
        "train_samples_per_second": train_out.metrics.get("train_samples_per_second"),
        "train_tokens": int(np.sum(train["length"])) * float(trainer.state.epoch),
        "train_tokens_per_second": int(np.sum(train["length"])) * float(trainer.state.epoch) / train_seconds,
        "peak_gpu_memory_mb": peak_gpu_mb,
        "global_steps": trainer.state.global_step,
        "selection": None if keep is None else {
            "on": "holdout", "holdout_examples": len(holdout), "chosen_epoch": keep.best and keep.best["epoch"],
            "chosen_step": keep.best and keep.best["step"], "holdout_scores": selection.history(history)},
        "compute_matched": matched,
        "frozen": frozen,
        "hyperparameters": params,
        "precision": "bf16" if bf16 else "fp32", "tf32": bool(tf32),
        "pad_to_multiple_of": collate.pad_to_multiple_of,
        "attention": model.config._attn_implementation,
        "newly_initialised": sorted(info["missing_keys"]),
        "device": _device_name(),
        "model_dir": str(model_dir),
        **model_map(model_dir, model_name),
        **provenance(),  # library versions and the workflow's commit
    }
    write_tsv(pd.concat(predictions), out_dir / "predictions.tsv")
    if params.get("keep_weights"):
        with atomic_dir(out_dir / "model") as tmp:
            trainer.save_model(str(tmp))
    write_json(out_dir / "metrics.json", record)  # last: its presence means the cell is complete
    shutil.rmtree(checkpoints, ignore_errors=True)
    return record


def model_map(model_dir: str | Path, name: str) -> dict:
    """The run's model: its base, depth and layer map (a variant's ``layer_map.json``; the identity for a base)."""
    prov = read_provenance(model_dir)
    if prov:
        return {"base": prov["base"] or name, "num_layers": prov["num_layers"], "layer_map": prov["layers_spec"]}
    depth = model_depth(model_dir)
    return {"base": name, "num_layers": depth, "layer_map": format_layers(range(depth))}


def precision_flags(precision: str) -> tuple[bool, bool | None]:
    """(bf16, tf32) for the Trainer: bf16 autocast on a GPU that supports it; TF32 matmuls on Ampere or newer."""
    import torch

    if precision == "fp32" or not torch.cuda.is_available():
        if precision == "bf16" and not torch.cuda.is_available():
            raise InputError("finetune.precision", "bf16 was asked for but there is no GPU; use auto or fp32")
        return False, None
    ampere = torch.cuda.get_device_capability(0)[0] >= 8
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        raise InputError("finetune.precision", f"{torch.cuda.get_device_name(0)} does not support bf16; use auto")
    return torch.cuda.is_bf16_supported(), (True if ampere else None)


def _first(ds, n):
    return ds if n is None or n >= len(ds) else ds.select(range(n))


def _device_name() -> str:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    import platform

    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"

