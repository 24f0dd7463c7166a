"""Length-grouped batches in random order: same padding saving as Hugging Face's sampler, no length order."""

import numpy as np
import pytest
import torch
from layerlens.batches import GroupedBatchSampler
from transformers.trainer_pt_utils import get_length_grouped_indices


def lengths(n=3200, seed=0):
    rng = np.random.default_rng(seed)
    return np.clip(rng.lognormal(3.8, 0.5, n).astype(int), 5, 128).tolist()


def padded_tokens(order, lens, bs):
    return sum(max(lens[i] for i in order[b:b + bs]) * len(order[b:b + bs]) for b in range(0, len(order), bs))


def test_every_example_once_and_the_stream_is_the_batches():
    lens, bs = lengths(1003), 16
    s = GroupedBatchSampler(lens, bs, seed=1)
    stream = list(s)
    assert sorted(stream) == list(range(1003)) and len(s) == 1003
    assert [stream[b:b + bs] for b in range(0, len(stream), bs)] == s.batches()  # the DataLoader's cut
    assert len(s.batches()[-1]) == 1003 % bs  # the partial batch is last
    assert all(len(b) == bs for b in s.batches()[:-1])


def test_padding_as_low_as_huggingface_grouping_and_far_below_random():
    lens, bs = lengths(), 16
    real = sum(lens)
    ours = padded_tokens(list(GroupedBatchSampler(lens, bs, seed=1)), lens, bs)
    hf = padded_tokens(get_length_grouped_indices(lens, bs, generator=torch.Generator().manual_seed(1)), lens, bs)
    rand = padded_tokens(torch.randperm(len(lens), generator=torch.Generator().manual_seed(1)).tolist(), lens, bs)
    assert ours / real < 1.05 and abs(ours - hf) / hf < 0.02 and rand / real > 1.5


def test_batches_come_in_random_order_not_longest_first():
    lens, bs = lengths(), 16
    first = lambda order: [max(lens[i] for i in order[b:b + bs]) for b in range(0, len(order), bs)]  # noqa: E731
    ours = first(list(GroupedBatchSampler(lens, bs, seed=1)))
    hf = first(get_length_grouped_indices(lens, bs, generator=torch.Generator().manual_seed(1)))
    descents = lambda xs: np.mean(np.diff(xs[1:]) < 0)  # noqa: E731  (after the longest-first batch)
    assert descents(hf) > 0.9  # HF: sorted within each mega-batch
    assert 0.35 < descents(ours) < 0.65  # random order: as many rises as falls
    # and no trend over the epoch: the first and second half hold batches of the same lengths on average
    half = len(ours) // 2
    assert abs(np.mean(ours[1:half]) - np.mean(ours[half:])) < 0.1 * np.mean(ours)
    assert ours[0] == max(ours)  # the longest batch first: an out-of-memory error shows at once


def test_deterministic_in_seed_and_epoch():
    lens = lengths(500)
    a, b, c = (GroupedBatchSampler(lens, 8, seed=s) for s in (3, 3, 4))
    assert list(a) == list(b) and list(a) != list(c)
    before = list(a)
    a.set_epoch(1)
    assert list(a) != before
    b.set_epoch(1)
    assert list(a) == list(b)
    a.set_epoch(0)
    assert list(a) == before  # a resumed run rebuilds the same order from (seed, epoch) alone


def test_small_data_and_bad_batch_size():
    assert list(GroupedBatchSampler([3, 1, 2], 8, seed=0)) and sorted(GroupedBatchSampler([3, 1, 2], 8, seed=0)) \
        == [0, 1, 2]
    with pytest.raises(ValueError, match="batch_size"):
        GroupedBatchSampler([1, 2], 0, seed=0)


def test_the_trainer_serves_these_batches(tiny_bert, tmp_path):
    """SafeTrainer with group_by_length builds this sampler from the tokenized lengths (a column the Trainer drops
    before asking for a sampler) and its DataLoader pads each batch to the batch's own longest example."""
    from datasets import Dataset
    from layerlens.checkpoint import SafeTrainer
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        DataCollatorWithPadding,
        TrainingArguments,
    )

    tok = AutoTokenizer.from_pretrained(str(tiny_bert))
    rng = np.random.default_rng(0)
    words = ["the", "cat", "sat", "on", "a", "mat", "and", "dog"]
    texts = [" ".join(rng.choice(words, size=int(k))) for k in rng.integers(1, 40, size=96)]
    enc = tok(texts, truncation=True, max_length=64)
    data = Dataset.from_dict({**enc, "label": [i % 2 for i in range(96)],
                              "length": [len(x) for x in enc["input_ids"]]})
    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_bert), num_labels=2)
    args = TrainingArguments(output_dir=str(tmp_path), per_device_train_batch_size=8, seed=5, report_to="none",
                             train_sampling_strategy="group_by_length", use_cpu=True)
    trainer = SafeTrainer(model=model, args=args, train_dataset=data, processing_class=tok,
                          data_collator=DataCollatorWithPadding(tok))
    loader = trainer.get_train_dataloader()
    expected = GroupedBatchSampler(data["length"], 8, seed=5).batches()
    served = [batch["input_ids"].shape[1] for batch in loader]
    assert served == [max(data["length"][i] for i in b) for b in expected]
