"""Training compute from model shapes, the way the Trainer counts it: before anything runs.

The Hugging Face Trainer's ``total_flos`` (the cost table's FLOP count) is ``6 x tokens x N`` per training step,
``N`` the model's parameters without its embedding matrices (``PreTrainedModel.num_parameters(
exclude_embeddings=True)``) and tokens the padded input ids of the step. For a variant and its base, trained on
the same batches, the ratio of their FLOPs is therefore the ratio of their ``N``: known from config.json alone,
so a compute-matched control's extra steps are fixed when the workflow is planned, not after a run.

One correction to the Trainer's count: a layer whose weights are shared across depth (ALBERT) is counted once
per position it runs at (:meth:`~layerlens.families.base.FamilyAdapter.stored_layer_at`), since it costs its
FLOPs at each. For every other family :func:`applied_parameters` equals the Trainer's ``N``.

Models are built on the ``meta`` device: shapes only, no memory, no weights read.
"""

from __future__ import annotations

import math
from collections import Counter

from .families import adapter_for

#: training FLOPs per token and parameter: forward 2, backward 4 (the Trainer's and Kaplan et al.'s count)
FLOPS_PER_TOKEN_PARAM = 6


def applied_parameters(config: dict, num_labels: int = 2) -> int:
    """Non-embedding parameters of the sequence-classification model of a config.json dict, each layer counted
    once per position it runs at: the ``N`` of ``6 x N`` training FLOPs per token."""
    import torch
    from torch import nn
    from transformers import CONFIG_MAPPING, AutoModelForSequenceClassification

    shape = {k: v for k, v in config.items() if k not in ("id2label", "label2id", "num_labels")}
    cfg = CONFIG_MAPPING[config["model_type"]].from_dict({**shape, "num_labels": num_labels})
    with torch.device("meta"):
        model = AutoModelForSequenceClassification.from_config(cfg)
    embeddings = {f"{name}.weight" for name, module in model.named_modules() if isinstance(module, nn.Embedding)}
    adapter = adapter_for(config["model_type"])
    outside, per_layer = 0, Counter()
    for name, param in model.named_parameters():
        if name in embeddings:
            continue
        layer = adapter.layer_of(name)
        if layer is None:
            outside += param.numel()
        else:
            per_layer[layer] += param.numel()
    depth = adapter.depth(config)
    return outside + sum(per_layer[adapter.stored_layer_at(config, i)] for i in range(depth))


def flops_ratio(base_config: dict, variant_config: dict, num_labels: int = 2) -> float:
    """Training FLOPs per token of a variant over its base's (same batches, so also per step)."""
    return applied_parameters(variant_config, num_labels) / applied_parameters(base_config, num_labels)


def trainer_steps(n_examples: int, batch_size: int, epochs: float) -> int:
    """Optimizer steps the Trainer takes: ``ceil(epochs x ceil(n / batch))`` (one device, no accumulation)."""
    return math.ceil(epochs * max(1, math.ceil(n_examples / batch_size)))


def matched_steps(base_steps: int, ratio: float) -> int:
    """Steps of the base that spend what ``base_steps`` steps of a variant ``ratio`` times as costly spend."""
    return max(1, round(base_steps * ratio))
