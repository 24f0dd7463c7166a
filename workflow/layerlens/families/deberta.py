"""DeBERTa-v2 and v3 (``model_type: deberta-v2``; v3 checkpoints use it too).

Post-LN. Layers: ``deberta.encoder.layer.{i}``. The relative-position table (``encoder.rel_embeddings``) and
its LayerNorm (``encoder.LayerNorm``) belong to the encoder, not to a layer: every layer reads the same table,
so a variant keeps one copy, shared by all its layers, and copies none. DeBERTa-v2 checkpoints with
``conv_kernel_size > 0`` (v2-xlarge, v2-xxlarge) add ``encoder.conv`` after layer 0 only; there base layer 0
must stay first and appear once, or a copied layer would gain or lose the convolution.

Head: ``legacy: true`` (the default): ``cls.predictions`` = transform (dense, activation, LayerNorm), then
``decoder`` (tied to the word embeddings) plus bias, as BERT. ``legacy: false``: ``lm_predictions.lm_head``
(dense, activation, LayerNorm, bias) multiplied by the word embeddings, which are passed in.
"""

from __future__ import annotations

from .base import FamilyAdapter


class DebertaV2Adapter(FamilyAdapter):
    name = "deberta-v2"
    model_types = ("deberta-v2",)
    head_prefixes = ("cls.predictions.", "lm_predictions.")

    def check_layer_map(self, config, layers):
        if config.get("conv_kernel_size", 0) > 0 and (layers[0] != 0 or 0 in layers[1:]):
            raise ValueError(
                "this DeBERTa-v2 checkpoint has a convolution (conv_kernel_size > 0) that runs after layer 0 "
                "only, so base layer 0 must stay the first layer and appear once")

    def provenance_notes(self, config, layers):
        notes = {"shared_tensors": "encoder.rel_embeddings and encoder.LayerNorm (the relative-position table "
                                   "and its norm) are shared by all layers: kept once, not copied"}
        if config.get("conv_kernel_size", 0) > 0:
            notes["conv"] = "encoder.conv runs after layer 0 only; base layer 0 kept first"
        return notes

    def mlm_logits(self, model, hidden):
        if getattr(model, "legacy", True):
            return model.cls(hidden)
        return model.lm_predictions(hidden, model.deberta.embeddings.word_embeddings)

    def token_embeddings(self, model):
        proj = model.deberta.embeddings.embed_proj  # None unless embedding_size differs from hidden_size
        weight = model.get_input_embeddings().weight
        return weight if proj is None else proj(weight)
