"""BERT (``model_type: bert``): post-LN, so each layer's output goes straight into the MLM head.

Head: ``cls.predictions`` = transform (dense, GELU, LayerNorm) then decoder (tied to the word embeddings) plus
bias. Layers: ``bert.encoder.layer.{i}``.
"""

from __future__ import annotations

from .base import FamilyAdapter


class BertAdapter(FamilyAdapter):
    name = "bert"
    model_types = ("bert",)
    head_prefixes = ("cls.predictions.",)

    def mlm_logits(self, model, hidden):
        return model.cls(hidden)
