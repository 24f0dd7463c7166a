"""The workflow through a real SLURM cluster with the project's SLURM profile, and the pre-flight against it.

The tests marked ``slurm`` use a SLURM cluster that is already up (``sinfo`` lists a node); they never install or
start one. Where none answers they skip, saying how to start the single-node test cluster
(``tests/slurm/start_slurm.sh install`` and ``start``: Debian's packages, root). ``.ci/run`` does that and sets
``LAYERLENS_SLURM_TESTS=required``, so that there a missing cluster fails them instead. The runs use the shipped
profile with only what this cluster needs on top (``cluster_args``, ``cluster_env``): no ``--cores`` or
``--resources``. The profile itself, and the group jobs it makes of the shipped config, are checked without a
cluster.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from helpers import REPO, check_outputs, make_glue_tsv, make_tiny_bert, write_config

PROFILE = REPO / "profiles" / "slurm"
JOBCOMP = Path("/var/log/slurm/jobcomp.log")
REQUIRED = os.environ.get("LAYERLENS_SLURM_TESTS") == "required"
HOW = ("These tests never install or start SLURM. To run them, start the single-node test cluster (root, Debian): "
       "`bash tests/slurm/start_slurm.sh install && bash tests/slurm/start_slurm.sh start`, then "
       "`pytest tests/test_slurm.py`; stop it with `bash tests/slurm/start_slurm.sh stop` (.ci/run does all this)")


def why_no_cluster() -> str | None:
    if shutil.which("sinfo") is None:
        return "no SLURM here (`sinfo` is not on the PATH)"
    proc = subprocess.run(["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=60)
    if proc.returncode or not re.search(r"^(idle|mix|alloc)", proc.stdout, re.M):
        return f"no SLURM cluster answers here (sinfo: {(proc.stderr or proc.stdout).strip() or 'no node up'})"
    return None


@pytest.fixture(scope="module")
def slurm_node():
    """The running cluster's default partition and its largest node, as ``scontrol`` reports them."""
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="snakemake-executor-plugin-slurm not installed")
    reason = why_no_cluster()
    if reason:
        (pytest.fail if REQUIRED else pytest.skip)(f"{reason}. {HOW}")

    def show(*what):
        return subprocess.run(["scontrol", "show", *what], capture_output=True, text=True, check=True).stdout

    partition = next(p.rstrip("*") for p in subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True,
                                                             text=True, check=True).stdout.split() if "*" in p)
    nodes = [dict(re.findall(r"(\w+)=(\S+)", line)) for line in show("node", "-o").splitlines() if line.strip()]
    nodes = [n for n in nodes if partition in n.get("Partitions", "").split(",")]
    node = max(nodes, key=lambda n: int(n["RealMemory"]))
    return {"name": node["NodeName"], "cpus": int(node["CPUTot"]), "mem_mb": int(node["RealMemory"]),
            "gpus": "gpu" in node.get("Gres", ""), "partition": partition,
            "accounting": "accounting_storage/none" not in show("config")}


def cluster_args(node: dict) -> list[str]:
    """Command-line flags on top of profiles/slurm for this cluster, and only those.

    - no accounting database: poll with squeue, not sacct (the pre-flight stops the run otherwise);
    - start polling after 2 s instead of 40, and keep the SLURM logs of successful jobs, to check them.
    """
    status = [] if node["accounting"] else ["--slurm-status-command", "squeue"]
    return [*status, "--slurm-init-seconds-before-status-checks", "2", "--slurm-keep-successful-logs"]


def cluster_env(node: dict) -> dict:
    """No GPUs on the cluster: the one switch, LAYERLENS_GPUS=0."""
    return {**os.environ, **({} if node["gpus"] else {"LAYERLENS_GPUS": "0"})}


def smk_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--configfile", "config.yaml",
            "--workflow-profile", str(PROFILE), *args]


def check_cmd(*args) -> tuple[list[str], dict]:
    """`python -m layerlens.cluster check ...` as the README gives it (the package from this checkout)."""
    return [sys.executable, "-m", "layerlens.cluster", "check", *args], {"PYTHONPATH": str(REPO / "workflow")}


# --- the profile, without a cluster ------------------------------------------------------------------------------


LOCAL_RULES = {"download_model", "download_glue", "manifest", "all"}


def dry_run(workdir, *args, env=None):
    proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-n",
                           "--workflow-profile", str(PROFILE), *args], cwd=workdir, capture_output=True, text=True,
                          timeout=600, env={**os.environ, **(env or {})})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def test_the_gpu_rules_ask_for_one_gpu_unless_layerlens_gpus_is_0(tmp_path):
    """finetune, probe and output_change ask for a GPU on a real cluster; LAYERLENS_GPUS=0 is the CPU switch, and a
    command-line --set-resources (which replaces the profile's whole block) does not bring the GPU back."""
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="snakemake-executor-plugin-slurm not installed")

    def gpus(out):
        blocks = re.findall(r"^rule (\w+):\n((?:    .*\n)+)", out, flags=re.M)
        return {rule: int(m.group(1)) for rule, body in blocks if (m := re.search(r"\bgpu=(\d+)", body))}

    assert gpus(dry_run(tmp_path)) == {"finetune": 1, "probe": 1, "output_change": 1}
    assert set(gpus(dry_run(tmp_path, env={"LAYERLENS_GPUS": "0"})).values()) == {0}
    assert set(gpus(dry_run(tmp_path, "--set-resources", "finetune:mem_mb=100",
                            env={"LAYERLENS_GPUS": "0"})).values()) == {0}
    profile = yaml.safe_load((PROFILE / "profile.v9+.yaml").read_text())
    assert profile["executor"] == "slurm" and profile["slurm-requeue"] is True
    assert "slurm-status-command" not in profile  # sacct, the plugin's default, is right on real clusters
    for rule in ("download_model", "download_glue", "manifest"):
        assert rule not in profile["groups"] and rule not in profile["set-resources"]  # local rules: login node


def test_the_slurm_profile_groups_the_short_jobs_of_the_shipped_config(tmp_path):
    """`snakemake -n` with the profile on the shipped config (no cluster needed): every job of a grouped rule runs
    inside a group job, each group job holds at most its group's `group-components`, and every rule of the report
    stage is grouped. Counts come from the plan and the profile, not from the config's contents."""
    pytest.importorskip("snakemake_executor_plugin_slurm", reason="snakemake-executor-plugin-slurm not installed")
    out = dry_run(tmp_path)
    profile = yaml.safe_load((PROFILE / "profile.v9+.yaml").read_text())
    grouped, components = profile["groups"], profile["group-components"]
    report_rules = re.findall(r"^rule (\w+):", (REPO / "workflow" / "rules" / "report.smk").read_text(), flags=re.M)
    assert set(report_rules) <= {r for r, g in grouped.items() if g == "report"}, report_rules
    # top-level jobs start a line with "rule"; a group job's members are indented under "Group job <name>"
    single = [r for r in re.findall(r"^rule (\w+):", out, flags=re.M) if r not in LOCAL_RULES]
    assert single and not set(single) & set(grouped), single
    blocks = re.split(r"^\[.*?\] Group job (\w+) .*$", out, flags=re.M)[1:]
    members = {}
    for name, body in zip(blocks[::2], blocks[1::2]):
        body = re.split(r"^\S", body, flags=re.M)[0]  # up to the next top-level line
        rules = re.findall(r"^    rule (\w+):", body, flags=re.M)
        assert rules and {grouped[r] for r in rules} == {name} and len(rules) <= components[name], (name, rules)
        members.setdefault(name, []).extend(rules)
    for name, rules in members.items():  # as few group jobs as the components allow
        assert out.count(f"Group job {name} ") == -(-len(rules) // components[name]), (name, len(rules))
    assert set(members) == set(grouped.values())


def test_check_without_slurm_says_so_and_does_nothing_else(tmp_path):
    """Where no SLURM answers, `python -m layerlens.cluster check` says so, exits 2, and runs no Snakemake."""
    cmd, env = check_cmd()
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env, "PATH": str(tmp_path / "no-slurm-here")})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "no SLURM cluster answers here (`scontrol` is not on the PATH); nothing checked" in proc.stderr
    assert list(tmp_path.iterdir()) == []  # no Snakemake ran: no .snakemake folder


# --- on the cluster ------------------------------------------------------------------------------------------------


@pytest.mark.slurm
def test_preflight_stops_a_job_bigger_than_any_node_within_seconds(tmp_path, tiny_glue, slurm_node):
    """The shipped profile with finetune asking for more memory than the node has: the run stops before anything
    is submitted (before the downloads too), naming the rule, its request, the largest node and what to change."""
    write_config(tmp_path, tiny_glue)
    mem = slurm_node["mem_mb"] + 1000
    cmd = smk_cmd(*cluster_args(slurm_node), "--set-resources", f"finetune:mem_mb={mem}")
    started = time.monotonic()
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600, env=cluster_env(slurm_node))
    elapsed = time.monotonic() - started
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-4000:]
    assert "layerlens pre-flight: 1 problem with this SLURM run; nothing was submitted" in out, out[-4000:]
    assert f"rule finetune (8 jobs) asks for 2 CPUs, {mem} MB" in out
    assert (f"in partition '{slurm_node['partition']}' (the default), no node has {mem} MB for jobs (largest node: "
            f"{slurm_node['name']} ({slurm_node['cpus']} CPUs, {slurm_node['mem_mb']} MB") in out
    assert "Change: lower `mem_mb` of finetune (`set-resources: finetune: mem_mb: ...`)" in out
    assert "has been submitted with SLURM jobid" not in out and not (tmp_path / "resources").exists()
    assert elapsed < 30, f"the pre-flight took {elapsed:.0f} s"
    print(f"\npre-flight stopped the run after {elapsed:.1f} s")


@pytest.mark.slurm
def test_check_names_gpus_and_status_command_then_passes_with_the_switches(tmp_path, tiny_glue, slurm_node):
    """`python -m layerlens.cluster check` with the shipped profile: on a cluster without GPUs or accounting it
    names the switch for each; with them, every job fits, and the group jobs ask for their largest member."""
    if slurm_node["gpus"] and slurm_node["accounting"]:
        pytest.skip("this cluster has GPUs and accounting: nothing for the switches to fix")
    write_config(tmp_path, tiny_glue)
    cmd, env = check_cmd("--configfile", "config.yaml")
    bare = {k: v for k, v in os.environ.items() if k != "LAYERLENS_GPUS"}
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600, env={**bare, **env})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-4000:]
    if not slurm_node["gpus"]:
        assert "rule finetune (8 jobs) asks for 2 CPUs, 16000 MB, 1 GPU, 240 min" in out
        assert "it has no GPUs" in out and "run with LAYERLENS_GPUS=0" in out
    if not slurm_node["accounting"]:
        assert "no accounting database" in out and "add `--slurm-status-command squeue`" in out

    cmd, env = check_cmd("--configfile", "config.yaml", *cluster_args(slurm_node))
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**cluster_env(slurm_node), **env})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    assert "the 19 SLURM jobs of this run fit their partitions" in out
    part = slurm_node["partition"]
    # prep: build_variant (8000 MB), 2 x tokenize (4000 MB), probe_sentences (2000 MB), 1 thread each, run one after
    # another: the largest member's memory and CPUs, the sum of the runtimes (20 + 30 + 30 + 30 min)
    assert f"| group prep | 1 | {part} | 1 | 8000 | 0 | 110 | 1 of" in out
    assert f"| rule finetune | 8 | {part} | 2 | 16000 | 0 | 240 |" in out
    assert not (tmp_path / "resources").exists()  # nothing ran

    # the fine-tuning array with a limit on --jobs: the plugin would never submit the jobs it holds back
    cmd, env = check_cmd("--configfile", "config.yaml", *cluster_args(slurm_node), "--jobs", "10")
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600,
                          env={**cluster_env(slurm_node), **env})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "job arrays for finetune:" in out and "`--jobs unlimited`" in out, out[-3000:]


def member_events(log: str) -> list[tuple[str, str]]:
    """("start"|"end", rule) of each member of a group job, in the order its SLURM log shows them: the Snakemake
    that runs one member inside the allocation logs "localrule X:" when it starts it and "Finished jobid: 0 (Rule:
    X)" followed by "1 of 1 steps" when it is done (the group's own Snakemake says "rule X:" and "N of M steps")."""
    events = [(m.start(), "start", m.group(1)) for m in re.finditer(r"^localrule (\w+):", log, re.M)]
    events += [(m.start(), "end", m.group(1))
               for m in re.finditer(r"^Finished jobid: 0 \(Rule: (\w+)\)\n1 of 1 steps", log, re.M)]
    return [(kind, rule) for _, kind, rule in sorted(events)]


@pytest.mark.slurm
@pytest.mark.e2e
def test_workflow_through_slurm(tmp_path, tiny_glue, slurm_node):
    cfg = write_config(tmp_path, tiny_glue)
    cmd = smk_cmd(*cluster_args(slurm_node))
    t0 = time.monotonic()
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=1800, env=cluster_env(slurm_node))
    elapsed = time.monotonic() - t0
    log = proc.stdout + proc.stderr
    (tmp_path / "snakemake-slurm.log").write_text(log)
    assert proc.returncode == 0, f"{' '.join(cmd)}\n{log[-6000:]}"
    assert "layerlens pre-flight: the 19 SLURM jobs of this run fit their partitions" in log

    # every job but the local rules went through sbatch: the short ones in two group jobs, the 8 fine-tuning cells
    # as one job array (slurm-array-jobs: finetune), the probes and output changes one job each
    submitted = dict(re.findall(r"has been submitted with SLURM jobid (\d+) \(log: (\S+?)\)\.?\n", log))
    logdirs = sorted({Path(p).relative_to(tmp_path / ".snakemake" / "slurm_logs").parts[0]
                      for p in submitted.values()})
    # a group job's log folder is named after its members (a long name is cut short: Snakemake's job name)
    report_dir = ("group_report_probe_family_figure_report_expected_max_report_glue_report_output_change_"
                  "report_probe_report_similarity_report_variants_runs_table_similarity_figure")
    shown = logdirs[1].removesuffix("...")
    assert len(logdirs) == 4 and report_dir.startswith(shown) and len(shown) > len("group_report_"), logdirs
    assert [logdirs[0], *logdirs[2:]] == ["group_prep_build_variant_probe_sentences_tokenize", "rule_output_change",
                                          "rule_probe"]
    # 1 prep group (1 build_variant + 2 tokenize + probe_sentences) + 5 probes (base, the fine-tuned variant,
    # 3 probe-only variants) + 4 output changes + 1 report group (report_probe, probe_family_figure,
    # report_output_change, report_glue, report_expected_max, report_similarity, similarity_figure,
    # report_variants, runs_table); 31 SLURM jobs without the groups and the array
    assert len(submitted) == 11, submitted
    arrays = re.findall(r"Submitted array job with Snakemake IDs ([\d,]+) and SLURM job ID (\d+)\. The individual "
                        r"task IDs are 1-(\d+)\.", log)
    assert [(len(ids.split(",")), int(n)) for ids, _, n in arrays] == [(8, 8)], arrays
    array_logs = [tmp_path / ".snakemake" / "slurm_logs" / "rule_finetune" / f"{arrays[0][1]}_{i}.log"
                  for i in range(1, 9)]
    for path in [*map(Path, submitted.values()), *array_logs]:
        assert path.is_file() and "Finished jobid" in path.read_text(), path

    # a group job runs its members one after another, and asks for its largest member (1 CPU, 8000 MB for prep),
    # not for their sum (4 CPUs, 18000 MB)
    members = {"group_prep": 4, "group_report": 9}
    for path in submitted.values():
        if "/group_" in path:
            events = member_events(Path(path).read_text())
            pairs = list(zip(events[::2], events[1::2]))
            n = members[next(g for g in members if f"/{g}_" in path)]
            assert len(events) == 2 * n and all(a[0] == "start" and b == ("end", a[1]) for a, b in pairs), events
    if JOBCOMP.is_file():  # a cluster started by start_slurm.sh records every finished job (array tasks by their
        # own job ids)
        done = {m[0]: (m[1], m[3]) for m in re.findall(r"JobId=(\d+) .*?JobState=(\S+) .*?WorkDir=(\S+) .*?Tres=(\S+)",
                                                        JOBCOMP.read_text()) if m[2] == str(tmp_path)}
        assert len(done) == 19 and all(state == "COMPLETED" for state, _ in done.values()), done
        prep = next(j for j, p in submitted.items() if "group_prep" in p)
        assert re.match(r"cpu=1,mem=8000M", done[prep][1]), done[prep]
    print(f"\nSLURM end-to-end run: {elapsed:.0f} s, {len(submitted)} SLURM jobs and an array of 8")

    check_outputs(tmp_path, cfg, n_eval={"rte": 24, "mrpc": 24})


# --- preemption: a requeued fine-tuning job -------------------------------------------------------------------------


CELL = "results/finetune/tiny/rte/seed3"


def requeue_setup(workdir: Path) -> None:
    """One fine-tuning cell of ~200 steps with a checkpoint every 20 (as tests/test_resilience.py)."""
    make_tiny_bert(workdir / "tiny-bert", layers=2, hidden=64)
    make_glue_tsv(workdir / "glue", tasks=("rte",), n_train=400, n_dev=40)
    cfg = {"models": {"tiny": {"source": "./tiny-bert"}}, "glue": {"source": "tsv", "dir": "glue"},
           "tasks": ["rte"], "seeds": [3], "probe": {"sentences": 20, "bootstrap": 0},
           "finetune": {"batch_size": 4, "epochs": 2, "max_length": 64, "learning_rate": 1e-3, "logging_steps": 10,
                        "checkpoint_steps": 20}}
    (workdir / "config.yaml").write_text(yaml.safe_dump(cfg))


def squeue_state(jobid: str) -> str:
    return subprocess.run(["squeue", "-h", "-j", jobid, "-o", "%T"], capture_output=True, text=True).stdout.strip()


@pytest.mark.slurm
@pytest.mark.e2e
def test_a_requeued_finetune_job_resumes_from_its_checkpoint(tmp_path, slurm_node):
    """`scontrol requeue` of the running fine-tuning job after its first checkpoint: SLURM stops it and starts it
    again, Snakemake keeps waiting, the job resumes from the checkpoint and ends with the metrics of an
    uninterrupted run of the same cell (run here without SLURM)."""
    ref, run = tmp_path / "ref", tmp_path / "run"
    for d in (ref, run):
        d.mkdir()
        requeue_setup(d)
    cmd = smk_cmd(*cluster_args(slurm_node), f"{CELL}/metrics.json")
    proc = subprocess.Popen(cmd, cwd=run, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=cluster_env(slurm_node))
    deadline, requeued, jobid, log = time.time() + 900, False, None, []
    import threading

    reader = threading.Thread(target=lambda: log.extend(proc.stdout), daemon=True)
    reader.start()
    while time.time() < deadline and proc.poll() is None:
        if jobid is None:
            m = re.search(r"has been submitted with SLURM jobid (\d+) \(log: \S*rule_finetune", "".join(log))
            jobid = m.group(1) if m else None
        elif list((run / CELL / "checkpoints").glob("*/checkpoint-*/trainer_state.json")):
            assert squeue_state(jobid) == "RUNNING" and not (run / CELL / "metrics.json").exists()
            subprocess.run(["scontrol", "requeue", jobid], check=True, capture_output=True, text=True)
            requeued = True
            break
        time.sleep(0.2)
    assert requeued, "the fine-tuning job finished before its first checkpoint could be requeued"
    # SLURM holds a requeued job for about 2 minutes (BeginTime) before it may start again; release it now, as an
    # administrator can: what is tested is the restart, not the wait
    while squeue_state(jobid) not in ("PENDING", ""):
        time.sleep(0.5)
    subprocess.run(["scontrol", "update", f"JobId={jobid}", "StartTime=now"], check=True, capture_output=True)
    proc.wait(timeout=900)
    reader.join(timeout=10)
    out = "".join(log)
    assert proc.returncode == 0, out[-6000:]
    if JOBCOMP.is_file():  # the job ran twice under one SLURM job id: requeued, then completed
        states = re.findall(rf"JobId={jobid} .*?JobState=(\S+)", JOBCOMP.read_text())
        assert states[-1] == "COMPLETED" and len(states) >= 2, states
    assert "layerlens: resuming from" in (run / "results/logs/finetune/tiny/rte/seed3.log").read_text()

    local = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--configfile",
                            "config.yaml", "--cores", "2", f"{CELL}/metrics.json"], cwd=ref, capture_output=True,
                           text=True, timeout=900, env=cluster_env(slurm_node))
    assert local.returncode == 0, local.stderr[-3000:]
    a = json.loads((ref / CELL / "metrics.json").read_text())
    b = json.loads((run / CELL / "metrics.json").read_text())
    assert b["resumed_from"] and a["resumed_from"] is None
    for key in ("accuracy", "main_score", "train_loss", "loss_history", "global_steps"):
        assert a[key] == b[key], key
    assert (ref / CELL / "predictions.tsv").read_bytes() == (run / CELL / "predictions.tsv").read_bytes()
    assert not (run / CELL / "checkpoints").exists()  # cleaned up once finished
