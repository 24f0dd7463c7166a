"""The GLUE sample shipped in data/glue-sample: what its README states, read through the pipeline's own TSV reader;
and, where the full files are at hand (../shared/glue), that it is made of their lines and that the rule rebuilds it."""

from __future__ import annotations

import collections
import hashlib
import importlib.util
import math
import re

import pytest
from helpers import REPO
from layerlens.download import read_glue_tsv

SAMPLE = REPO / "data" / "glue-sample"
TASKS = {"mrpc": "MRPC", "stsb": "STS-B"}
SPLITS = {"train": "train.tsv", "validation": "dev.tsv"}
ROW = re.compile(r"^\| `(?P<file>[^`]+\.tsv)` \| (?P<rows>\d+) \| (?P<labels>[^|]+) \| (?P<bytes>\d+) \| "
                 r"`(?P<sha>[0-9a-f]{64})` \| [^|]+ \| `(?P<orig_sha>[0-9a-f]{64})` \|$")


def readme_table() -> dict[str, dict]:
    """The README's file table: file -> rows, labels ({value: count}), bytes, sha256, original sha256."""
    table = {}
    for line in (SAMPLE / "README.md").read_text(encoding="utf-8").splitlines():
        m = ROW.match(line)
        if m:
            labels = dict(part.strip().split(": ") for part in m["labels"].split(","))
            table[m["file"]] = {"rows": int(m["rows"]), "labels": {k: int(v) for k, v in labels.items()},
                                "bytes": int(m["bytes"]), "sha256": m["sha"], "original_sha256": m["orig_sha"]}
    return table


def label_key(task: str, label) -> str:
    """A label as the README writes it: MRPC's raw 0/1, STS-B's whole-number score band (5.0 in 4-5)."""
    if task == "stsb":
        band = min(math.floor(label), 4)
        return f"{band}-{band + 1}"
    return str(label)


def load_make_sample():
    spec = importlib.util.spec_from_file_location("make_sample", SAMPLE / "make_sample.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_table_lists_every_sample_file():
    table = readme_table()
    on_disk = {p.relative_to(SAMPLE).as_posix() for p in SAMPLE.rglob("*.tsv")}
    assert set(table) == on_disk == {f"{d}/{f}" for d in TASKS.values() for f in SPLITS.values()}


def test_sample_bytes_match_the_readme_and_keep_the_quirks():
    table = readme_table()
    for rel, stated in table.items():
        data = (SAMPLE / rel).read_bytes()
        assert len(data) == stated["bytes"], rel
        assert hashlib.sha256(data).hexdigest() == stated["sha256"], rel
        assert data.endswith(b"\n") and b"\r" not in data, rel
        assert data.startswith(b"\xef\xbb\xbfQuality\t") == rel.startswith("MRPC/"), rel  # MRPC's BOM, kept
    assert sum((SAMPLE / rel).stat().st_size for rel in table) < 500_000


@pytest.mark.parametrize("task", sorted(TASKS))
def test_pipeline_reader_reads_the_stated_rows_and_labels(task):
    table = readme_table()
    dsd, sources, _ = read_glue_tsv(task, SAMPLE)
    assert sorted(dsd) == sorted(SPLITS)
    for split, name in SPLITS.items():
        stated = table[f"{TASKS[task]}/{name}"]
        ds = dsd[split]
        assert len(ds) == stated["rows"]
        assert dict(collections.Counter(label_key(task, x) for x in ds["label"])) == stated["labels"]
        assert sources[f"{TASKS[task]}/{name}"] == stated["sha256"]


@pytest.mark.realdata
def test_every_sample_line_is_a_line_of_the_original_in_order(shared_glue):
    table = readme_table()
    for rel, stated in table.items():
        original = (shared_glue / rel).read_bytes()
        assert hashlib.sha256(original).hexdigest() == stated["original_sha256"], rel
        orig_lines = original.splitlines(keepends=True)
        sample_lines = (SAMPLE / rel).read_bytes().splitlines(keepends=True)
        assert sample_lines[0] == orig_lines[0], rel  # the header, byte for byte
        position = {line: n for n, line in enumerate(orig_lines)}
        assert len(position) == len(orig_lines), rel  # no repeated lines, so positions are unambiguous
        found = [position.get(line) for line in sample_lines[1:]]
        assert None not in found, f"{rel}: a line that is not in the original"
        assert found == sorted(set(found)) and found[0] > 0, f"{rel}: lines repeated or out of order"
    assert (SAMPLE / "STS-B" / "LICENSE.txt").read_bytes() == (shared_glue / "STS-B" / "LICENSE.txt").read_bytes()


@pytest.mark.realdata
def test_selection_rule_rebuilds_the_committed_sample(shared_glue, capsys):
    make_sample = load_make_sample()
    built = make_sample.build(shared_glue)
    assert set(built) == set(readme_table()) | {"STS-B/LICENSE.txt"}
    for rel, data in built.items():
        assert (SAMPLE / rel).read_bytes() == data, f"{rel} differs from what make_sample.py builds"
    assert make_sample.main(["--glue", str(shared_glue), "--check"]) == 0
    assert "DIFF" not in capsys.readouterr().out


def test_quotas_follow_the_largest_remainder():
    quotas = load_make_sample().quotas
    assert quotas({"0": 1194, "1": 2474}, 400) == {"0": 130, "1": 270}
    assert quotas({"a": 1, "b": 1, "c": 1}, 2) == {"a": 1, "b": 1, "c": 0}  # ties: the stratum that sorts first
    with pytest.raises(ValueError):
        quotas({"a": 1}, 2)
