"""Pickle-free Trainer checkpoints, so an interrupted fine-tuning job resumes exactly where it stopped.

The Hugging Face Trainer keeps optimizer, scheduler and RNG state with ``torch.save`` (pickle) and reads them back
with ``torch.load``. :class:`SafeTrainer` keeps the same state as safetensors (tensors) plus JSON (everything
else) and writes no ``training_args.bin``: no code path of the pipeline loads or leaves a pickle. Model weights
are safetensors already (``save_pretrained``).

:class:`TimedCheckpoints` asks for a checkpoint every N minutes, so a long run on a preemptible node loses at
most N minutes, and a short run writes none.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers import Trainer, TrainerCallback

OPTIMIZER = "optimizer.safetensors"
OPTIMIZER_META = "optimizer.json"
SCHEDULER = "scheduler.json"
RNG = "rng_state.safetensors"
RNG_META = "rng_state.json"


def optimizer_to_files(optimizer, folder: Path) -> None:
    state = optimizer.state_dict()
    tensors, meta = {}, {"param_groups": state["param_groups"], "state": {}}
    for pid, entries in state["state"].items():
        meta["state"][str(pid)] = {}
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"{pid}/{key}"] = value.detach().contiguous().cpu()
                meta["state"][str(pid)][key] = {"tensor": True, "device": str(value.device)}
            else:
                meta["state"][str(pid)][key] = {"tensor": False, "value": value}
    save_file(tensors, str(folder / OPTIMIZER))
    (folder / OPTIMIZER_META).write_text(json.dumps(meta))


def optimizer_from_files(optimizer, folder: Path, device) -> None:
    tensors = load_file(str(folder / OPTIMIZER))
    meta = json.loads((folder / OPTIMIZER_META).read_text())
    state = {}
    for pid, entries in meta["state"].items():
        state[int(pid)] = {}
        for key, info in entries.items():
            if info["tensor"]:
                t = tensors[f"{pid}/{key}"]
                # Adam's `step` lives on the CPU unless the optimizer is fused/capturable
                state[int(pid)][key] = t.to(device) if info["device"] != "cpu" else t
            else:
                state[int(pid)][key] = info["value"]
    groups = meta["param_groups"]
    for group in groups:
        if "betas" in group:
            group["betas"] = tuple(group["betas"])
    optimizer.load_state_dict({"state": state, "param_groups": groups})


def rng_to_files(folder: Path) -> None:
    py = random.getstate()
    np_state = np.random.get_state()
    meta = {"python": [py[0], list(py[1]), py[2]],
            "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])]}
    tensors = {"cpu": torch.random.get_rng_state()}
    if torch.cuda.is_available():
        tensors["cuda"] = torch.cuda.random.get_rng_state()
    save_file(tensors, str(folder / RNG))
    (folder / RNG_META).write_text(json.dumps(meta))


def rng_from_files(folder: Path) -> None:
    meta = json.loads((folder / RNG_META).read_text())
    tensors = load_file(str(folder / RNG))
    py = meta["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    name, keys, pos, has_gauss, gauss = meta["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))
    torch.random.set_rng_state(tensors["cpu"])
    if "cuda" in tensors and torch.cuda.is_available():
        torch.cuda.random.set_rng_state(tensors["cuda"])


class SafeTrainer(Trainer):
    """A Trainer whose checkpoints hold no pickle (single process; the pipeline runs one job per GPU), and whose
    length-grouped batches come in random order (:mod:`layerlens.batches`)."""

    def _get_train_sampler(self, train_dataset=None):
        dataset = train_dataset if train_dataset is not None else self.train_dataset
        if self.args.train_sampling_strategy != "group_by_length" or dataset is None:
            return super()._get_train_sampler(train_dataset)
        from .batches import GroupedBatchSampler

        column = self.args.length_column_name
        # the Trainer drops columns the model does not take (the lengths among them) before asking for a sampler
        for source in (dataset, self.train_dataset):
            if column in getattr(source, "column_names", ()) and len(source) == len(dataset):
                lengths = source[column]
                break
        else:
            lengths = [len(x) for x in dataset["input_ids"]]
        return GroupedBatchSampler(lengths, self.args.train_batch_size * self.args.gradient_accumulation_steps,
                                   seed=self.args.data_seed if self.args.data_seed is not None else self.args.seed)

    def _save_optimizer_and_scheduler(self, output_dir: str) -> None:
        folder = Path(output_dir)
        folder.mkdir(parents=True, exist_ok=True)
        optimizer_to_files(self.optimizer, folder)
        (folder / SCHEDULER).write_text(json.dumps(self.lr_scheduler.state_dict()))

    def _load_optimizer_and_scheduler(self, checkpoint: str | None) -> None:
        if checkpoint is None or not (Path(checkpoint) / OPTIMIZER).is_file():
            return
        optimizer_from_files(self.optimizer, Path(checkpoint), self.args.device)
        self.lr_scheduler.load_state_dict(json.loads((Path(checkpoint) / SCHEDULER).read_text()))

    def _save_rng_state(self, output_dir: str) -> None:
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        rng_to_files(Path(output_dir))

    def _load_rng_state(self, checkpoint: str | None) -> None:
        if checkpoint is not None and (Path(checkpoint) / RNG).is_file():
            rng_from_files(Path(checkpoint))

    def _save_scaler(self, output_dir: str) -> None:  # no fp16 loss scaling in this pipeline (bf16 or fp32)
        return

    def _load_scaler(self, checkpoint: str | None) -> None:
        return

    def _save(self, output_dir: str | None = None, state_dict=None) -> None:
        super()._save(output_dir, state_dict)
        args_file = Path(output_dir or self.args.output_dir) / "training_args.bin"
        if args_file.exists():  # a pickle of TrainingArguments: never needed, never left behind
            os.remove(args_file)


class TimedCheckpoints(TrainerCallback):
    """Ask the Trainer for a checkpoint once ``minutes`` have passed since the last one, at the next step that
    is also a logging step (so a resumed run's loss log lines up exactly with an uninterrupted run's)."""

    def __init__(self, minutes: float):
        self.seconds = minutes * 60
        self.last = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):
        due = self.seconds > 0 and time.monotonic() - self.last >= self.seconds
        if due and state.global_step % max(1, int(args.logging_steps)) == 0:
            control.should_save = True
            self.last = time.monotonic()
        return control


def mean_loss(history: list[dict]) -> float:
    """The mean training loss over all steps, from the logged window means (each weighted by its length).

    Unlike the Trainer's ``training_loss`` (the mean over the steps of the current session), this is the same
    for a resumed run as for an uninterrupted one.
    """
    total, last = 0.0, 0
    for h in history:
        if "loss" in h:
            total += float(h["loss"]) * (h["step"] - last)
            last = h["step"]
    return total / last if last else float("nan")
