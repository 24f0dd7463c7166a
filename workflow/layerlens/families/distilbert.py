"""DistilBERT (``model_type: distilbert``): post-LN, its layers and head under their own names.

Depth: ``n_layers``. Layers: ``distilbert.transformer.layer.{i}``. The head is not one module but four
attributes of ``DistilBertForMaskedLM``: ``vocab_transform`` (dense), ``activation``, ``vocab_layer_norm``, and
``vocab_projector`` (tied to the word embeddings, with its own bias).
"""

from __future__ import annotations

from .base import FamilyAdapter


class DistilBertAdapter(FamilyAdapter):
    name = "distilbert"
    model_types = ("distilbert",)
    depth_key = "n_layers"
    layer_key = r"(?:^|\.)transformer\.layer\.(\d+)\."
    head_prefixes = ("vocab_transform.", "vocab_layer_norm.", "vocab_projector.")

    def mlm_logits(self, model, hidden):
        h = model.vocab_layer_norm(model.activation(model.vocab_transform(hidden)))
        return model.vocab_projector(h)
