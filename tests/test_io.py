"""Atomic writes: a failed or interrupted write never leaves a partial file or replaces a finished one."""

import errno

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
