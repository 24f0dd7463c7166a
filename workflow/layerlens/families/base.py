"""The adapter interface: everything that differs between model families.

A stage module (probe, layer map, fine-tune) never looks at ``model_type``; it asks the family's adapter:

- how the encoder's layer tensors are named in a checkpoint (``layer_key``), so a layer map can renumber them;
- which config key holds the depth (``depth_key``) and what else in the config depends on a layer's index
  (``variant_config``);
- which layer maps the architecture can express (``check_layer_map``), and which of them build the same model
  (``effective_layers``);
- how to get every hidden state in one forward pass (``hidden_states``) and how the model's own, complete
  masked-LM head turns a hidden state into vocabulary logits (``mlm_logits``), including a final norm where
  the architecture has one before its head;
- which checkpoint tensors make up that head (``head_prefixes``), to tell a checkpoint that ships one from one
  that does not, and which parameters a fitted head trains (``is_head_key``);
- each vocabulary token's input embedding in the space of the hidden states (``token_embeddings``): the decoder
  of the probe's identity reading.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, ClassVar, Sequence

if TYPE_CHECKING:  # torch is imported where tensors are used: reading a config (Snakefile parsing) needs none
    import torch
    from torch import nn


class FamilyAdapter:
    #: short name shown in messages and provenance
    name: ClassVar[str] = ""
    #: ``config.model_type`` values this adapter handles
    model_types: ClassVar[tuple[str, ...]] = ()
    #: config key that holds the number of encoder layers
    depth_key: ClassVar[str] = "num_hidden_layers"
    #: regex matching the per-layer part of a checkpoint key; group 1 is the layer index (default: BERT's layout,
    #: shared by RoBERTa, ELECTRA and DeBERTa)
    layer_key: ClassVar[str] = r"(?:^|\.)encoder\.layer\.(\d+)\."
    #: checkpoint key prefixes (after an optional base-model prefix) that make up the masked-LM head
    head_prefixes: ClassVar[tuple[str, ...]] = ()
    #: why two different layer maps can build the same model in this family (see ``effective_layers``)
    same_model_rule: ClassVar[str] = ""

    # --- config ------------------------------------------------------------------------------------------

    def depth(self, config: dict) -> int:
        return int(config[self.depth_key])

    def check_layer_map(self, config: dict, layers: Sequence[int]) -> None:
        """Raise ``ValueError`` (a sentence for the user) if the architecture cannot express ``layers``."""

    def variant_config(self, config: dict, layers: Sequence[int]) -> dict:
        """The config.json of a variant whose layer ``i`` is a copy of base layer ``layers[i]``."""
        new = dict(config)
        new[self.depth_key] = len(layers)
        return new

    def effective_layers(self, config: dict, layers: Sequence[int]) -> tuple:
        """What runs at each position of the variant with layer map ``layers`` (one the architecture can express):
        two maps with the same effective layers build the same model, which is then built, probed and fine-tuned
        once (:mod:`layerlens.dedup`). By default the map itself."""
        return tuple(layers)

    def provenance_notes(self, config: dict, layers: Sequence[int]) -> dict:
        """Anything a reader of the variant's provenance must know about this family's layer maps."""
        return {}

    def stored_layers(self, config: dict) -> list[int]:
        """The indices ``layer_key`` must find in a consistent checkpoint: one per layer (ALBERT: per group)."""
        return list(range(self.depth(config)))

    def stored_layer_at(self, config: dict, position: int) -> int:
        """The stored layer (``layer_key`` index) that runs at ``position`` of the stack (ALBERT: its group)."""
        return position

    #: whether layers share their weights across depth (then no layer can be replaced on its own)
    shares_layers: ClassVar[bool] = False

    # --- checkpoint tensors ------------------------------------------------------------------------------

    def layer_of(self, key: str) -> int | None:
        m = re.search(self.layer_key, key)
        return int(m.group(1)) if m else None

    def renumber_key(self, key: str, new_index: int) -> str:
        m = re.search(self.layer_key, key)
        start, end = m.span(1)
        return key[:start] + str(new_index) + key[end:]

    def variant_state_dict(self, state: dict[str, torch.Tensor], layers: Sequence[int],
                           config: dict) -> dict[str, torch.Tensor]:
        """Tensors of the variant: every non-layer tensor as is, layer tensors copied and renumbered."""
        by_layer: dict[int, list[str]] = {}
        out: dict[str, torch.Tensor] = {}
        for key, tensor in state.items():
            idx = self.layer_of(key)
            if idx is None:
                out[key] = tensor
            else:
                by_layer.setdefault(idx, []).append(key)
        for new_idx, src in enumerate(layers):
            for key in by_layer.get(src, []):
                out[self.renumber_key(key, new_idx)] = tensor_copy(state[key])
        return out

    def is_head_key(self, key: str) -> bool:
        """Whether a checkpoint key or parameter name (of the masked-LM model) belongs to the MLM head."""
        return key.startswith(self.head_prefixes)

    # --- modules -----------------------------------------------------------------------------------------

    def hidden_states(self, model: nn.Module, input_ids: torch.Tensor,
                      attention_mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Embedding output (layer 0) and the output of every layer, from one forward pass of the encoder."""
        out = model.base_model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        return tuple(out.hidden_states)

    def mlm_logits(self, model: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
        """The model's full masked-LM head applied to hidden states ``(..., hidden_size)``."""
        raise NotImplementedError

    def token_embeddings(self, model: nn.Module) -> torch.Tensor | None:
        """The input embedding matrix (vocab, hidden_size) as the hidden states see it: the word embeddings, or
        ``None`` where they are narrower than the hidden states and the family names no map up (an override
        gives it: ALBERT, DeBERTa-v2, ELECTRA)."""
        weight = model.get_input_embeddings().weight
        return weight if weight.shape[-1] == model.config.hidden_size else None


def tensor_copy(t: torch.Tensor) -> torch.Tensor:
    return t.detach().clone().contiguous()
