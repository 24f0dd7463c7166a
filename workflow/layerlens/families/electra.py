"""ELECTRA (``model_type: electra``): the generator carries an MLM head, the discriminator does not.

Post-LN. The embeddings may be narrower than the layers (``embedding_size``); ``electra.embeddings_project``
maps them up, and layer 0 of the probe is the projected embedding output (the first layer's input).
Layers: ``electra.encoder.layer.{i}``. Generator head (``ElectraForMaskedLM``): ``generator_predictions``
(dense to ``embedding_size``, GELU, LayerNorm) then ``generator_lm_head`` (tied to the word embeddings, with
a bias). A discriminator checkpoint (``ElectraForPreTraining``) has ``discriminator_predictions`` instead,
which scores replaced tokens and predicts no vocabulary: probe it with ``probe: {head: fit}``.
"""

from __future__ import annotations

from .base import FamilyAdapter


class ElectraAdapter(FamilyAdapter):
    name = "electra"
    model_types = ("electra",)
    head_prefixes = ("generator_predictions.", "generator_lm_head.")

    def mlm_logits(self, model, hidden):
        return model.generator_lm_head(model.generator_predictions(hidden))

    def token_embeddings(self, model):
        # a generator's embeddings may be narrower than its layers: mapped up as the encoder maps its input
        project = getattr(model.electra, "embeddings_project", None)
        weight = model.get_input_embeddings().weight
        return weight if project is None else project(weight)
