"""Model selection on a held-out slice of the *training* split (``model_selection: holdout``).

The dev set is what the report scores, so it must not also choose the epoch. :func:`split_holdout` takes
``holdout_fraction`` of the training examples out of training (drawn with the run's seed: a base and its variants
hold out the same examples at a seed); after every epoch the Trainer scores the model on them (the task's GLUE
score, :func:`holdout_scorer`), and :class:`KeepBest` keeps the weights of the best epoch so far. Once training
ends they are put back (:meth:`KeepBest.restore`) and only then is the dev set predicted, without its labels.

The best weights and their record live in the run's checkpoint folder (safetensors + JSON), so a run resumed
from a checkpoint knows what it had chosen before; they are deleted with the checkpoints when the cell is done.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from transformers import TrainerCallback

from .io import atomic_path
from .tasks import compute_metrics, get_task, task_score

WEIGHTS = "best.safetensors"
RECORD = "best.json"


def split_holdout(train, fraction: float, seed: int):
    """(the examples that train, the held-out ones): a seeded random ``fraction`` of ``train`` held out."""
    parts = train.train_test_split(test_size=fraction, seed=seed, shuffle=True)
    return parts["train"], parts["test"]


def holdout_scorer(task: str):
    """The Trainer's ``compute_metrics`` on held-out training examples: ``{"score": the task's GLUE score}``."""
    spec = get_task(task)

    def score(pred) -> dict:
        logits = np.asarray(pred.predictions, dtype=np.float64)
        labels = np.asarray(pred.label_ids)
        yhat = logits.squeeze(-1) if spec.is_regression else logits.argmax(-1)
        metrics = compute_metrics(task, {split: (labels, yhat) for split in spec.dev_splits})
        value = task_score(task, metrics)
        return {"score": value if math.isfinite(value) else float("-inf")}

    return score


class KeepBest(TrainerCallback):
    """After each evaluation on the held-out slice, keep the model's weights if its score is the best so far."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        record = self.folder / RECORD
        self.best = json.loads(record.read_text()) if record.is_file() else None

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
        score = (metrics or {}).get("eval_score")
        if score is None or not math.isfinite(score) or (self.best is not None and score <= self.best["score"]):
            return
        from safetensors.torch import save_model

        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.folder / WEIGHTS, suffix=".safetensors") as tmp:
            save_model(model, str(tmp))
        self.best = {"epoch": round(state.epoch), "step": state.global_step, "score": score}
        with atomic_path(self.folder / RECORD) as tmp:
            tmp.write_text(json.dumps(self.best))

    def restore(self, model) -> None:
        """Load the best epoch's weights into ``model`` (nothing if no epoch scored)."""
        if self.best is not None:
            from safetensors.torch import load_model

            load_model(model, str(self.folder / WEIGHTS), device=str(next(model.parameters()).device))


def history(log_history: list[dict]) -> list[dict]:
    """Every held-out evaluation of a run: epoch, step and score."""
    return [{"epoch": round(h["epoch"]), "step": h["step"], "score": h["eval_score"]}
            for h in log_history if "eval_score" in h]
