"""Layer similarity: how much each layer, and each block of layers, changes the hidden states.

Measured in the probe's own forward pass (an extra consumer of :meth:`layerlens.forward.Encoded.chunks`), on the
tokens the probe scores (the sentences' own: no padding, no special tokens, no ``[UNK]``), streaming over batches:
only running sums are kept. Hidden state 0 is the embedding output and layer l maps state l to state l + 1, so a
pair of states i < j is the input and output of the block of layers i..j-1 (``n_layers = j - i``; ``layers``
names them as a layer map does). Per pair:

``cos``
    mean over tokens of cos(h_i, h_j)
``block_influence``
    1 - ``cos``: ShortGPT's Block Influence of a layer (n_layers = 1), and the same formula for a block
``angular``
    mean over tokens of arccos(cos(h_i, h_j)) / pi: Gromov et al.'s angular distance between a block's input and
    output (their (L+1) x L matrix is ``angular`` by first layer and block size)
``bi_lo`` / ``bi_hi``, ``angular_lo`` / ``angular_hi``
    95% bootstrap intervals over examples (the sentences of one example resampled together, as for the probe)
``cka``
    linear CKA (Kornblith et al., 2019) between the two states over all tokens. With the features centred over
    tokens, CKA(X, Y) = ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F). The usual Gram form needs the tokens x
    tokens kernels, i.e. every state of every sentence at once; this feature form needs only, per pair of states,
    the cross-product sum_t x_t y_t^T (hidden x hidden) and each state's sum over tokens, accumulated batch by
    batch (Xc^T Yc = X^T Y - n mean_x mean_y^T). Memory: one hidden x hidden float64 matrix per pair i <= j,
    (L+1)(L+2)/2 x hidden^2 x 8 bytes: 0.43 GiB at BERT-base (13 states of 768), 2.6 GiB at BERT-large (25 of
    1024), on the probe's device (``similarity.cka: false`` skips it). Each chunk's products are taken in float32
    after subtracting a fixed reference per state (the first chunk's mean, which keeps large mean offsets, such as
    BERT's outlier dimensions, out of the float32 sums) and added up in float64. CKA does not split into a sum
    over examples, so it has no interval.

Cosines are taken in float64 (arccos is steep near 1, where float32 cosines would cost ~1e-4 of angle).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Hashable, Sequence

import numpy as np
import pandas as pd

from .io import atomic_path
from .layermap import format_layers
from .stats import bootstrap_ratio_ci

if TYPE_CHECKING:
    from .forward import Chunk

COLUMNS = ["model", "from_state", "to_state", "n_layers", "layers", "cos", "block_influence", "bi_lo", "bi_hi",
           "angular", "angular_lo", "angular_hi", "cka", "n_tokens", "n_sentences"]


class Similarity:
    """Running sums for the similarity of every pair of hidden states of one model; :meth:`add` each chunk, then
    :meth:`table`."""

    def __init__(self, n_sentences: int, cka: bool = True):
        self.n_sentences, self.cka = n_sentences, cka
        self.n_states = None

    def _start(self, X) -> None:
        import torch

        S, _, d = X.shape
        self.n_states = S
        self.i, self.j = (t.to(X.device) for t in torch.triu_indices(S, S, offset=1))  # pairs i < j
        self.cos = torch.zeros(self.n_sentences, self.i.numel(), dtype=torch.float64, device=X.device)
        self.ang = torch.zeros_like(self.cos)
        self.tokens = torch.zeros(self.n_sentences, dtype=torch.float64, device=X.device)
        if self.cka:
            self.ref = X.mean(1)  # (S, d): the first chunk's mean, subtracted before float32 products
            self.upper = [(a, b) for a in range(S) for b in range(a, S)]
            self.cross = torch.zeros(len(self.upper), d, d, dtype=torch.float64, device=X.device)
            self.sums = torch.zeros(S, d, dtype=torch.float64, device=X.device)

    def add(self, chunk: Chunk, model: int = 0) -> None:
        """Add a chunk's kept positions of the ``model``-th model (under ``torch.inference_mode()``)."""
        import torch

        X = torch.stack([chunk.hidden(layer, model) for layer in range(len(chunk.states[model]))]).float()
        if self.n_states is None:
            self._start(X)
        sent = torch.as_tensor(chunk.sentence, device=X.device)
        U = torch.nn.functional.normalize(X.double(), dim=-1).transpose(0, 1)  # (tokens, states, hidden)
        cos = torch.bmm(U, U.transpose(1, 2))[:, self.i, self.j].clamp(-1, 1)  # (tokens, pairs)
        self.cos.index_add_(0, sent, cos)
        self.ang.index_add_(0, sent, torch.arccos(cos) / math.pi)
        self.tokens.index_add_(0, sent, torch.ones_like(sent, dtype=torch.float64))
        if self.cka:
            Xs = X - self.ref[:, None, :]
            self.sums += Xs.sum(1, dtype=torch.float64)
            for p, (a, b) in enumerate(self.upper):
                self.cross[p] += (Xs[a].T @ Xs[b]).double()

    def cka_matrix(self) -> np.ndarray:
        """Linear CKA between every two states, (states, states), from the sums (NaN without ``cka``)."""
        S = self.n_states
        out = np.full((S, S), np.nan)
        if not self.cka:
            return out
        n = float(self.tokens.sum())

        def centred_norm(p, a, b):  # ||Xc_a^T Xc_b||_F, one hidden x hidden matrix at a time
            return float((self.cross[p] - self.sums[a][:, None] * self.sums[b][None, :] / n).norm())

        norm = {a: centred_norm(p, a, b) for p, (a, b) in enumerate(self.upper) if a == b}
        for p, (a, b) in enumerate(self.upper):
            out[a, b] = out[b, a] = centred_norm(p, a, b) ** 2 / (norm[a] * norm[b])
        return out

    def table(self, model_name: str = "", *, bootstrap: int = 1000, seed: int = 0,
              clusters: Sequence[Hashable] | None = None) -> pd.DataFrame:
        """One row per pair of hidden states i < j (see the module docstring)."""
        if self.n_states is None:
            raise ValueError("no tokens were added")
        tokens = self.tokens.cpu().numpy()
        cos_sent, ang_sent = self.cos.cpu().numpy().T, self.ang.cpu().numpy().T  # (pairs, sentences)
        n = tokens.sum()
        cos_lo, cos_hi = bootstrap_ratio_ci(cos_sent, tokens, bootstrap, seed, clusters=clusters)
        ang_lo, ang_hi = bootstrap_ratio_ci(ang_sent, tokens, bootstrap, seed, clusters=clusters)
        cka = self.cka_matrix()
        rows = []
        for p, (a, b) in enumerate(zip(self.i.tolist(), self.j.tolist())):
            cos = cos_sent[p].sum() / n
            rows.append({"model": model_name, "from_state": a, "to_state": b, "n_layers": b - a,
                         "layers": format_layers(range(a, b)), "cos": cos, "block_influence": 1 - cos,
                         "bi_lo": 1 - cos_hi[p], "bi_hi": 1 - cos_lo[p], "angular": ang_sent[p].sum() / n,
                         "angular_lo": ang_lo[p], "angular_hi": ang_hi[p], "cka": cka[a, b], "n_tokens": int(n),
                         "n_sentences": int((tokens > 0).sum())})
        return pd.DataFrame(rows, columns=COLUMNS)


def write_similarity(table: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)


def read_similarity(path: str | Path) -> pd.DataFrame:
    return pd.read_csv(path)


def cka_of(table: pd.DataFrame) -> np.ndarray:
    """The (states, states) linear CKA matrix of one model's similarity table, 1 on the diagonal."""
    S = int(table["to_state"].max()) + 1
    out = np.eye(S)
    out[table["from_state"], table["to_state"]] = out[table["to_state"], table["from_state"]] = table["cka"]
    return out
