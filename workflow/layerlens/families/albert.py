"""ALBERT (``model_type: albert``): one set of layer weights shared across depth.

ALBERT stores ``num_hidden_groups`` layer groups (``albert.encoder.albert_layer_groups.{g}``, usually one) and
runs ``num_hidden_layers`` layers by reusing them: position ``i`` of an ``L``-layer model runs group
``int(i / (L / num_hidden_groups))``. Copying a layer therefore copies nothing: a layer map over identical
layers is a change of depth. A variant keeps every tensor and changes only ``num_hidden_layers``; the saved
provenance says so, and two variants of one depth are one model (``effective_layers``: every single-layer
duplication of a 12-layer ALBERT is the same 13-layer model, built and run once). What ALBERT cannot express is refused:

- a map that goes back to an earlier layer (reordering): the groups run in order;
- with several groups, a map under which a new position would run a different group than its source layer
  (the group of a position follows from the new depth, not from the map).

Post-LN. Embeddings are ``embedding_size`` wide and mapped up by ``encoder.embedding_hidden_mapping_in``;
layer 0 of the probe is that mapped output (the first layer's input), and the identity reading's decoder is the
word embeddings under the same map. With ``inner_group_num > 1`` one
"layer" is a whole group of inner layers; only each group's output is a hidden state here.
Head: ``predictions`` = dense (to ``embedding_size``), activation, LayerNorm, ``decoder`` (tied to the word
embeddings) plus bias.
"""

from __future__ import annotations

from .base import FamilyAdapter


class AlbertAdapter(FamilyAdapter):
    name = "albert"
    model_types = ("albert",)
    #: group 1 is the layer *group*: ALBERT's checkpoints hold groups, not layers
    layer_key = r"(?:^|\.)encoder\.albert_layer_groups\.(\d+)\."
    head_prefixes = ("predictions.",)
    same_model_rule = "ALBERT runs its shared layer group(s) at every position, so the depth alone defines the model"

    @staticmethod
    def num_groups(config: dict) -> int:
        return int(config.get("num_hidden_groups", 1))

    @staticmethod
    def group_of(position: int, depth: int, groups: int) -> int:
        """The group a position runs, computed exactly as ``AlbertTransformer.forward`` does."""
        return int(position / (depth / groups))

    shares_layers = True

    def stored_layers(self, config):
        return list(range(self.num_groups(config)))

    def stored_layer_at(self, config, position):
        return self.group_of(position, self.depth(config), self.num_groups(config))

    def check_layer_map(self, config, layers):
        depth, groups = self.depth(config), self.num_groups(config)
        for i in range(1, len(layers)):
            if layers[i] < layers[i - 1]:
                raise ValueError(
                    f"ALBERT shares its layer weights across depth ({groups} layer group(s) for {depth} layers), "
                    f"so a variant can only repeat or drop layers in order (a change of depth); position {i} goes "
                    f"back from layer {layers[i - 1]} to layer {layers[i]}: reordering cannot be expressed")
        for i, src in enumerate(layers):
            new, old = self.group_of(i, len(layers), groups), self.group_of(src, depth, groups)
            if new != old:
                raise ValueError(
                    f"with {groups} layer groups, position {i} of the {len(layers)}-layer variant runs group {new} "
                    f"but its source layer {src} runs group {old}: ALBERT picks a position's group from the depth "
                    f"(int(i / (depth / {groups}))), so this map cannot be expressed")

    def effective_layers(self, config, layers):
        # the group each position runs: a function of the depth alone (every expressible map of one depth is one model)
        return tuple(self.group_of(i, len(layers), self.num_groups(config)) for i in range(len(layers)))

    def variant_state_dict(self, state, layers, config):
        return dict(state)  # the shared groups serve any depth: nothing to copy or renumber

    def provenance_notes(self, config, layers):
        groups = self.num_groups(config)
        return {
            "shared_layers": True,
            "note": (f"depth change over shared layers: ALBERT runs its {groups} shared layer group(s) at every "
                     f"position, so this map only changes num_hidden_layers from {self.depth(config)} to "
                     f"{len(layers)}; no layer tensors were copied"),
            "layer_groups": [self.group_of(i, len(layers), groups) for i in range(len(layers))],
        }

    def hidden_states(self, model, input_ids, attention_mask):
        states = super().hidden_states(model, input_ids, attention_mask)
        return states[::model.config.inner_group_num]  # one state per group application

    def mlm_logits(self, model, hidden):
        return model.predictions(hidden)

    def token_embeddings(self, model):
        # the word embeddings mapped up to hidden_size by the map the encoder applies to the embedding output
        return model.albert.encoder.embedding_hidden_mapping_in(model.get_input_embeddings().weight)
