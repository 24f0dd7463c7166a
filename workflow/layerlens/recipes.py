"""Named fine-tuning recipes (``finetune.preset``): which values a preset gives the keys a config leaves out.

- ``run_glue`` (the default): Hugging Face's run_glue-like recipe as this pipeline has always run it: lr 2e-5,
  batch 32, 3 epochs, warm-up 10%, weight decay 0.01, the last weights evaluated. Its values are the schema's
  defaults, so this preset sets nothing.
- ``stable``: Mosbach et al., "On the Stability of Fine-tuning BERT" (ICLR 2021; uds-lsv/bert-stable-fine-tuning):
  small-task failures are optimisation failures (vanishing gradients) of too-short runs, fixed by bias-corrected
  AdamW (the Trainer's torch AdamW always corrects its bias; BERT's original BertAdam did not), a 10% warm-up,
  weight decay 0.01, gradient clipping at 1.0, batch 16, lr 2e-5 and 20 epochs on the small tasks. Model
  selection on a held-out 10% of the *training* split picks the epoch, so the dev set the report scores never
  chooses anything (choosing on it would inflate the very score reported).

:func:`apply_preset` runs before schema validation, so a preset's value fills a key only where the config gives
none (the schema's defaults fill the rest). The per-task epochs apply to a task only where the config sets
neither ``finetune.epochs`` nor that task's own ``epochs``.
"""

from __future__ import annotations

from .errors import ConfigError

#: the small GLUE tasks (under 10k training examples) that get a preset's ``small_task_epochs``
SMALL_TASKS = ("cola", "mrpc", "rte", "stsb", "wnli")

PRESETS: dict[str, dict] = {
    "run_glue": {"values": {}, "small_task_epochs": None},
    "stable": {
        "values": {"learning_rate": 2.0e-5, "batch_size": 16, "epochs": 3, "warmup_ratio": 0.1,
                   "weight_decay": 0.01, "max_grad_norm": 1.0, "model_selection": "holdout",
                   "holdout_fraction": 0.1},
        "small_task_epochs": 20,
    },
}


def apply_preset(config: dict) -> None:
    """Fill ``config["finetune"]`` in place with the values of its ``preset`` where the config gives none."""
    ft = config.get("finetune")
    if not isinstance(ft, dict):
        return  # missing (defaults follow) or malformed (the schema says so)
    name = ft.get("preset", "run_glue")
    if name not in PRESETS:
        raise ConfigError("finetune.preset", f"unknown preset {name!r}; presets: {', '.join(PRESETS)}")
    preset = PRESETS[name]
    user_epochs = "epochs" in ft
    for key, value in preset["values"].items():
        ft.setdefault(key, value)
    if preset["small_task_epochs"] and not user_epochs:
        per_task = ft.setdefault("per_task", {})
        if isinstance(per_task, dict):
            for task in SMALL_TASKS:
                entry = per_task.setdefault(task, {})
                if isinstance(entry, dict):
                    entry.setdefault("epochs", preset["small_task_epochs"])
