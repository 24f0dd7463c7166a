"""Per-layer metrics of a lens reading: what the layer-wise lens literature reports, for masked-LM encoders.

A *reading* turns a layer's hidden state at a scored position into a distribution over the vocabulary (the MLM
head, a translator then the head, or the input embeddings as decoder; see :mod:`layerlens.probe`). Given those
log-probabilities and the target token, :class:`LayerScores` accumulates, per layer:

``top1`` (``top1_lo``, ``top1_hi``)
    share of positions whose argmax is the target, with a 95% bootstrap interval that resamples whole examples
    (:func:`layerlens.stats.bootstrap_ratio_ci`)
``top5``
    share whose target is among the 5 highest logits
``cross_entropy``
    mean -log p(target), nats
``entropy``
    mean entropy of the predicted distribution, nats
``mrr`` and ``median_rank``
    the target's rank (1 = the argmax; ties counted in its favour: 1 + the number of tokens with a strictly
    higher log-probability): mean reciprocal rank, and the median rank
``ece`` (``ece_bins``)
    top-label calibration error (:func:`calibration_error`): does the top token's probability match how often
    the top token is right?
``agree_last`` and ``kl_last``
    share whose argmax equals the reference's (the model's own output: the last layer through the head), and
    mean KL(reference || reading), nats

Per-position confidences, hits and ranks are kept (a few bytes per position and layer) for the median and the
calibration error; the vocabulary-sized log-probabilities are not.
"""

from __future__ import annotations

import math

import numpy as np

from .stats import bootstrap_ratio_ci

METRIC_COLUMNS = ["top1", "top1_lo", "top1_hi", "top5", "cross_entropy", "entropy", "mrr", "median_rank", "ece",
                  "ece_bins", "agree_last", "kl_last"]


def calibration_error(confidence, hit, p: int = 2) -> tuple[float, int]:
    """Top-label calibration error by the monotonic sweep over equal-mass bins; returns (error, bins).

    The binning of tuned-lens's ``CalibrationError`` (Roelofs et al., 2020, "Mitigating bias in calibration
    error estimation", ECE_sweep): positions sorted by confidence (the top token's probability) are split into
    b nearly equal-mass bins (``numpy.array_split``'s sizes), for b = 1, 2, ... as long as the bins' accuracies
    rise strictly and none is 0 or 1; the last such b is used. The error is
    ``(sum_k n_k / n * |accuracy_k - mean confidence_k| ** p) ** (1 / p)``; ``p = 2`` as tuned-lens's default.
    Positions of equal confidence (to 6 decimals; the masked mode's layer 0 gives many, equal up to float
    rounding) are ordered misses first, so the bins, and the result, do not depend on the order the positions
    come in or on the rounding of the batch they were computed in.
    NaN (0 bins) with fewer than two positions.
    """
    conf = np.asarray(confidence, dtype=np.float64)
    hits = np.asarray(hit, dtype=np.float64)
    n = conf.size
    if n < 2:
        return math.nan, 0
    # by confidence (equal to 6 decimals: a tie), ties misses first, whatever order the positions came in
    order = np.lexsort((hits, np.round(conf, 6)))
    conf, hits = conf[order], hits[order]
    sum_hits = np.concatenate([[0.0], np.cumsum(hits)])
    sum_conf = np.concatenate([[0.0], np.cumsum(conf)])

    def edges(b: int) -> np.ndarray:
        sizes = np.full(b, n // b)
        sizes[: n % b] += 1
        return np.concatenate([[0], np.cumsum(sizes)])

    best = edges(1)
    for b in range(2, n + 1):
        e = edges(b)
        acc = np.diff(sum_hits[e]) / np.diff(e)
        if not (np.all(acc[1:] > acc[:-1]) and np.all(acc * (1 - acc) > 0)):
            break
        best = e
    sizes = np.diff(best)
    acc = np.diff(sum_hits[best]) / sizes
    mean_conf = np.diff(sum_conf[best]) / sizes
    return float(np.sum(sizes / n * np.abs(acc - mean_conf) ** p) ** (1 / p)), int(sizes.size)


class LayerScores:
    """The metrics of one reading, accumulated layer by layer over chunks of positions."""

    def __init__(self, n_layers: int, n_sentences: int):
        self.top1 = np.zeros((n_layers, n_sentences), dtype=np.int64)  # hits per sentence, for the bootstrap
        self.tokens = np.zeros(n_sentences, dtype=np.int64)
        self.sums = {k: np.zeros(n_layers) for k in ("top5", "ce", "entropy", "agree", "kl")}
        self.conf = [[] for _ in range(n_layers)]
        self.hit = [[] for _ in range(n_layers)]
        self.rank = [[] for _ in range(n_layers)]

    def add(self, layer: int, logp, target, reference, sentence: np.ndarray) -> None:
        """Score one chunk at ``layer``: ``logp`` (positions, vocab) float log-probabilities, ``target`` the
        token ids, ``reference`` = (log-probabilities, probabilities, argmax) of the model's own output."""
        import torch

        ref_logp, ref_p, ref_top1 = reference
        top5 = logp.topk(min(5, logp.shape[-1]), dim=-1).indices
        top1 = top5[:, 0]
        target_logp = logp.gather(-1, target[:, None])
        hit = top1 == target
        np.add.at(self.top1[layer], sentence, hit.cpu().numpy().astype(np.int64))
        if layer == 0:
            np.add.at(self.tokens, sentence, 1)
        sums = self.sums
        sums["top5"][layer] += float((top5 == target[:, None]).any(-1).sum())
        sums["ce"][layer] += float(-target_logp.double().sum())
        sums["entropy"][layer] += float(torch.special.entr(logp.exp()).sum(-1).double().sum())
        sums["agree"][layer] += float((top1 == ref_top1).sum())
        sums["kl"][layer] += float((ref_p * (ref_logp - logp)).sum(-1).double().sum())
        self.conf[layer].append(logp.max(-1).values.exp().double().cpu().numpy())
        self.hit[layer].append(hit.cpu().numpy())
        self.rank[layer].append((1 + (logp > target_logp).sum(-1)).cpu().numpy())

    def rows(self, *, bootstrap: int, seed: int, clusters) -> list[dict]:
        """One dict of :data:`METRIC_COLUMNS` (plus ``n_tokens``, ``n_sentences``) per layer."""
        n_tok = int(self.tokens.sum())
        if n_tok == 0:
            raise ValueError("no scored positions")
        lo, hi = bootstrap_ratio_ci(self.top1, self.tokens, bootstrap, seed, clusters=clusters)
        out = []
        for layer in range(self.top1.shape[0]):
            rank = np.concatenate(self.rank[layer])
            ece, bins = calibration_error(np.concatenate(self.conf[layer]), np.concatenate(self.hit[layer]))
            s = {k: v[layer] / n_tok for k, v in self.sums.items()}
            out.append({"top1": self.top1[layer].sum() / n_tok, "top1_lo": lo[layer], "top1_hi": hi[layer],
                        "top5": s["top5"], "cross_entropy": s["ce"], "entropy": s["entropy"],
                        "mrr": float(np.mean(1.0 / rank)), "median_rank": float(np.median(rank)), "ece": ece,
                        "ece_bins": bins, "agree_last": s["agree"], "kl_last": s["kl"], "n_tokens": n_tok,
                        "n_sentences": int((self.tokens > 0).sum())})
        return out
