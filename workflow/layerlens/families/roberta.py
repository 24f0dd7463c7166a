"""RoBERTa and XLM-RoBERTa (``model_type: roberta``, ``xlm-roberta``): BERT's layout under other names.

Post-LN, so each layer's output goes straight into the head. Head: ``lm_head`` = dense, GELU, ``layer_norm``,
then ``decoder`` (tied to the word embeddings) plus ``bias``. Layers: ``roberta.encoder.layer.{i}``. Position
ids start after the padding id; nothing in the config depends on a layer's index.
"""

from __future__ import annotations

from .base import FamilyAdapter


class RobertaAdapter(FamilyAdapter):
    name = "roberta"
    model_types = ("roberta", "xlm-roberta")
    head_prefixes = ("lm_head.",)

    def mlm_logits(self, model, hidden):
        return model.lm_head(hidden)
