"""Preemption and faults at the workflow level: kill -9 and resume, --keep-going, reruns, hygiene."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from helpers import REPO, make_glue_tsv, make_tiny_bert

pytestmark = pytest.mark.e2e

CELL = "results/finetune/tiny/rte/seed3"


def smk(workdir, *args, timeout=900, env=None):
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--configfile", "config.yaml",
           "--cores", "1", *args]
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def setup(workdir, tasks=("rte",), n_train=400, **finetune):
    make_tiny_bert(workdir / "tiny-bert", layers=2, hidden=64)
    make_glue_tsv(workdir / "glue", tasks=tasks, n_train=n_train, n_dev=40)
    cfg = {"models": {"tiny": {"source": "./tiny-bert"}}, "glue": {"source": "tsv", "dir": "glue"},
           "tasks": list(tasks), "seeds": [3], "probe": {"sentences": 20, "bootstrap": 0},
           "finetune": {"batch_size": 4, "epochs": 2, "max_length": 64, "learning_rate": 1e-3, "logging_steps": 10,
                        **finetune}}
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))
    return cfg


def complete_json(path):
    try:
        json.loads(path.read_text())
        return True
    except (OSError, ValueError):
        return False


def job_pids(workdir, script="finetune.py"):
    """Processes running a rule's script in ``workdir`` (Linux /proc)."""
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            if script in cmd and ".snakemake/scripts" in cmd and os.readlink(proc / "cwd") == str(workdir):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs Linux /proc to find the job process")
@pytest.mark.parametrize("checkpointing", [
    # the path users get by default: a checkpoint by time (checkpoint_minutes, default 30), none by steps; a
    # fraction of a minute here, so the first one comes within the run
    {"checkpoint_minutes": 0.01, "checkpoint_steps": None},
    {"checkpoint_minutes": None, "checkpoint_steps": 20},
    # held-out model selection: epoch 1 (270 steps) is scored and its weights kept before the checkpoint at step 300;
    # the resumed run must know what it had chosen. 240 steps remain after that checkpoint: with 80 (400 examples),
    # the job could finish between the checkpoint and the kill on a fast machine (seen once in CI)
    {"checkpoint_minutes": None, "checkpoint_steps": 300, "model_selection": "holdout", "holdout_fraction": 0.1,
     "n_train": 1200},
], ids=["by-time-default-path", "by-steps", "holdout-selection"])
def test_kill_9_mid_finetune_then_rerun_gives_identical_metrics(tmp_path, checkpointing):
    ref, run = tmp_path / "ref", tmp_path / "run"
    for d in (ref, run):
        d.mkdir()
        setup(d, **checkpointing)
    assert smk(ref, f"{CELL}/metrics.json").returncode == 0

    proc = subprocess.Popen([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--configfile",
                             "config.yaml", "--cores", "1", f"{CELL}/metrics.json"], cwd=run,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 600
    killed = False
    while time.time() < deadline and proc.poll() is None:
        state = next((run / CELL / "checkpoints").glob("*/checkpoint-*/trainer_state.json"), None)
        if state is not None and complete_json(state):  # written last in a checkpoint: kill at once, mid-run
            for pid in job_pids(run):
                os.kill(pid, signal.SIGKILL)
                killed = True
            break
        time.sleep(0.05)
    out, _ = proc.communicate(timeout=600)
    assert killed, "the fine-tune job finished before a checkpoint could be interrupted"
    assert proc.returncode != 0, out[-2000:]
    assert not (run / CELL / "metrics.json").exists()  # nothing Snakemake could take for finished
    assert list((run / CELL / "checkpoints").glob("*/checkpoint-*"))

    again = smk(run, f"{CELL}/metrics.json")
    assert again.returncode == 0, again.stderr[-3000:]
    log = (run / "results/logs/finetune/tiny/rte/seed3.log").read_text()
    assert "layerlens: resuming from" in log
    a = json.loads((ref / CELL / "metrics.json").read_text())
    b = json.loads((run / CELL / "metrics.json").read_text())
    assert b["resumed_from"] and a["resumed_from"] is None
    for key in ("accuracy", "main_score", "train_loss", "loss_history", "global_steps", "selection"):
        assert a.get(key) == b.get(key), key
    if "model_selection" in checkpointing:
        assert [h["epoch"] for h in b["selection"]["holdout_scores"]] == [1, 2]
    assert (ref / CELL / "predictions.tsv").read_bytes() == (run / CELL / "predictions.tsv").read_bytes()
    assert not (run / CELL / "checkpoints").exists()  # cleaned up once finished
    for f in (run / "results").rglob("*"):  # and no pickle anywhere
        assert f.suffix not in (".bin", ".pt", ".pth", ".pkl"), f


def test_failed_cell_keep_going_and_reruns(tmp_path):
    setup(tmp_path, tasks=("rte", "mrpc"), n_train=40, epochs=1)
    cells = {t: tmp_path / f"results/finetune/tiny/{t}/seed3/metrics.json" for t in ("rte", "mrpc")}
    targets = [str(p.relative_to(tmp_path)) for p in cells.values()]
    assert smk(tmp_path, *targets).returncode == 0
    before = {t: p.read_bytes() for t, p in cells.items()}

    # a finished workflow does nothing; logging / checkpoint settings change nothing either
    assert "Nothing to be done" in smk(tmp_path, "-n", *targets).stdout
    cfg = yaml.safe_load((tmp_path / "config.yaml").read_text())
    cfg["finetune"].update(checkpoint_minutes=5, logging_steps=7)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    assert "Nothing to be done" in smk(tmp_path, "-n", *targets).stdout

    # one task's hyperparameters change: only that task's cells rerun
    cfg["finetune"]["per_task"] = {"mrpc": {"learning_rate": 5e-4}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    planned = [line.split("output:", 1)[1] for line in smk(tmp_path, "-n", *targets).stdout.splitlines()
               if line.strip().startswith("output:")]
    assert len(planned) == 1 and "results/finetune/tiny/mrpc/seed3/metrics.json" in planned[0]

    # ... and that rerun fails (its data was tampered with): --keep-going finishes the rest, nothing else is touched
    cfg["finetune"]["per_task"]["rte"] = {"learning_rate": 5e-4}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    arrow = next((tmp_path / "resources/tokenized/tiny/mrpc-len64/train").glob("*.arrow"))
    arrow.write_bytes(arrow.read_bytes()[:-10] + b"corrupted!")
    res = smk(tmp_path, "--keep-going", *targets)
    assert res.returncode != 0
    assert "sha256 differs from the manifest" in (tmp_path / "results/logs/finetune/tiny/mrpc/seed3.log").read_text()
    assert cells["rte"].exists() and cells["rte"].read_bytes() != before["rte"]  # reran with the new rate
    assert not cells["mrpc"].exists()  # failed: no output that could pass for finished
    assert not list(cells["mrpc"].parent.glob("*.tsv"))


def test_nothing_is_written_outside_results_and_resources(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    setup(work, n_train=24, epochs=1)
    res = smk(work, env={"HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache")})
    assert res.returncode == 0, res.stderr[-3000:]
    assert sorted(p.name for p in work.iterdir()) == [".snakemake", "config.yaml", "glue", "resources", "results",
                                                     "tiny-bert"]
    # only Snakemake's own source cache (the engine's, not the pipeline's) may appear in the home folder
    written = [p for p in home.rglob("*") if p.is_file() and ".cache/snakemake" not in str(p)]
    assert written == [], written
    for f in list((work / "results").rglob("*")) + list((work / "resources").rglob("*")):
        assert f.suffix not in (".bin", ".pt", ".pth", ".pkl", ".pickle"), f
