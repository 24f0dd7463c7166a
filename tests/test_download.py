"""Download stage: the classic TSV layout normalized to the Hub's form, manifests, local models, offline errors."""

import copy
import csv
import json
import shutil

import pytest
from datasets import load_from_disk
from helpers import QQP_TRAIN_MALFORMED_LINES, make_glue_tsv
from layerlens import config as llconfig
from layerlens import download, grid, tasks
from layerlens.errors import ConfigError, InputError, NetworkError
from layerlens.manifest import verify


def test_tsv_matches_hub_columns_and_labels(tiny_glue, tmp_path):
    for task, cols in {"rte": ["sentence1", "sentence2", "label", "idx"],
                       "mrpc": ["sentence1", "sentence2", "label", "idx"],
                       "cola": ["sentence", "label", "idx"], "sst2": ["sentence", "label", "idx"],
                       "stsb": ["sentence1", "sentence2", "label", "idx"],
                       "qnli": ["question", "sentence", "label", "idx"]}.items():
        entry = download.fetch_glue(task, "tsv", tmp_path / task, tsv_dir=tiny_glue)
        dsd = load_from_disk(str(tmp_path / task))
        assert sorted(dsd) == ["train", "validation"]
        assert dsd["validation"].column_names == cols
        assert entry["rows"] == {"train": 48, "validation": 24}
        assert entry["type"] == "tsv" and entry["source_files"]
        assert entry["skipped_rows"] == {"train": {"count": 0, "lines": []}, "validation": {"count": 0, "lines": []}}
    rte = load_from_disk(str(tmp_path / "rte"))["train"]
    raw = (tiny_glue / "RTE" / "train.tsv").read_text().splitlines()[1:]
    for row, line in zip(rte, raw):
        fields = line.split("\t")
        assert row["sentence1"] == fields[1] and row["sentence2"] == fields[2]
        assert row["label"] == ["entailment", "not_entailment"].index(fields[3])
    mrpc = load_from_disk(str(tmp_path / "mrpc"))["train"]
    first = (tiny_glue / "MRPC" / "train.tsv").read_text(encoding="utf-8-sig").splitlines()[1].split("\t")
    assert mrpc[0]["label"] == int(first[0]) and mrpc[0]["sentence1"] == first[3]
    assert load_from_disk(str(tmp_path / "stsb"))["train"].features["label"].dtype == "float32"


def test_real_glue_files(shared_glue, tmp_path):
    """Row and label counts of the real files against the official GLUE figures."""
    expected = {"rte": ({"train": 2490, "validation": 277}, {0: 146, 1: 131}),
                "mrpc": ({"train": 3668, "validation": 408}, {1: 279, 0: 129}),
                "cola": ({"train": 8551, "validation": 1043}, {1: 721, 0: 322}),
                "wnli": ({"train": 635, "validation": 71}, {0: 40, 1: 31}),
                "sst2": ({"train": 67349, "validation": 872}, {1: 444, 0: 428})}
    for task, (rows, labels) in expected.items():
        entry = download.fetch_glue(task, "tsv", tmp_path / task, tsv_dir=shared_glue)
        assert entry["rows"] == rows
        dev = load_from_disk(str(tmp_path / task))["validation"]
        counts = {k: dev["label"].count(k) for k in labels}
        assert counts == labels
    stsb = download.fetch_glue("stsb", "tsv", tmp_path / "stsb", tsv_dir=shared_glue)
    assert stsb["rows"] == {"train": 5749, "validation": 1500}


@pytest.mark.parametrize("mutate, words", [
    (lambda lines: [lines[0]] + [lines[1].rsplit("\t", 1)[0]] + lines[2:], "line 2: 3 fields, expected 4"),
    (lambda lines: [lines[0], lines[1].rsplit("\t", 1)[0] + "\tmaybe"] + lines[2:], "line 2: bad label 'maybe'"),
    (lambda lines: [lines[0].replace("sentence2", "hypothesis")] + lines[1:], "header lacks column(s) ['sentence2']"),
    (lambda lines: [lines[0]], "is empty: no data rows"),
])
def test_bad_tsv_names_file_and_line(tiny_glue, tmp_path, mutate, words):
    root = tmp_path / "glue"
    shutil.copytree(tiny_glue, root)
    f = root / "RTE" / "dev.tsv"
    f.write_text("\n".join(mutate(f.read_text().splitlines())) + "\n")
    with pytest.raises(InputError) as err:
        download.fetch_glue("rte", "tsv", tmp_path / "out", tsv_dir=root)
    assert str(f) in str(err.value) and words in str(err.value)
    assert not (tmp_path / "out").exists()  # nothing half-written


def _dict_rows(path):
    """The rows of a TSV file as csv.DictReader reads them (the way the Hub's GLUE loader did)."""
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))


def test_mnli_matched_and_mismatched_dev_files(tmp_path):
    """MNLI in the classic layout: train.tsv with label1, two dev files with label1..label5; the gold label is read."""
    glue = make_glue_tsv(tmp_path / "glue", tasks=("mnli",))
    entry = download.fetch_glue("mnli", "tsv", tmp_path / "mnli", tsv_dir=glue)
    assert entry["rows"] == {"train": 48, "validation_matched": 24, "validation_mismatched": 27}
    assert sorted(entry["source_files"]) == ["MNLI/dev_matched.tsv", "MNLI/dev_mismatched.tsv", "MNLI/train.tsv"]
    assert all(v == {"count": 0, "lines": []} for v in entry["skipped_rows"].values())
    dsd = load_from_disk(str(tmp_path / "mnli"))
    hub_labels = ["entailment", "neutral", "contradiction"]  # nyu-mll/glue's ClassLabel for mnli
    assert dsd["validation_matched"].features["label"].names == hub_labels
    disagree = 0
    for split, name in (("train", "train"), ("validation_matched", "dev_matched"),
                        ("validation_mismatched", "dev_mismatched")):
        raw = _dict_rows(glue / "MNLI" / f"{name}.tsv")
        assert dsd[split]["premise"] == [r["sentence1"] for r in raw]
        assert dsd[split]["hypothesis"] == [r["sentence2"] for r in raw]
        assert dsd[split]["label"] == [hub_labels.index(r["gold_label"]) for r in raw]
        disagree += sum(r["label1"] != r["gold_label"] for r in raw)
    assert disagree > 0  # the fixture can tell gold_label from label1
    # MNLI's published files hold no malformed rows: one is an error naming the file and the line
    f = glue / "MNLI" / "dev_mismatched.tsv"
    lines = f.read_text().splitlines()
    f.write_text("\n".join(lines[:3] + [lines[3].rsplit("\t", 4)[0]] + lines[4:]) + "\n")
    with pytest.raises(InputError, match="line 4: 12 fields, expected 16") as err:
        download.fetch_glue("mnli", "tsv", tmp_path / "broken", tsv_dir=glue)
    assert str(f) in str(err.value)


def test_qqp_malformed_rows_are_skipped_and_counted(tmp_path):
    """QQP's published train.tsv holds rows broken by a line break inside a question, and the fixture a row cut
    short besides: each is skipped and its line recorded in the manifest, and every good row is read exactly."""
    glue = make_glue_tsv(tmp_path / "glue", tasks=("qqp",))
    entry = download.fetch_glue("qqp", "tsv", tmp_path / "qqp", tsv_dir=glue)
    skipped = {"train": {"count": 5, "lines": QQP_TRAIN_MALFORMED_LINES}, "validation": {"count": 0, "lines": []}}
    assert entry["rows"] == {"train": 48, "validation": 24}
    assert entry["skipped_rows"] == skipped
    assert verify(tmp_path / "qqp")["skipped_rows"] == skipped  # in manifest.json on disk
    dsd = load_from_disk(str(tmp_path / "qqp"))
    for split, name in (("train", "train"), ("validation", "dev")):
        lines = (glue / "QQP" / f"{name}.tsv").read_text(encoding="utf-8").split("\n")[1:]
        good = [line.split("\t") for line in lines if line.count("\t") == 5]
        assert len(good) == entry["rows"][split]
        assert dsd[split]["question1"] == [g[3] for g in good]
        assert dsd[split]["question2"] == [g[4] for g in good]
        assert dsd[split]["label"] == [int(g[5]) for g in good]
        assert dsd[split]["idx"] == list(range(len(good)))


def test_a_task_added_to_the_registry_alone_is_validated_and_read(tiny_bert, tmp_path, monkeypatch):
    """One TaskSpec, and nothing else, makes a task: the config accepts it everywhere a task name goes, checks
    its files, and the download reads them; its metrics and score come from the same spec."""
    toy = tasks.TaskSpec(
        "toy", ("claim", "evidence"), ("low", "mid", "high"),
        (tasks.Metric("accuracy_a", "accuracy", "validation_a"),
         tasks.Metric("accuracy_b", "accuracy", "validation_b")),
        tasks.TsvLayout({"train": "TOY/train.tsv", "validation_a": "TOY/dev_a.tsv", "validation_b": "TOY/dev_b.tsv"},
                        {"claim": "text_a", "evidence": "text_b", "label": "grade"}, "id"),
        dev_splits=("validation_a", "validation_b"))
    glue = tmp_path / "glue"
    (glue / "TOY").mkdir(parents=True)
    written = {}
    for split, name, n in (("train", "train", 7), ("validation_a", "dev_a", 4), ("validation_b", "dev_b", 5)):
        written[split] = [(f"claim {i} of {name}", f"evidence {i}", (i * 2) % 3) for i in range(n)]
        (glue / "TOY" / f"{name}.tsv").write_text(
            "id\ttext_a\ttext_b\tgrade\tnote\n"
            + "".join(f"{i}\t{c}\t{e}\t{g}\tx\n" for i, (c, e, g) in enumerate(written[split])), encoding="utf-8")
    cfg = {"models": {"tiny": {"source": str(tiny_bert), "probe": {"head": "fit"}}},
           "glue": {"source": "tsv", "dir": str(glue)}, "tasks": ["toy"], "seeds": [1],
           "probe": {"fit": {"tasks": ["toy"]}}, "finetune": {"epochs": 3, "per_task": {"toy": {"epochs": 2}}}}

    with pytest.raises(ConfigError, match="'toy' is not one of") as err:  # not registered yet
        llconfig.validate(copy.deepcopy(cfg))
    assert err.value.key == "tasks[0]"
    monkeypatch.setitem(tasks.TASKS, "toy", toy)
    valid = llconfig.validate(copy.deepcopy(cfg))
    assert grid.glue_tasks(valid) == ["toy"] and grid.fit_tasks(valid) == ["toy"]
    assert grid.finetune_params(valid, "toy")["epochs"] == 2
    (glue / "TOY" / "dev_b.tsv").rename(glue / "TOY" / "dev_b.moved")
    with pytest.raises(ConfigError, match="lacks TOY/dev_b.tsv \\(toy validation_b\\)") as err:
        llconfig.validate(copy.deepcopy(cfg))
    assert err.value.key == "glue.dir"
    (glue / "TOY" / "dev_b.moved").rename(glue / "TOY" / "dev_b.tsv")

    entry = download.fetch_glue("toy", "tsv", tmp_path / "toy", tsv_dir=glue)
    assert entry["rows"] == {"train": 7, "validation_a": 4, "validation_b": 5}
    dsd = load_from_disk(str(tmp_path / "toy"))
    assert dsd["train"].features["label"].names == ["low", "mid", "high"]
    for split, rows in written.items():
        assert dsd[split]["claim"] == [c for c, _, _ in rows] and dsd[split]["evidence"] == [e for _, e, _ in rows]
        assert dsd[split]["label"] == [g for _, _, g in rows]
    m = tasks.compute_metrics("toy", {"validation_a": ([0, 1, 2, 0], [0, 1, 1, 0]),
                                      "validation_b": ([2, 2], [2, 2])})
    assert m == {"accuracy_a": 0.75, "accuracy_b": 1.0}
    assert tasks.task_score("toy", m) == pytest.approx(0.875)


def test_manifest_catches_a_changed_file(tiny_glue, tmp_path):
    download.fetch_glue("rte", "tsv", tmp_path / "rte", tsv_dir=tiny_glue)
    manifest = verify(tmp_path / "rte")
    assert any(name.endswith(".arrow") for name in manifest["files"])
    arrow = next((tmp_path / "rte").rglob("*.arrow"))
    arrow.write_bytes(arrow.read_bytes() + b"x")
    with pytest.raises(InputError, match="sha256 differs from the manifest"):
        verify(tmp_path / "rte")


def test_local_model_copy(tiny_bert, tmp_path):
    entry = download.fetch_model(str(tiny_bert), "main", tmp_path / "m", name="tiny")
    assert entry["type"] == "local" and "model.safetensors" in entry["files"]
    assert (tmp_path / "m" / "vocab.txt").is_file()
    assert verify(tmp_path / "m")["name"] == "tiny"


def test_pickle_only_model_is_refused(tiny_bert, tmp_path):
    src = tmp_path / "pickled"
    src.mkdir()
    shutil.copy(tiny_bert / "config.json", src)
    (src / "pytorch_model.bin").write_bytes(b"not loaded, never unpickled")
    with pytest.raises(InputError, match="only pickle weights \\(pytorch_model.bin\\).*never a pickle"):
        download.fetch_model(str(src), "main", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_model_folder_without_weights(tiny_bert, tmp_path):
    src = tmp_path / "empty"
    src.mkdir()
    shutil.copy(tiny_bert / "config.json", src)
    with pytest.raises(InputError, match="no weights"):
        download.fetch_model(str(src), "main", tmp_path / "out")


def test_no_network_fails_at_once_and_says_how_to_work_offline(tmp_path, monkeypatch):
    # a closed port on this machine: no traffic leaves it, and the answer is immediate
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    import importlib

    import huggingface_hub.constants

    importlib.reload(huggingface_hub.constants)
    try:
        with pytest.raises(NetworkError) as err:
            download.fetch_model("google-bert/bert-base-uncased", "main", tmp_path / "m")
    finally:
        monkeypatch.undo()
        importlib.reload(huggingface_hub.constants)
    msg = str(err.value)
    assert "Cannot reach the Hugging Face Hub" in msg
    assert "models.<name>.source" in msg and "glue: {source: tsv" in msg
    assert not (tmp_path / "m").exists()


def test_merge_manifests(tiny_bert, tiny_glue, tmp_path):
    from layerlens.manifest import merge

    download.fetch_model(str(tiny_bert), "main", tmp_path / "m", name="tiny")
    download.fetch_glue("rte", "tsv", tmp_path / "g", tsv_dir=tiny_glue)
    merged = merge([tmp_path / "m" / "manifest.json", tmp_path / "g" / "manifest.json"], tmp_path / "all.json")
    assert set(merged) == {"models", "glue", "versions"}
    assert merged["glue"]["rte"]["rows"]["validation"] == 24
    assert json.loads((tmp_path / "all.json").read_text())["models"]["tiny"]["type"] == "local"


def test_hub_glue_is_normalized_and_pinned(tiny_glue, tmp_path, monkeypatch):
    """The Hub path without the Hub: the dataset server's answer is stood in for; our code does the rest."""
    import datasets
    import huggingface_hub

    tsv, _, _ = download.read_glue_tsv("rte", tiny_glue)
    hub = datasets.DatasetDict({**tsv, "test": tsv["validation"]})  # the Hub also has an unlabeled test split
    calls = {}

    class FakeApi:
        def dataset_info(self, repo, revision):
            calls["info"] = (repo, revision)
            return type("Info", (), {"sha": "0123abcd" * 5})()

    def fake_load_dataset(repo, task, revision, cache_dir=None):
        calls["load"] = (repo, task, revision)
        return hub

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    entry = download.fetch_glue("rte", "hub", tmp_path / "rte", revision="main")
    assert calls["info"] == ("nyu-mll/glue", "main")
    assert calls["load"] == ("nyu-mll/glue", "rte", "0123abcd" * 5)  # loads the commit it pinned
    assert entry["commit"] == "0123abcd" * 5 and entry["type"] == "hub"
    assert sorted(load_from_disk(str(tmp_path / "rte"))) == ["train", "validation"]


def test_hub_model_without_safetensors_is_refused(tmp_path, monkeypatch):
    import huggingface_hub

    class FakeApi:
        def model_info(self, repo, revision, files_metadata=False):
            sib = [type("S", (), {"rfilename": n})() for n in ("config.json", "pytorch_model.bin")]
            return type("Info", (), {"sha": "f" * 40, "siblings": sib})()

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    with pytest.raises(InputError, match="ships no safetensors weights \\(only pytorch_model.bin\\)"):
        download.fetch_model("someone/old-bert", "main", tmp_path / "m")
