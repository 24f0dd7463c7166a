"""The text the probe reads, and the text a fitted head is trained on, held apart from it.

- **Probe sentences** (:func:`select_sentences`): the first ``n`` sentences of the configured tasks' *dev*
  splits. Each text column of a dev example is one sentence (an RTE or MRPC example gives two); tasks take
  turns (round robin, in the given order) so every task contributes; exact repeats are dropped. The table,
  ``results/probe/sentences.tsv``, keeps each sentence's task, example ``idx`` and column, so a statistic can
  resample whole examples.
- **Fitted-head text** (:func:`fit_sentences`): distinct sentences of the *train* splits, minus every probe
  sentence, shuffled with a seed (see :mod:`layerlens.head`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from .errors import InputError
from .io import read_tsv, write_tsv
from .tasks import get_task

SENTENCE_COLUMNS = ["task", "idx", "column", "sentence"]


def select_sentences(glue_dirs: dict[str, str | Path], n: int) -> pd.DataFrame:
    """The probe's sentences: the first ``n`` of the tasks' dev sets, deterministic.

    Returns columns task, idx, column, sentence (the dev text as is).
    """
    from datasets import load_from_disk

    streams = []
    for task, folder in glue_dirs.items():
        spec = get_task(task)
        dev = load_from_disk(str(folder))[spec.dev_splits[0]]
        rows = [(task, int(ex["idx"]), col, ex[col]) for ex in dev for col in spec.text_columns]
        streams.append(iter(rows))
    chosen, seen = [], set()
    while streams and len(chosen) < n:
        for stream in list(streams):
            row = next(stream, None)
            if row is None:
                streams.remove(stream)
                continue
            text = row[3].strip()
            if text and text not in seen:
                seen.add(text)
                chosen.append(row)
                if len(chosen) == n:
                    break
    return pd.DataFrame(chosen, columns=SENTENCE_COLUMNS)


def write_sentences(glue_dirs: dict[str, str | Path], n: int, out: str | Path) -> pd.DataFrame:
    """The probe_sentences rule: :func:`select_sentences` to the TSV ``out``."""
    table = select_sentences(glue_dirs, n)
    write_tsv(table, out)
    return table


def read_sentences(path: str | Path) -> pd.DataFrame:
    """The table :func:`write_sentences` wrote (task, idx, column, sentence), the text exactly as written."""
    table = read_tsv(path, text_columns=("task", "column", "sentence"))
    if "idx" not in table.columns:
        raise InputError(path, "no column 'idx': not a probe sentence table (rerun probe_sentences)")
    return table


def fit_sentences(glue_dirs: dict[str, str | Path], n: int, seed: int,
                  exclude: Sequence[str] = ()) -> tuple[list[str], dict]:
    """Up to ``n`` distinct sentences from the train splits of the tasks, minus ``exclude``, shuffled by ``seed``.

    Returns the sentences and counts (available, excluded as probe sentences) for the record."""
    import numpy as np
    from datasets import load_from_disk

    held_out = {s.strip() for s in exclude}
    seen, pool, dropped = set(), [], 0
    for task, folder in glue_dirs.items():
        train = load_from_disk(str(folder))["train"]
        for col in get_task(task).text_columns:
            for text in train[col]:
                text = text.strip()
                if not text or text in seen:
                    continue
                seen.add(text)
                if text in held_out:
                    dropped += 1
                    continue
                pool.append(text)
    if not pool:
        raise InputError(", ".join(map(str, glue_dirs.values())), "no training sentences to fit a head on")
    order = np.random.default_rng(seed).permutation(len(pool))
    chosen = [pool[i] for i in order[:n]]
    return chosen, {"available": len(pool), "dropped_as_probe_sentences": dropped, "used": len(chosen)}
