"""Atomic writes: a failed or interrupted write never leaves a partial file or replaces a finished one."""

import csv
import errno

import numpy as np
import pandas as pd
import pytest
from layerlens import io
from layerlens.errors import InputError


def test_atomic_path_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "metrics.json"
    io.write_json(target, {"score": 1})
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("killed")
    assert io.read_json(target) == {"score": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_atomic_dir_replaces_only_when_complete(tmp_path):
    target = tmp_path / "model"
    with io.atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(RuntimeError):
        with io.atomic_dir(target) as tmp:
            (tmp / "b").write_text("2")
            raise RuntimeError
    assert sorted(p.name for p in target.iterdir()) == ["a"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_disk_full_names_the_file_and_keeps_results(tmp_path, monkeypatch, code):
    target = tmp_path / "results" / "predictions.tsv"
    io.write_text(target, "finished\n")

    def full(self, *a, **k):
        raise OSError(code, "simulated")

    monkeypatch.setattr(type(target), "write_text", full)
    with pytest.raises(InputError) as err:
        io.write_text(target, "new")
    assert str(target) in str(err.value) and "free space" in str(err.value).lower()
    monkeypatch.undo()
    assert target.read_text() == "finished\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["predictions.tsv"]


# --- TSV ---------------------------------------------------------------------------------------------------

HARD_TEXT = ['He said "hi"', '"', '""', 'a\tb', "line\nbreak", "cr\r", "\r\n", "back\\slash", "\\t", "NA", "null",
             "nan", "None", "N/A", "", " ", "  lead", "trail  ", "007", "1e5", "True", "#comment", "ünï ✓ 中文",
             "\ufeffbom", "it's", "'quoted'", "a\x0bb\x0cc\x1cd\x85e\u2028f"]


def test_tsv_round_trips_any_text_byte_for_byte(tmp_path):
    table = pd.DataFrame({"text": HARD_TEXT, "idx": range(len(HARD_TEXT)),
                          "score": [float("nan"), 0.1, -2.5e-7] + [1.0] * (len(HARD_TEXT) - 3),
                          "split": "validation"})
    io.write_tsv(table, tmp_path / "t.tsv")
    back = io.read_tsv(tmp_path / "t.tsv", text_columns=("text", "split"))
    assert [s.encode("utf-8") for s in back["text"]] == [s.encode("utf-8") for s in HARD_TEXT]
    assert list(back.columns) == list(table.columns) and (back["split"] == "validation").all()
    assert back["idx"].tolist() == list(range(len(HARD_TEXT))) and back["idx"].dtype.kind == "i"
    np.testing.assert_array_equal(back["score"].to_numpy(), table["score"].to_numpy())  # NaN stays NaN
    # the file is an ordinary TSV: any CSV reader that honours quotes reads the same text
    with open(tmp_path / "t.tsv", encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh, delimiter="\t"))
    assert [r[0] for r in rows[1:]] == HARD_TEXT


def test_tsv_bad_input_is_named(tmp_path):
    io.write_tsv(pd.DataFrame({"a": ["x"]}), tmp_path / "t.tsv")
    with pytest.raises(InputError, match=r"t\.tsv: no column 'sentence'"):
        io.read_tsv(tmp_path / "t.tsv", text_columns=("sentence",))
    with pytest.raises(ValueError, match="column 'text' holds a missing value"):
        io.write_tsv(pd.DataFrame({"text": ["x", None]}), tmp_path / "u.tsv")
    assert not (tmp_path / "u.tsv").exists()
