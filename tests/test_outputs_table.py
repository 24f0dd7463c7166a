"""results/README.md lists every output of every rule: checked against the files Snakemake plans (its detailed
summary) for a config that runs every rule, and against the rule each comes from, so the table cannot drift."""

import re
import subprocess
import sys

import yaml
from helpers import REPO, make_tiny_bert

#: rows that are not one rule's declared outputs (logs, benchmarks, caches, optional side files)
UNPLANNED = ("results/logs/", "results/benchmarks/", "results/tensorboard/", "resources/.cache/")


def table() -> list[tuple[re.Pattern, set[str], str]]:
    """The README's rows: (the path as a regex, the rules named, the path as written)."""
    rows = []
    for line in (REPO / "results" / "README.md").read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\| `([^`]+)` \| (.+?) \| .+ \|$", line)
        if not m:
            continue
        path, rules = m.group(1).rstrip("/"), set(re.findall(r"`([a-z_]+)`", m.group(2)))
        regex = re.escape(path).replace(re.escape("..."), ".*")
        regex = re.sub(r"\\\{([a-z_]+(?:,[a-z_]+)+)\\\}", lambda g: "(" + g.group(1).replace(",", "|") + ")", regex)
        regex = re.sub(r"\\\{[a-z_]+\\\}", "[^/]+", regex)
        rows.append((re.compile(regex + "$"), rules, path))
    return rows


def test_every_planned_output_is_in_the_table_with_its_rule(tmp_path, tiny_glue):
    make_tiny_bert(tmp_path / "tiny-bert", layers=3)
    cfg = {"models": {"tiny": {"source": "./tiny-bert", "probe": {"head": "fit"}}},  # fit_head
           "variants": {"tiny-dup2": {"base": "tiny", "layers": "0-2,2",  # build_variant, finetune
                                      "controls": ["random"]}},  # build_random_control
           "sweeps": [{"base": "tiny", "kind": "remove_each", "layers": [1]},  # a probe-only variant
                      {"base": "tiny", "kind": "remove_by_influence", "k": [1]}],  # select_layers
           "probe": {"translators": {"enabled": True}},  # fit_translators
           "glue": {"source": "tsv", "dir": str(tiny_glue)}, "tasks": ["rte"], "seeds": [1],
           "hub": {"push": True}}  # push_variant
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--configfile",
                           "config.yaml", "--detailed-summary", "--cores", "1"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    planned = [line.split("\t")[:3:2] for line in proc.stdout.splitlines()[1:] if "\t" in line]
    rules_run = {rule for _, rule in planned}
    assert {"fit_head", "fit_translators", "build_variant", "build_random_control", "select_layers", "finetune",
            "push_variant", "runs_table", "report_glue"} <= rules_run
    rows = table()
    for path, rule in planned:
        matches = [(rx, rules) for rx, rules, _ in rows if rx.match(path)]
        assert matches, f"{path} (rule {rule}) is not in results/README.md"
        assert any(rule in rules for _, rules in matches), f"{path}: results/README.md does not name rule {rule}"
    for rx, _, written in rows:
        if not written.startswith(UNPLANNED):
            assert any(rx.match(path) for path, _ in planned), f"results/README.md lists {written}, which no rule makes"
