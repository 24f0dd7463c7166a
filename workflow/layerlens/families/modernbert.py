"""ModernBERT (``model_type: modernbert``): pre-LN, rotary positions, global and local attention by index.

Layers: ``model.layers.{i}``. Each layer normalises its own input, so the layer outputs are un-normalised
residual streams and ``model.final_norm`` is applied before the head: the head here is ``final_norm``, then
``head`` (dense, activation, norm), then ``decoder`` (tied to the token embeddings, with a bias). The probe's
states are the raw residual streams for every layer, the last one included (Transformers' own
``hidden_states[-1]`` is already normalised, so it is taken from the last layer's output instead).

Attention kind per layer: ``config.layer_types`` (``full_attention`` or ``sliding_attention``), which
Transformers 5 derives from ``global_attn_every_n_layers`` when absent. A variant writes the explicit list,
each new layer taking its source layer's kind, whatever its new index.

Layer 0 is built without an attention norm (``attn_norm`` is an Identity at index 0 and a LayerNorm elsewhere),
so base layer 0 must stay the first layer and appear once: copied elsewhere it would gain a norm it never had,
and any other layer copied to index 0 would lose its own. Such maps are refused.
"""

from __future__ import annotations

from .base import FamilyAdapter


class ModernBertAdapter(FamilyAdapter):
    name = "modernbert"
    model_types = ("modernbert",)
    layer_key = r"(?:^|\.)layers\.(\d+)\."
    head_prefixes = ("head.", "decoder.")

    def layer_types(self, config: dict) -> list[str]:
        """The attention kind of each layer, as ``ModernBertConfig.__post_init__`` decides it."""
        if config.get("layer_types"):
            return list(config["layer_types"])
        every = config.get("global_attn_every_n_layers", 3)
        return ["sliding_attention" if i % every else "full_attention" for i in range(self.depth(config))]

    def check_layer_map(self, config, layers):
        if layers[0] != 0 or 0 in layers[1:]:
            raise ValueError(
                "ModernBERT's layer 0 has no attention norm (an Identity at index 0 only), so base layer 0 must "
                "stay the first layer and appear once; copy or drop other layers instead")

    def variant_config(self, config, layers):
        new = super().variant_config(config, layers)
        types = self.layer_types(config)
        new["layer_types"] = [types[src] for src in layers]
        new.pop("global_attn_every_n_layers", None)  # the explicit list is the one source of truth
        return new

    def provenance_notes(self, config, layers):
        types = self.layer_types(config)
        return {"layer_types": [types[src] for src in layers],
                "note": "each copied layer keeps its source layer's attention kind (config.layer_types)"}

    def hidden_states(self, model, input_ids, attention_mask):
        captured = []
        hook = model.base_model.layers[-1].register_forward_hook(lambda mod, args, out: captured.append(out))
        try:
            states = super().hidden_states(model, input_ids, attention_mask)
        finally:
            hook.remove()
        return tuple(states[:-1]) + (captured[-1],)  # the last layer's raw output, before final_norm

    def mlm_logits(self, model, hidden):
        return model.decoder(model.head(model.model.final_norm(hidden)))
