"""Config validation: defaults from the schema, and one clear message naming the key for each bad config."""

import copy
import subprocess
import sys

import pytest
import yaml
from helpers import REPO
from layerlens import config as llconfig
from layerlens import grid
from layerlens.errors import ConfigError, InputError


@pytest.fixture
def good(tiny_bert, tiny_glue):
    return {
        "models": {"tiny": {"source": str(tiny_bert)}},
        "variants": {"tiny-dup": {"base": "tiny", "layers": "0-2,2"}},
        "glue": {"source": "tsv", "dir": str(tiny_glue)},
        "tasks": ["rte", "mrpc"],
        "seeds": [1, 2],
    }


def test_defaults_are_filled(good):
    cfg = llconfig.validate(copy.deepcopy(good))
    fit = cfg["probe"].pop("fit")
    translators = cfg["probe"].pop("translators")
    assert cfg["probe"] == {"sentences": 1000, "max_length": 128, "batch_size": 32, "chunk_tokens": 2048,
                            "bootstrap": 1000, "mode": ["input"],
                            "masking": {"scheme": "random", "probability": 0.15, "corruption": "mask",
                                        "max_positions": 32, "seed": 0}}
    assert fit == {"tasks": None, "sentences": 6000, "steps": 150, "batch_size": 32, "learning_rate": 1e-3,
                   "weight_decay": 0.0, "seed": 0, "max_length": 128, "objective": "reconstruct",
                   "mlm_probability": 0.15, "tie_decoder": "both"}
    assert translators == {"enabled": False, "sentences": 6000, "steps": 150, "batch_size": 32,
                           "learning_rate": 1e-3, "weight_decay": 0.0, "seed": 0, "max_length": 128}
    assert cfg["models"]["tiny"]["probe"] == {"head": "pretrained"}
    assert cfg["finetune"]["learning_rate"] == 2e-5 and cfg["finetune"]["batch_size"] == 32
    assert cfg["finetune"]["per_task"] == {}
    assert cfg["models"]["tiny"]["revision"] == "main"


def test_probe_modes_and_translators(good):
    """`translators: true` is short for `{enabled: true}`; a mode or masking key the probe lacks is named."""

    cfg = llconfig.validate({**copy.deepcopy(good), "probe": {"mode": "masked", "translators": True}})
    assert cfg["probe"]["mode"] == "masked" and cfg["probe"]["translators"]["enabled"] is True
    assert grid.translator_bases(cfg) == ["tiny"] and grid.head_names(cfg, "tiny") == ["pretrained"]
    for probe, key in (({"mode": ["input", "hidden"]}, "probe.mode"),
                       ({"masking": {"scheme": "all"}}, "probe.masking.scheme"),
                       ({"fit": {"tie_decoder": "maybe"}}, "probe.fit.tie_decoder")):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            llconfig.validate({**copy.deepcopy(good), "probe": probe})


def test_per_task_overrides(good):
    good["finetune"] = {"epochs": 3, "per_task": {"mrpc": {"epochs": 5, "learning_rate": 3e-5}}}
    cfg = llconfig.validate(good)
    assert grid.finetune_params(cfg, "mrpc")["epochs"] == 5
    assert grid.finetune_params(cfg, "mrpc")["learning_rate"] == 3e-5
    assert grid.finetune_params(cfg, "rte")["epochs"] == 3
    assert "per_task" not in grid.finetune_params(cfg, "rte")


#: every config the repository ships: the default, the ready-made experiments and the examples
SHIPPED = [REPO / "config.yaml", *sorted((REPO / "configs").glob("*.yaml")),
           *sorted((REPO / "examples").glob("*/*.yaml"))]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_every_shipped_config_is_valid(path):
    cfg = llconfig.validate(yaml.safe_load(path.read_text()), workdir=REPO)
    assert cfg["models"] and cfg["tasks"] and cfg["seeds"]


BAD = {
    "unknown task": (lambda c: c["tasks"].append("squad"), "tasks[2]", "is not one of"),
    "layer out of range": (lambda c: c["variants"]["tiny-dup"].update(layers="0-3"), "variants.tiny-dup.layers",
                           "layer 3 is out of range: the base has 3 layers"),
    "duplicate out of range": (lambda c: c["variants"].update({"d": {"base": "tiny", "duplicate": [7]}}),
                               "variants.d", "layer 7 is out of range"),
    "bad layer syntax": (lambda c: c["variants"]["tiny-dup"].update(layers="0-2,x"), "variants.tiny-dup.layers",
                         "cannot parse 'x'"),
    "variant base is not a model": (lambda c: c["variants"]["tiny-dup"].update(base="bert"),
                                    "variants.tiny-dup.base", "is not a model under `models`"),
    "variant named like a model": (lambda c: c["variants"].update({"tiny": {"base": "tiny", "layers": "0"}}),
                                   "variants.tiny", "cannot share its name"),
    "tsv without dir": (lambda c: c["glue"].pop("dir"), "glue.dir", "must name the classic glue_data folder"),
    "tsv dir lacking a task": (lambda c: c["tasks"].append("mnli"), "glue.dir", "lacks MNLI/train.tsv"),
    "tsv dir missing": (lambda c: c["glue"].update(dir="/nonexistent/glue"), "glue.dir", "is not a folder"),
    "non-integer seed": (lambda c: c.update(seeds=[1, 2.5]), "seeds[1]", "is not of type 'integer'"),
    "string seed": (lambda c: c.update(seeds=["1"]), "seeds[0]", "is not of type 'integer'"),
    "unknown top-level key": (lambda c: c.update(epochs=3), "epochs", "unknown key"),
    "unknown nested key": (lambda c: c.update(finetune={"lr": 1e-5}), "finetune.lr", "unknown key"),
    "unknown per-task key": (lambda c: c.update(finetune={"per_task": {"rte": {"lr": 1}}}),
                             "finetune.per_task.rte.lr", "unknown key"),
    "both layers and sugar": (lambda c: c["variants"]["tiny-dup"].update(remove=[0]), "variants.tiny-dup.layers",
                              "not both"),
    "zero layers": (lambda c: c["variants"].update({"none": {"base": "tiny", "remove": [0, 1, 2]}}),
                    "variants.none", "zero layers"),
    "bad model name": (lambda c: c["models"].update({"my model": {"source": "a/b"}}), "models",
                       "does not match"),
    "missing local model": (lambda c: c["models"]["tiny"].update(source="./no/such/model"),
                            "models.tiny.source", "does not exist"),
    "bad glue source": (lambda c: c["glue"].update(source="s3"), "glue.source", "is not one of"),
    "no seeds": (lambda c: c.update(seeds=[]), "seeds", "should be non-empty"),
    "unknown head": (lambda c: c["models"]["tiny"].update(probe={"head": "fitted"}), "models.tiny.probe.head",
                     "is not one of ['pretrained', 'fit']"),
    "unknown fit key": (lambda c: c.update(probe={"fit": {"epochs": 1}}), "probe.fit.epochs", "unknown key"),
    "bad fit objective": (lambda c: c.update(probe={"fit": {"objective": "clm"}}), "probe.fit.objective",
                          "is not one of"),
    "fit task lacking files": (lambda c: (c["models"]["tiny"].update(probe={"head": "fit"}),
                                          c.update(probe={"fit": {"tasks": ["mnli"]}})),
                               "glue.dir", "lacks MNLI/train.tsv"),
}


def test_the_schema_takes_its_task_names_from_the_registry():
    """The schema file lists no task: every place that takes a task name refers to $defs/task, whose names
    config.schema() fills in from layerlens.tasks.TASKS."""
    from layerlens.tasks import TASKS

    raw = yaml.safe_load(llconfig.SCHEMA.read_text())

    def enums(node):
        if isinstance(node, dict):
            yield from ([node["enum"]] if "enum" in node else [])
            node = list(node.values())
        for child in node if isinstance(node, list) else []:
            yield from enums(child)

    assert [e for e in enums(raw) if set(e) & set(TASKS)] == []
    props = raw["properties"]
    ref = {"$ref": "#/$defs/task"}
    assert props["tasks"]["items"] == ref and props["probe"]["properties"]["fit"]["properties"]["tasks"]["items"] == ref
    assert props["finetune"]["properties"]["per_task"]["propertyNames"] == ref
    assert llconfig.schema()["$defs"]["task"]["enum"] == list(TASKS)


def test_runtime_keys_are_finetune_settings():
    """RUNTIME_KEYS leave a rule's params: a key renamed in the schema must not silently stay in them."""
    finetune = yaml.safe_load(llconfig.SCHEMA.read_text())["properties"]["finetune"]["properties"]
    assert set(grid.RUNTIME_KEYS) <= set(finetune) - {"per_task"}


def test_head_settings_and_the_tasks_they_need(good):
    cfg = llconfig.validate(copy.deepcopy(good))
    assert grid.head_of(cfg, "tiny-dup") == "pretrained" and grid.fit_bases(cfg) == []
    assert grid.glue_tasks(cfg) == ["rte", "mrpc"]  # no fitted head: no extra task
    good["models"]["tiny"]["probe"] = {"head": "fit"}
    good["probe"] = {"fit": {"tasks": ["sst2", "rte"]}}
    cfg = llconfig.validate(good)
    assert grid.head_of(cfg, "tiny-dup") == "fit"  # a variant reads its layers with its base's head
    assert grid.fit_bases(cfg) == ["tiny"] and grid.fit_tasks(cfg) == ["sst2", "rte"]
    assert grid.glue_tasks(cfg) == ["rte", "mrpc", "sst2"]


def test_a_layer_map_the_architecture_cannot_express_is_refused_at_once(good, tmp_path):
    from helpers import make_tiny_family

    good["models"]["mb"] = {"source": str(make_tiny_family(tmp_path / "mb", "modernbert"))}
    good["variants"]["mb-bad"] = {"base": "mb", "duplicate": [0]}
    with pytest.raises(ConfigError, match="variants.mb-bad'.*layer 0 has no attention norm"):
        llconfig.validate(good)


@pytest.mark.parametrize("case", list(BAD))
def test_bad_config_names_the_key(good, case):
    mutate, key, words = BAD[case]
    cfg = copy.deepcopy(good)
    mutate(cfg)
    with pytest.raises(ConfigError) as err:
        llconfig.validate(cfg)
    assert err.value.key == key
    assert str(err.value).startswith(f"config key '{key}'")
    assert words in str(err.value)


def test_malformed_yaml_names_the_file(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("models:\n  a: {source: x/y\ntasks: [rte]\n")
    with pytest.raises(InputError, match="c.yaml: malformed YAML"):
        llconfig.load(p)


def test_snakemake_refuses_a_bad_config_before_any_job(good, tmp_path):
    """The real path: snakemake itself stops at parse time with the one-line message, and nothing is created."""
    good["tasks"] = ["rte", "squad"]
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(good))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--configfile",
                           "bad.yaml", "--cores", "1"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    assert "invalid configuration: config key 'tasks[1]': 'squad' is not one of" in proc.stdout + proc.stderr
    assert not (tmp_path / "resources").exists() and not (tmp_path / "results").exists()


def test_a_configfile_replaces_the_shipped_config(good, tmp_path):
    """`--configfile my.yaml` plans my.yaml's models only (the default workflow profile makes it replace
    config.yaml); where no profile says so, the run stops instead of merging config.yaml's models in."""
    (tmp_path / "my.yaml").write_text(yaml.safe_dump(good))
    base = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--configfile", "my.yaml", "-n",
            "--cores", "1"]
    proc = subprocess.run(base, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    shipped = yaml.safe_load((REPO / "config.yaml").read_text())["models"]
    assert "download_model" in out and not any(f"resources/models/{m}" in out for m in shipped)
    merged = subprocess.run(base + ["--workflow-profile", "none"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300)
    assert merged.returncode != 0 and "--configfile needs --replace-workflow-config" in merged.stdout + merged.stderr


def test_snakemake_names_the_line_of_malformed_yaml_in_the_shipped_config(tmp_path):
    """The Snakefile checks config.yaml before `configfile:` reads it, so the message names the file and line."""
    import shutil

    repo = tmp_path / "repo"
    shutil.copytree(REPO, repo, ignore=shutil.ignore_patterns(".venv", ".git", "results", "resources", ".snakemake"))
    (repo / "config.yaml").write_text("models:\n  a: {source: x/y\ntasks: [rte]\n")
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-n", "--cores", "1"], cwd=repo, capture_output=True,
                          text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "config.yaml: malformed YAML" in out and "line 3" in out, out[-3000:]


def test_sweeps_generate_named_variants(good):
    good["sweeps"] = [{"base": "tiny", "kind": "duplicate_each"},
                      {"base": "tiny", "kind": "remove_each", "layers": [1]},
                      {"base": "tiny", "kind": "duplicate_block", "blocks": ["0-1"], "finetune": True},
                      {"base": "tiny", "kind": "duplicate_top", "k": [2]}, {"base": "tiny", "kind": "interleave",
                                                                           "every": [2]}]
    cfg = llconfig.validate(good)
    v = cfg["variants"]
    assert v["tiny-dup0"] == {"base": "tiny", "layers": "0,0-2", "finetune": False}
    assert v["tiny-dup2"]["layers"] == "0-2,2" and v["tiny-rm1"]["layers"] == "0,2"
    assert "tiny-rm0" not in v
    assert v["tiny-dupblock0-1"] == {"base": "tiny", "layers": "0-1,0-2", "finetune": True}
    assert v["tiny-duptop2"]["layers"] == "0-2,1-2" and v["tiny-interleave2"]["layers"] == "0-1,1-2"
    assert "tiny-dup0" not in grid.finetuned_models(cfg) and "tiny-dupblock0-1" in grid.finetuned_models(cfg)
    assert not grid.is_materialized(cfg, "tiny-dup0") and grid.is_materialized(cfg, "tiny-dup")
    llconfig.validate(cfg)  # idempotent: a config that was already expanded validates to the same thing
    assert cfg["variants"] == v


@pytest.mark.parametrize("sweep, key, words", [
    ({"base": "nope", "kind": "duplicate_each"}, "sweeps[0].base", "is not a model"),
    ({"base": "tiny", "kind": "duplicate_each", "layers": [5]}, "sweeps[0].layers", "layer 5 is out of range"),
    ({"base": "tiny", "kind": "duplicate_top", "layers": [1]}, "sweeps[0].layers",
     "does not apply to kind duplicate_top"),
    ({"base": "tiny", "kind": "duplicate_block"}, "sweeps[0]", "needs `blocks`"),
    ({"base": "tiny", "kind": "shuffle"}, "sweeps[0].kind", "is not one of"),
])
def test_bad_sweeps(good, sweep, key, words):
    good["sweeps"] = [sweep]
    with pytest.raises(ConfigError) as err:
        llconfig.validate(good)
    assert err.value.key == key and words in str(err.value)


def test_depth_of_a_hub_model_before_download(good):
    good["models"]["hub"] = {"source": "google-bert/bert-base-uncased"}
    good["sweeps"] = [{"base": "hub", "kind": "remove_each"}]
    with pytest.raises(ConfigError, match="sweeps\\[0\\].base.*unknown before it is downloaded.*num_layers"):
        llconfig.validate(copy.deepcopy(good))
    good["models"]["hub"]["num_layers"] = 12
    cfg = llconfig.validate(good)
    assert sum(1 for v in cfg["variants"] if v.startswith("hub-rm")) == 12
    good2 = copy.deepcopy(good)
    good2["models"]["tiny"]["num_layers"] = 7
    with pytest.raises(ConfigError, match="models.tiny.num_layers.*says 7 but .* has 3 layers"):
        llconfig.validate(good2)


def test_the_stable_preset_fills_only_what_the_config_leaves_out(good):
    """finetune.preset: stable (layerlens.recipes, Mosbach et al.) gives its values to the keys the config does not
    set; a key the config sets wins, and its per-task epochs stand back where the config sets epochs itself."""
    stable = llconfig.validate({**copy.deepcopy(good), "finetune": {"preset": "stable"}})
    rte, sst2 = grid.finetune_params(stable, "rte"), grid.finetune_params(stable, "sst2")
    assert (rte["epochs"], sst2["epochs"]) == (20, 3)
    assert rte["batch_size"] == 16 and rte["learning_rate"] == 2e-5 and rte["warmup_ratio"] == 0.1
    assert rte["weight_decay"] == 0.01 and rte["max_grad_norm"] == 1.0
    assert rte["model_selection"] == "holdout" and rte["holdout_fraction"] == 0.1
    default = llconfig.validate(copy.deepcopy(good))
    assert grid.finetune_params(default, "rte")["model_selection"] == "last"
    assert grid.finetune_params(default, "rte")["epochs"] == 3
    mine = llconfig.validate({**copy.deepcopy(good), "finetune": {
        "preset": "stable", "learning_rate": 3e-5, "per_task": {"rte": {"epochs": 10}}}})
    assert grid.finetune_params(mine, "rte")["epochs"] == 10 and grid.finetune_params(mine, "mrpc")["epochs"] == 20
    assert grid.finetune_params(mine, "mrpc")["learning_rate"] == 3e-5
    flat = llconfig.validate({**copy.deepcopy(good), "finetune": {"preset": "stable", "epochs": 5}})
    assert grid.finetune_params(flat, "rte")["epochs"] == 5
    with pytest.raises(ConfigError, match="finetune.preset"):
        llconfig.validate({**copy.deepcopy(good), "finetune": {"preset": "fast"}})


def test_a_bad_control_names_the_key(good):
    bad = copy.deepcopy(good)
    bad["variants"]["tiny-dup"]["controls"] = ["compute", "bigger"]
    with pytest.raises(ConfigError) as err:
        llconfig.validate(bad)
    assert err.value.key == "variants.tiny-dup.controls[1]"
    clash = copy.deepcopy(good)
    clash["variants"]["tiny-dup"]["controls"] = ["frozen"]
    clash["variants"]["tiny.frozen"] = {"base": "tiny", "layers": "0-2"}
    with pytest.raises(ConfigError, match="tiny.frozen"):
        llconfig.validate(clash)
