"""How batches are formed: padded per batch (:func:`collator`) and, with ``group_by_length``, length-grouped
batches in random order (:class:`GroupedBatchSampler`).

Padding each batch to its longest example only pays off if a batch holds examples of similar length.
Hugging Face's ``LengthGroupedSampler`` groups them by shuffling, cutting the data into mega-batches and sorting
each mega-batch by length, but it then serves every mega-batch's batches longest first: within each window of up
to 50 batches the model sees a length curriculum, and with few mega-batches (a small GLUE task) the short
examples come last, when the learning rate has decayed. :class:`GroupedBatchSampler` builds the same batches and
serves them in random order, so the padding saving stays and the data order carries no length signal.

Deterministic in (seed, epoch): the Trainer calls :meth:`set_epoch` at every epoch, and a resumed run rebuilds
exactly the order of an uninterrupted one.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch.utils.data import Sampler

#: on a GPU, batches are padded up to a multiple of this many tokens (run_glue does the same under fp16)
GPU_PAD_MULTIPLE = 8


def collator(tokenizer, on_gpu: bool):
    """Each batch padded to its longest example, never to ``max_length``; on a GPU rounded up to a multiple of
    :data:`GPU_PAD_MULTIPLE` tokens. On a GPU the first batch of each new shape is slow in a fresh process (CUDA
    kernels loaded and chosen for it, presumably: not profiled), and every fine-tuning job is a fresh process:
    measured on an H200 (BERT-base, MRPC, one epoch, benchmarks/README.md §4), exact per-batch padding trained at
    229 examples/s in a fresh process and 741 once warm; rounded up to 8 tokens, 592 fresh. The extra padding is
    masked, so the outputs do not change (tests/test_families.py, every family). On a CPU batches stay exact."""
    from transformers import DataCollatorWithPadding

    return DataCollatorWithPadding(tokenizer, pad_to_multiple_of=GPU_PAD_MULTIPLE if on_gpu else None)


class GroupedBatchSampler(Sampler[int]):
    """Yields example indices so that each run of ``batch_size`` consecutive indices is one batch of similar
    lengths; batches come in random order, except that the batch holding the longest example comes first (an
    out-of-memory error shows at once) and a final partial batch stays last (the DataLoader cuts the stream into
    consecutive batches, so a partial batch elsewhere would shift every batch after it)."""

    def __init__(self, lengths: Sequence[int], batch_size: int, seed: int, mega_batch_mult: int | None = None):
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.lengths = [int(x) for x in lengths]
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0
        n = len(self.lengths)
        # as Hugging Face's default: mega-batches of 50 batches, or fewer so that there are at least 4
        self.mega_batch_mult = mega_batch_mult or max(1, min(n // (batch_size * 4), 50))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.lengths)

    def batches(self) -> list[list[int]]:
        """This epoch's batches, in the order they are served."""
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        n, bs = len(self.lengths), self.batch_size
        perm = torch.randperm(n, generator=g).tolist()
        size = self.mega_batch_mult * bs
        full, partial = [], []
        for lo in range(0, n, size):
            mega = sorted(perm[lo:lo + size], key=lambda i: self.lengths[i], reverse=True)
            for b in range(0, len(mega), bs):
                (full if len(mega[b:b + bs]) == bs else partial).append(mega[b:b + bs])
        order = torch.randperm(len(full), generator=g).tolist()
        full = [full[i] for i in order]
        if full:
            longest = max(range(len(full)), key=lambda i: self.lengths[full[i][0]])
            full[0], full[longest] = full[longest], full[0]
        return full + partial

    def __iter__(self):
        for batch in self.batches():
            yield from batch
