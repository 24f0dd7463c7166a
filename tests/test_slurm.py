"""The end-to-end workflow through a real single-node SLURM cluster and the project's SLURM profile.

tests/slurm/start_slurm.sh starts munged, slurmctld and slurmd from Debian's packages (installing them when
root with apt); where that is impossible the test skips and says why. The run submits through
``--workflow-profile profiles/slurm`` with only what this cluster needs on top (see ``cluster_args``), and the
outputs are checked exactly as after the local run (helpers.check_outputs). The profile itself, and the
group jobs it makes of the shipped config, are checked without a cluster.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from helpers import REPO, check_outputs, write_config

START = REPO / "tests" / "slurm" / "start_slurm.sh"
PROFILE = REPO / "profiles" / "slurm"
JOBCOMP = Path("/var/log/slurm/jobcomp.log")


@pytest.fixture(scope="module")
def slurm_node():
    """A running single-node cluster: {"cpus": ..., "mem_mb": ...} of its node. Stopped afterwards."""
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="snakemake-executor-plugin-slurm not installed")
    try:
        proc = subprocess.run(["bash", str(START), "start"], capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        pytest.skip("SLURM could not be started here: tests/slurm/start_slurm.sh start took over 10 min")
    if proc.returncode == 2:
        pytest.skip(proc.stderr.strip().splitlines()[-1])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    try:
        out = subprocess.run(["scontrol", "show", "node", "-o"], capture_output=True, text=True, check=True).stdout
        nodes = [dict(re.findall(r"(\w+)=(\S+)", line)) for line in out.splitlines() if line.strip()]
        yield {"cpus": min(int(n["CPUTot"]) for n in nodes), "mem_mb": min(int(n["RealMemory"]) for n in nodes)}
    finally:
        subprocess.run(["bash", str(START), "stop"], capture_output=True, text=True, timeout=120)


def profile_set_resources() -> dict:
    profile = yaml.safe_load((PROFILE / "profile.v9+.yaml").read_text())
    return profile["set-resources"]


def cluster_args(node: dict) -> list[str]:
    """Command-line flags on top of profiles/slurm for this test cluster, and only those.

    - no accounting database: poll with squeue, not sacct (else the run waits forever), and start polling
      after 2 s instead of 40;
    - no GPUs: the profile's per-rule requests with ``gpu: 0``. This has to be ``--set-resources``: that is
      what the job step inside each SLURM job sees too (``--resources gpu=0`` would only cap the sbatch call,
      and the job step's srun would still ask for ``--gpus=1``). A command-line ``--set-resources`` replaces
      the profile's whole block, so the block is taken from the profile with ``gpu`` set to 0 (and see below);
    - its size: one thread per job (the tiny models need no more), so two jobs share a 2-CPU node, and at most
      the node's memory per CPU per job (the profile's requests are sized for BERT-base);
      ``--cores`` and ``--resources mem_mb`` cap every job and every group job (which asks for the sum over
      its members) to the node, else a request the node cannot meet waits in the queue forever (reason
      PartitionConfig);
    - keep the SLURM logs of successful jobs, to check them.
    """
    share = node["mem_mb"] // node["cpus"]
    set_resources = []
    for rule, res in profile_set_resources().items():
        res = {**res, "gpu": 0} if "gpu" in res else res
        res = {**res, "mem_mb": min(res["mem_mb"], share)} if "mem_mb" in res else res
        set_resources += [f"{rule}:{key}={value}" for key, value in res.items()]
    return ["--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2",
            "--set-resources", *set_resources, "--max-threads", "1",
            "--cores", str(node["cpus"]), "--resources", f"mem_mb={node['mem_mb']}",
            "--slurm-keep-successful-logs"]


def test_the_slurm_profile_asks_for_a_gpu_for_finetune():
    """What the test takes away (no GPUs here) is in the profile a real cluster gets."""
    res = profile_set_resources()
    assert res["finetune"]["gpu"] == 1
    profile = yaml.safe_load((PROFILE / "profile.v9+.yaml").read_text())
    assert profile["executor"] == "slurm"
    assert "slurm-status-command" not in profile  # sacct, the plugin's default, is right on real clusters
    for rule in ("download_model", "download_glue", "manifest"):
        assert rule not in profile["groups"] and rule not in res  # local rules: login node


LOCAL_RULES = {"download_model", "download_glue", "manifest", "all"}


def test_the_slurm_profile_groups_the_short_jobs_of_the_shipped_config(tmp_path):
    """`snakemake -n` with the profile: 58 SLURM jobs for the shipped config instead of 67 (no cluster needed)."""
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="snakemake-executor-plugin-slurm not installed")
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-n",
                           "--workflow-profile", str(PROFILE)], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    groups = re.findall(r"^\[.*?\] Group job (\w+)", proc.stdout, flags=re.M)
    # top-level jobs (group members are indented); the local rules run in the Snakemake process itself
    single = [r for r in re.findall(r"^rule (\w+):", proc.stdout, flags=re.M) if r not in LOCAL_RULES]
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())
    n_models = len(cfg["models"]) + len(cfg["variants"])
    assert sorted(set(single)) == ["finetune", "output_change", "probe"]
    n_variants = len(cfg["variants"])
    assert len(single) == n_models * len(cfg["tasks"]) * len(cfg["seeds"]) + n_models + n_variants == 55
    # prep: 3 layer maps + 4 tokenizations + the probe sentences, at most 4 per group job; report: 7 jobs
    assert sorted(groups) == ["prep", "prep", "report"]
    assert len(single) + len(groups) == 58


@pytest.mark.slurm
@pytest.mark.e2e
def test_workflow_through_slurm(tmp_path, tiny_glue, slurm_node):
    cfg = write_config(tmp_path, tiny_glue)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--configfile", "config.yaml",
           "--workflow-profile", str(PROFILE), *cluster_args(slurm_node)]
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=1500)
    elapsed = time.monotonic() - t0
    log = proc.stdout + proc.stderr
    (tmp_path / "snakemake-slurm.log").write_text(log)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{log[-6000:]}"

    # every job but the local rules went through sbatch; the short ones in two group jobs
    submitted = dict(re.findall(r"has been submitted with SLURM jobid (\d+) \(log: (\S+?)\)\.?\n", log))
    logdirs = sorted({Path(p).relative_to(tmp_path / ".snakemake" / "slurm_logs").parts[0]
                      for p in submitted.values()})
    assert logdirs == ["group_prep_build_variant_probe_sentences_tokenize",
                       "group_report_probe_family_figure_report_glue_report_output_change_report_probe_"
                       "report_similarity_report_variants_similarity_figure",
                       "rule_finetune", "rule_output_change", "rule_probe"]
    # 1 prep group (1 build_variant + 2 tokenize + probe_sentences) + 5 probes (base, the fine-tuned variant,
    # 3 probe-only variants) + 4 output changes + 8 finetunes + 1 report group (report_probe,
    # probe_family_figure, report_output_change, report_glue, report_similarity, similarity_figure,
    # report_variants); 29 jobs without the groups
    assert len(submitted) == 19, submitted
    for jobid, path in submitted.items():
        assert Path(path).is_file() and "Finished jobid" in Path(path).read_text(), path
    if JOBCOMP.is_file():  # a cluster started by start_slurm.sh records every finished job
        done = {m[0]: m[1] for m in re.findall(r"JobId=(\d+) .*?JobState=(\S+) .*?WorkDir=(\S+)",
                                                JOBCOMP.read_text()) if m[2] == str(tmp_path)}
        assert all(done.get(j) == "COMPLETED" for j in submitted), (submitted, done)
    print(f"\nSLURM end-to-end run: {elapsed:.0f} s, {len(submitted)} SLURM jobs")

    check_outputs(tmp_path, cfg, n_eval={"rte": 24, "mrpc": 24})
