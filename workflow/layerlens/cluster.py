"""Pre-flight against a SLURM cluster: will every job of the planned run fit a node of its partition?

A SLURM job that asks for more than any node of its partition has either fails at ``sbatch`` or, for CPUs, waits
in the queue for ever (reason ``PartitionConfig``) while Snakemake waits with it, silently. This module compares,
before anything is submitted, what every rule and every group job of the planned DAG will ask ``sbatch`` for with
what the partitions' nodes have, and names what to change.

- **What the jobs ask for** comes from Snakemake itself: the jobs of ``workflow.dag`` that need to run, their
  resources after the profile's ``default-resources`` / ``set-resources`` / ``set-threads``, and the group jobs with
  the resources Snakemake computes for them (``GroupJob.resources``), turned into ``sbatch`` options by the SLURM
  plugin's own functions (``get_cpu_setting``, ``set_gres_string``).
- **What the cluster has** comes from ``scontrol show node`` / ``show partition`` / ``show config``: each node's
  CPUs, memory for jobs and GPUs, each partition's time limit and per-node caps, the default partition, and whether
  there is an accounting database (without one, job states come only from ``squeue``).

Two ways in:

- every SLURM run: the Snakefile's ``onstart:`` handler calls :func:`preflight`. Snakemake runs it in the main
  process once the DAG is built and before the scheduler submits anything; jobs never run it (their Snakemake
  runs with ``--no-hooks``), and for any executor but ``slurm`` it returns at once.
- ``python -m layerlens.cluster check [snakemake options]``: the same check from the login node, without
  submitting anything (it runs Snakemake with ``LAYERLENS_PREFLIGHT=only``: the check, then exit).

``LAYERLENS_PREFLIGHT=off`` skips it.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .errors import LayerLensError

ENV = "LAYERLENS_PREFLIGHT"
REPO = Path(__file__).resolve().parents[2]


class NoSlurm(Exception):
    """No SLURM cluster answers from here; the message says why."""


def gpus_per_job() -> int:
    """GPUs per job of finetune, probe and output_change: ``LAYERLENS_GPUS``, 1 unless set (0: a cluster or machine
    without GPUs). Read by the rules, not by a profile, so that a command-line ``--set-resources`` (which replaces
    the profile's whole block) cannot bring the GPU request back; SLURM jobs see the same variable (sbatch
    exports the environment)."""
    value = os.environ.get("LAYERLENS_GPUS", "1")
    if not value.isdigit():
        raise LayerLensError(f"LAYERLENS_GPUS={value!r}: give the GPUs per GPU job as a whole number (1, or 0 on a "
                             "cluster without GPUs)")
    return int(value)


# --- what the cluster has ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    name: str
    cpus: int
    mem_mb: int  # RealMemory less MemSpecLimit: what jobs may ask for
    gpus: dict[str, int]  # GPU model ("" when the node does not name one) -> count
    partitions: tuple[str, ...]

    @property
    def n_gpus(self) -> int:
        return sum(self.gpus.values())

    def describe(self) -> str:
        gpus = ", ".join(f"{n}x {m}" if m else f"{n} GPU{'s' * (n > 1)}" for m, n in self.gpus.items() if n)
        return f"{self.name} ({self.cpus} CPUs, {self.mem_mb} MB, {gpus or 'no GPU'})"


@dataclass(frozen=True)
class Partition:
    name: str
    default: bool
    max_time_min: int | None  # None: no limit
    max_cpus_per_node: int | None
    max_mem_per_node: int | None
    nodes: tuple[Node, ...] = ()


@dataclass(frozen=True)
class Cluster:
    partitions: dict[str, Partition]
    accounting: str  # AccountingStorageType, e.g. accounting_storage/none
    min_job_age_s: int | None

    @property
    def default_partition(self) -> Partition | None:
        return next((p for p in self.partitions.values() if p.default), None)

    @property
    def has_accounting(self) -> bool:
        return not self.accounting.endswith("/none")


def _fields(line: str) -> dict[str, str]:
    """``key=value`` pairs of one line of ``scontrol show ... -o`` (a value runs to the next space)."""
    return dict(re.findall(r"(?:^|\s)(\w+)=(\S*)", line))


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def parse_gres(gres: str) -> dict[str, int]:
    """GPUs in a node's ``Gres=``: ``gpu:a100:4(S:0-1),gpu:2`` -> {"a100": 4, "": 2}."""
    gpus: dict[str, int] = {}
    for model, count in re.findall(r"(?:^|,)gpu(?::([A-Za-z0-9_.-]+?))?:(\d+)", gres or ""):
        gpus[model] = gpus.get(model, 0) + int(count)
    return gpus


def parse_nodes(text: str) -> list[Node]:
    nodes = []
    for line in text.splitlines():
        f = _fields(line)
        if "NodeName" not in f:
            continue
        cpus = _int_or_none(f.get("CPUEfctv")) or _int_or_none(f.get("CPUTot")) or 0
        mem = (_int_or_none(f.get("RealMemory")) or 0) - (_int_or_none(f.get("MemSpecLimit")) or 0)
        parts = tuple(p for p in f.get("Partitions", "").split(",") if p)
        nodes.append(Node(f["NodeName"], cpus, mem, parse_gres(f.get("Gres", "")), parts))
    return nodes


def _minutes(value: str | None) -> int | None:
    if not value or value.upper() in ("UNLIMITED", "INFINITE", "NONE"):
        return None
    from snakemake_executor_plugin_slurm.utils import parse_time_to_minutes

    return parse_time_to_minutes(value)


def parse_partitions(text: str, nodes: list[Node]) -> dict[str, Partition]:
    parts = {}
    for line in text.splitlines():
        f = _fields(line)
        if "PartitionName" not in f:
            continue
        name = f["PartitionName"]
        parts[name] = Partition(
            name=name, default=f.get("Default") == "YES", max_time_min=_minutes(f.get("MaxTime")),
            max_cpus_per_node=_int_or_none(f.get("MaxCPUsPerNode")),
            max_mem_per_node=_int_or_none(f.get("MaxMemPerNode")),
            nodes=tuple(n for n in nodes if name in n.partitions))
    return parts


def _scontrol(*args: str) -> str:
    exe = shutil.which("scontrol")
    if exe is None:
        raise NoSlurm("`scontrol` is not on the PATH")
    try:
        proc = subprocess.run([exe, *args], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        raise NoSlurm(f"`scontrol {' '.join(args)}` did not answer within 60 s") from None
    if proc.returncode:
        raise NoSlurm(f"`scontrol {' '.join(args)}` failed: {(proc.stderr or proc.stdout).strip()}")
    return proc.stdout


def read_cluster() -> Cluster:
    """The cluster as ``scontrol`` reports it; :class:`NoSlurm` where none answers."""
    config = _scontrol("show", "config")
    nodes = parse_nodes(_scontrol("show", "node", "-o"))
    partitions = parse_partitions(_scontrol("show", "partition", "-o"), nodes)
    accounting = re.search(r"^AccountingStorageType\s*=\s*(\S+)", config, re.M)
    age = re.search(r"^MinJobAge\s*=\s*(\d+)", config, re.M)
    return Cluster(partitions, accounting.group(1) if accounting else "", int(age.group(1)) if age else None)


# --- what the jobs ask for -----------------------------------------------------------------------------------


@dataclass
class Request:
    """One kind of SLURM job of the run, as the plugin will submit it."""

    kind: str  # "rule finetune" or "group prep"
    rules: tuple[str, ...]  # the rule, or a group's member rules
    partition: str | None  # None: the cluster's default partition
    cpus: int  # per node
    mem_mb: int | None  # per node
    gpus: int
    gpu_model: str | None
    runtime_min: int | None
    n_jobs: int = 1
    members: dict[str, dict] = field(default_factory=dict)  # a group's members: rule -> its own request

    def key(self):
        return (self.kind, self.partition, self.cpus, self.mem_mb, self.gpus, self.gpu_model, self.runtime_min)

    def describe(self) -> str:
        gpu = f", {self.gpus} GPU{'s' * (self.gpus > 1)}" + (f" ({self.gpu_model})" if self.gpu_model else "") \
            if self.gpus else ", no GPU"
        mem = f"{self.mem_mb} MB" if self.mem_mb is not None else "no memory request"
        time = f", {self.runtime_min} min" if self.runtime_min is not None else ""
        return f"{self.cpus} CPU{'s' * (self.cpus != 1)}, {mem}{gpu}{time}"


def _gpu_request(unit) -> tuple[int, str | None]:
    """GPUs per node from the plugin's own GRES/GPU options (``--gpus=[model:]N`` or ``--gres=gpu[:model]:N``)."""
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    flags = set_gres_string(unit)
    count, model = 0, None
    m = re.search(r"--gpus=(?:([^:\s]+):)?(\d+)", flags)
    if m:
        count, model = int(m.group(2)), m.group(1)
    m = re.search(r"--gres=gpu(?::([A-Za-z0-9_.]+?))?(?::(\d+))?(?:\s|$)", flags)
    if m:
        count, model = count + int(m.group(2) or 1), model or m.group(1)
    return count, model


def request_of(unit, kind: str, rules: tuple[str, ...]) -> Request:
    """What the SLURM plugin will ask ``sbatch`` for to run ``unit`` (a job or a group job)."""
    from snakemake_executor_plugin_slurm_jobstep import get_cpu_setting

    res = unit.resources
    gpus, model = _gpu_request(unit)
    gpu_job = bool(res.get("gpu") or "gpu" in str(res.get("gres", "") or ""))
    cpu_flag = get_cpu_setting(unit, gpu_job)
    m = re.search(r"--cpus-per-(task|gpu)=(\d+)", cpu_flag)
    cpus = 1 if m is None else int(m.group(2)) * (max(gpus, 1) if m.group(1) == "gpu" else (res.get("tasks") or 1))
    nodes = res.get("nodes") or 1
    cpus = math.ceil(cpus / nodes) if isinstance(nodes, int) and nodes > 1 else cpus
    if res.get("mem_mb_per_cpu"):
        mem = int(res.get("mem_mb_per_cpu")) * cpus
    else:
        mem = int(res.get("mem_mb")) if isinstance(res.get("mem_mb"), (int, float)) else None
    runtime = res.get("runtime")
    partition = res.get("slurm_partition")
    return Request(kind, rules, str(partition) if partition else None, cpus, mem, gpus, model,
                   int(runtime) if isinstance(runtime, (int, float)) else None)


def planned_requests(workflow) -> list[Request]:
    """Every kind of SLURM job the planned DAG will submit (jobs of a rule or group with equal requests merged)."""
    dag = workflow.dag
    seen_groups, merged = set(), {}
    for job in dag.needrun_jobs():
        if job.is_local:  # local rules run in the Snakemake process itself (the login node)
            continue
        group = dag.get_job_group(job)
        if group is not None:
            if id(group) in seen_groups:
                continue
            seen_groups.add(id(group))
            rules = tuple(sorted({j.rule.name for j in group.jobs}))
            req = request_of(group, f"group {group.groupid}", rules)
            for member in group.jobs:
                req.members.setdefault(member.rule.name, request_of(member, "", ()).__dict__)
        else:
            req = request_of(job, f"rule {job.rule.name}", (job.rule.name,))
        if workflow.executor_settings is not None and req.partition is None:
            req.partition = _auto_partition(workflow, group if group is not None else job)
        if req.key() in merged:
            merged[req.key()].n_jobs += 1
        else:
            merged[req.key()] = req
    return list(merged.values())


def _auto_partition(workflow, unit) -> str | None:
    """The partition the plugin picks by itself from ``--slurm-partition-config``, if one is given."""
    settings = workflow.executor_settings
    path = getattr(settings, "partition_config", None) or os.environ.get("SNAKEMAKE_SLURM_PARTITIONS")
    if not path:
        return None
    from snakemake.logging import logger
    from snakemake_executor_plugin_slurm.partitions import get_best_partition, read_partition_file

    return get_best_partition(read_partition_file(Path(path)), unit, logger)


# --- the comparison ------------------------------------------------------------------------------------------


def _largest(nodes) -> str:
    """The partition's largest nodes: those with the most memory, CPUs or GPUs (at most three)."""
    if not nodes:
        return "it has no nodes"
    picks = []
    for key in (lambda n: (n.mem_mb, n.cpus), lambda n: (n.cpus, n.mem_mb), lambda n: (n.n_gpus, n.mem_mb)):
        best = max(nodes, key=key)
        if best not in picks:
            picks.append(best)
    return "largest node" + ("s" if len(picks) > 1 else "") + ": " + ", ".join(n.describe() for n in picks)


def _fits(req: Request, node: Node, part: Partition) -> list[str]:
    """What ``node`` of ``part`` lacks for ``req`` (empty: it fits)."""
    lacks = []
    cpus = min(node.cpus, part.max_cpus_per_node or node.cpus)
    if req.cpus > cpus:
        lacks.append("cpus")
    mem = min(node.mem_mb, part.max_mem_per_node or node.mem_mb)
    if req.mem_mb is not None and req.mem_mb > mem:
        lacks.append("mem")
    if req.gpus:
        have = node.gpus.get(req.gpu_model, 0) if req.gpu_model else node.n_gpus
        if req.gpus > have:
            lacks.append("gpu_model" if req.gpu_model and node.n_gpus >= req.gpus else "gpus")
    return lacks


def _advice(req: Request, lacks: set[str]) -> list[str]:
    """The setting to change, per missing resource."""
    where = "in your workflow profile (profiles/slurm/profile.v9+.yaml or your copy)"
    if req.kind.startswith("group"):
        group = req.kind.split(" ", 1)[1]
        big = {k: max(req.members, key=lambda r: req.members[r][k] or 0) for k in ("cpus", "mem_mb")}
        most = {k: req.members[big[k]][k] or 0 for k in big}
        summed = req.cpus > most["cpus"] or (req.mem_mb or 0) > most["mem_mb"]
        if summed:  # planned side by side, though the job step runs them one after another
            return [f"group {group} asks for the sum of its members, which run one after another: keep each job's "
                    "`group_slot` (`resources: {group_slot: 1}`, `set-resource-scopes: {group_slot: local}` and "
                    f"`group_slot: 1` under `default-resources` {where}; a command-line --default-resources or "
                    "--resources replaces those blocks), or fewer jobs per group job (`group-components: "
                    f"{group}: N`)"]
        out = []
        if "mem" in lacks:
            out.append(f"lower `mem_mb` of its largest member, {big['mem_mb']} (`set-resources: {big['mem_mb']}: "
                       f"mem_mb: ...`) {where}")
        if "cpus" in lacks:
            out.append(f"lower the threads of {big['cpus']} (`set-threads: {big['cpus']}: N`) {where}")
        if "time" in lacks:
            out.append(f"fewer jobs per group job (`group-components: {group}: N`): its runtime is the sum of its "
                       "members'")
        return out
    rule = req.rules[0]
    out = []
    if "partition" in lacks:
        out.append(f"set `slurm_partition` of {rule} to a partition that exists (`set-resources: {rule}: "
                   f"slurm_partition: ...`, or under `default-resources`) {where}")
    if "gpus" in lacks:
        out.append("on a cluster without GPUs run with LAYERLENS_GPUS=0 (no GPU for finetune, probe, "
                   f"output_change); or send {rule} to a GPU partition (`set-resources: {rule}: slurm_partition: "
                   f"...`) {where}")
    if "gpu_model" in lacks:
        out.append(f"change or remove `gpu_model` of {rule} (`set-resources: {rule}: gpu_model: ...`) {where}")
    if "mem" in lacks:
        out.append(f"lower `mem_mb` of {rule} (`set-resources: {rule}: mem_mb: ...`) {where}, or send it to a "
                   "partition with larger nodes (`slurm_partition`)")
    if "cpus" in lacks:
        out.append(f"lower the threads of {rule} (`set-threads: {rule}: N` {where}, or `--max-threads N`)")
    if "time" in lacks:
        out.append(f"lower `runtime` (minutes) of {rule} (`set-resources: {rule}: runtime: ...`) {where}, or "
                   "choose a partition with a longer time limit")
    return out


def check_requests(requests: list[Request], cluster: Cluster) -> list[str]:
    """One paragraph per request that no node of its partition can meet."""
    problems = []
    default = cluster.default_partition
    for req in sorted(requests, key=lambda r: r.kind):
        part = cluster.partitions.get(req.partition) if req.partition else default
        head = f"{req.kind} ({req.n_jobs} job{'s' * (req.n_jobs > 1)}) asks for {req.describe()}"
        if part is None:
            if req.partition:
                why = (f"partition '{req.partition}' does not exist here (partitions: "
                       f"{', '.join(cluster.partitions) or 'none'})")
            else:
                why = "it names no partition and the cluster has no default partition"
            problems.append(_paragraph(head, why, _advice(req, {"partition"})))
            continue
        on = f"partition '{part.name}'" + (" (the default)" if req.partition is None else "")
        lacks_by_node = {n.name: _fits(req, n, part) for n in part.nodes}
        too_long = req.runtime_min is not None and part.max_time_min is not None \
            and req.runtime_min > part.max_time_min
        if part.nodes and any(not lacks for lacks in lacks_by_node.values()) and not too_long:
            continue
        lacks = set().union(*lacks_by_node.values()) if lacks_by_node else {"cpus", "mem"}
        reasons = []
        if "gpus" in lacks:
            most = max((n.n_gpus for n in part.nodes), default=0)
            reasons.append(f"no node has {req.gpus} GPU{'s' * (req.gpus > 1)}" if most else "it has no GPUs")
        if "gpu_model" in lacks:
            reasons.append(f"no node has {req.gpus}x {req.gpu_model}")
        if "mem" in lacks and not any("mem" not in v for v in lacks_by_node.values()):
            cap = f" (MaxMemPerNode={part.max_mem_per_node})" if part.max_mem_per_node else ""
            reasons.append(f"no node has {req.mem_mb} MB for jobs{cap}")
        if "cpus" in lacks and not any("cpus" not in v for v in lacks_by_node.values()):
            cap = f" (MaxCPUsPerNode={part.max_cpus_per_node})" if part.max_cpus_per_node else ""
            reasons.append(f"no node has {req.cpus} CPUs for jobs{cap}")
        if not reasons:
            reasons.append("no single node has all of it")
        if too_long:
            reasons.append(f"its time limit is {part.max_time_min} min")
            lacks.add("time")
        limit = "none" if part.max_time_min is None else f"{part.max_time_min} min"
        why = f"in {on}, {'; '.join(reasons)} ({_largest(part.nodes)}; time limit: {limit})"
        problems.append(_paragraph(head, why, _advice(req, lacks)))
    return problems


def _paragraph(head: str, why: str, advice: list[str]) -> str:
    return f"{head}:\n    {why}.\n" + "".join(f"    Change: {a}.\n" for a in advice)


def effective_status_command(settings, cluster: Cluster) -> str:
    """The status command the plugin will really use (it falls back to sacct where MinJobAge is short)."""
    command = getattr(settings, "status_command", None) or "sacct"
    init = getattr(settings, "init_seconds_before_status_checks", None) or 40
    sacct = shutil.which("sacct") is not None
    if command == "squeue" and (cluster.min_job_age_s is None or cluster.min_job_age_s < 3 * init) and sacct:
        return "sacct"
    if command == "sacct" and not sacct:
        return "squeue"
    return command


def check_status_command(settings, cluster: Cluster) -> list[str]:
    """Without an accounting database sacct knows no job: a run polling with it waits for ever."""
    if cluster.has_accounting or effective_status_command(settings, cluster) != "sacct":
        return []
    asked = getattr(settings, "status_command", None)
    init = getattr(settings, "init_seconds_before_status_checks", None) or 40
    if asked == "squeue":
        return [_paragraph(
            "job status", f"this cluster has no accounting database ({cluster.accounting}), and with MinJobAge="
            f"{cluster.min_job_age_s} s the plugin falls back from squeue to sacct (it needs MinJobAge >= 3 x "
            f"--slurm-init-seconds-before-status-checks = {3 * init} s); sacct cannot see any job, so the run "
            "would wait for ever",
            [f"lower --slurm-init-seconds-before-status-checks to {max(1, (cluster.min_job_age_s or 0) // 3)} or "
             "less, or ask the administrators for MinJobAge >= 120 s in slurm.conf"])]
    return [_paragraph(
        "job status", f"this cluster has no accounting database ({cluster.accounting}): `sacct` knows no job, "
        "so the plugin's default status command would wait for ever",
        ["add `--slurm-status-command squeue` to the command line (or `slurm-status-command: squeue` to your "
         "workflow profile); it needs MinJobAge >= 120 s in slurm.conf"
         + (f" (here: {cluster.min_job_age_s} s)" if cluster.min_job_age_s is not None else "")])]


#: Linux's limit on one argument (MAX_ARG_STRLEN): the plugin hands sbatch's whole command line, array payload
#: included, to ``/bin/sh -c`` as one argument
MAX_ARG = 131072


def array_payload_bytes(execs: list[str]) -> int:
    """Bytes of the plugin's ``--slurm-jobstep-array-execs`` payload for one array (2.8: each task's command
    zlib-compressed and hex-encoded, the first task's left out, the JSON base64-encoded)."""
    import base64
    import json
    import zlib

    tasks = {str(i): zlib.compress(e.encode(), level=9).hex() for i, e in enumerate(execs[1:], start=2)}
    return len(base64.b64encode(json.dumps(tasks).encode()))


def check_arrays(workflow, requests: list[Request]) -> list[str]:
    """Job arrays as the plugin (2.8) submits them; two ways they go wrong, both measured (benchmarks/README.md).

    - It submits a rule's array only once the scheduler has handed it all ready jobs of that rule (or
      ``--slurm-array-limit`` of them) in one go; jobs handed over in smaller batches, as ``--jobs`` or
      ``--max-jobs-per-timespan`` let them through, are never submitted and the run waits for ever.
    - Its ``sbatch`` command line carries every task's command; above Linux's limit on one argument it falls back
      to a script that SLURM cannot run: every task runs the array's first job, then fails.
    """
    settings = workflow.executor_settings
    names = {r.strip() for r in re.split(r"[,;]", getattr(settings, "array_jobs", None) or "") if r.strip()}
    arrayed = sorted({r.rules[0] for r in requests if r.kind.startswith("rule ")
                      and ("all" in names or r.rules[0] in names) and r.n_jobs > 1})
    if not arrayed:
        return []
    problems = []
    total = sum(r.n_jobs for r in requests)
    max_jobs = getattr(workflow, "nodes", None)
    rate = getattr(getattr(workflow, "scheduling_settings", None), "max_jobs_per_timespan", None)
    limits = []
    if max_jobs is not None and max_jobs < total:
        limits.append((f"--jobs {max_jobs}", f"at most {max_jobs} SLURM jobs at a time", "--jobs unlimited"))
    if rate is not None and rate.max_jobs < total:
        limits.append((f"--max-jobs-per-timespan {rate.max_jobs:g}/{rate.timespan:g}s",
                       f"at most {rate.max_jobs:g} new jobs in {rate.timespan:g} s",
                       f"--max-jobs-per-timespan {max(10000, total)}/1s"))
    for flag, meaning, fix in limits:
        problems.append(_paragraph(
            f"job arrays for {', '.join(arrayed)}",
            f"with {flag} ({meaning}) for the {total} SLURM jobs of this run, the plugin can get the ready jobs of "
            "an array rule in batches, and submits a batch only if it holds all of them or a full array: the others "
            "are never submitted and the run would wait for ever",
            [f"`{fix}` (as profiles/slurm has it; the arrays keep the number of submissions down), or leave out "
             "--slurm-array-jobs"]))
    executor = getattr(getattr(workflow, "scheduler", None), "_executor", None)
    if executor is None or not hasattr(executor, "format_job_exec"):
        return problems
    limit = int(getattr(settings, "array_limit", None) or 1000)
    for rule in arrayed:
        jobs = [j for j in workflow.dag.needrun_jobs() if j.rule.name == rule and workflow.dag.get_job_group(j) is None]
        execs = [executor.format_job_exec(j) for j in jobs[:limit]]
        if len(execs) < 2:
            continue
        per_task = array_payload_bytes(execs) / (len(execs) - 1)
        base = len(execs[0]) + 8192  # the first task's command, sbatch's options, a margin
        fits = 1 + int((MAX_ARG - base) // per_task)
        if len(execs) > fits:
            problems.append(_paragraph(
                f"job arrays for {rule}",
                f"an array of {len(execs)} tasks needs an sbatch command line of about "
                f"{(array_payload_bytes(execs) + base) // 1024} KiB (each task's command, "
                f"{per_task / 1024:.1f} KiB compressed), over Linux's {MAX_ARG // 1024} KiB for one argument; the "
                "plugin's fallback for that submits a script on which every task runs the array's first job, then "
                "fails",
                [f"--slurm-array-limit {max(2, fits)} or less (`slurm-array-limit:` in the profile), or leave out "
                 "--slurm-array-jobs"]))
    return problems


def report(requests: list[Request], cluster: Cluster) -> str:
    """A table of the run's SLURM jobs against their partitions (for ``check``)."""
    lines = ["| SLURM job | jobs | partition | CPUs | MB | GPUs | min | nodes that fit |",
             "|---|---:|---|---:|---:|---:|---:|---:|"]
    for req in sorted(requests, key=lambda r: r.kind):
        part = cluster.partitions.get(req.partition) if req.partition else cluster.default_partition
        fit = sum(not _fits(req, n, part) for n in part.nodes) if part else 0
        total = len(part.nodes) if part else 0
        gpus = f"{req.gpus}" + (f" {req.gpu_model}" if req.gpu_model else "")
        lines.append(f"| {req.kind} | {req.n_jobs} | {part.name if part else req.partition} | {req.cpus} | "
                     f"{req.mem_mb if req.mem_mb is not None else '-'} | {gpus} | "
                     f"{req.runtime_min if req.runtime_min is not None else '-'} | {fit} of {total} |")
    return "\n".join(lines)


def preflight(workflow) -> None:
    """The Snakefile's ``onstart:``: stop a SLURM run at once if one of its jobs cannot start.

    Raises snakemake's WorkflowError with one paragraph per problem; returns quietly for other executors. With
    ``LAYERLENS_PREFLIGHT=only`` it prints the table and exits (0: everything fits, 1: not, 2: no SLURM here).
    """
    mode = os.environ.get(ENV, "on")
    plugin = getattr(workflow, "executor_plugin", None)
    executor = getattr(plugin, "name", None)
    if mode == "off":
        return
    if executor != "slurm":
        if mode == "only":
            print(f"layerlens pre-flight: this run does not use SLURM (executor: {executor}); nothing to check. "
                  "Give the SLURM profile: --workflow-profile profiles/slurm", file=sys.stderr)
            raise SystemExit(1)
        return
    from snakemake.exceptions import WorkflowError
    from snakemake.logging import logger

    log = logger.info
    try:
        cluster = read_cluster()
    except NoSlurm as e:
        log(f"layerlens pre-flight: no SLURM cluster answers here ({e}); nothing checked.")
        if mode == "only":
            raise SystemExit(2) from None
        return
    requests = planned_requests(workflow)
    problems = (check_status_command(workflow.executor_settings, cluster) + check_requests(requests, cluster)
                + check_arrays(workflow, requests))
    n = sum(r.n_jobs for r in requests)
    if mode == "only":
        print(report(requests, cluster), flush=True)
    if problems:
        message = (f"layerlens pre-flight: {len(problems)} problem{'s' * (len(problems) > 1)} with this SLURM run; "
                   "nothing was submitted.\n\n" + "\n".join(problems)
                   + "\nCheck again without submitting: python -m layerlens.cluster check [your snakemake options]")
        if mode == "only":
            print(message, file=sys.stderr, flush=True)
            raise SystemExit(1)
        raise WorkflowError(message)
    summary = (f"layerlens pre-flight: the {n} SLURM job{'s' * (n != 1)} of this run fit their partitions "
               f"({', '.join(sorted({(p or cluster.default_partition.name) for p in (r.partition for r in requests)}))}"
               f"); job status via {effective_status_command(workflow.executor_settings, cluster)}.")
    if mode == "only":
        print(summary, flush=True)
        raise SystemExit(0)
    log(summary)


# --- the command line -----------------------------------------------------------------------------------------


USAGE = """usage: python -m layerlens.cluster check [snakemake options]

Checks, without submitting anything, that every SLURM job of the run `snakemake [snakemake options]` would start
fits a node of its partition, and that job states can be read. Give the options of the real run (without
--workflow-profile, profiles/slurm is used), e.g.

    python -m layerlens.cluster check --configfile my.yaml --slurm-status-command squeue

Exit status: 0 everything fits, 1 something does not (the message names it and what to change), 2 no SLURM
cluster answers here.
"""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] != "check":
        print(USAGE, file=sys.stderr)
        return 0 if argv and argv[0] in ("-h", "--help") else 64
    try:
        read_cluster()
    except NoSlurm as e:
        print(f"layerlens pre-flight: no SLURM cluster answers here ({e}); nothing checked.", file=sys.stderr)
        return 2
    # the check stops the run in its onstart: handler, which a dry run never reaches; nothing is run either way
    args = [a for a in argv[1:] if a not in ("-n", "--dry-run", "--dryrun")]
    if not any(a == "--workflow-profile" or a.startswith("--workflow-profile=") for a in args):
        args = ["--workflow-profile", str(REPO / "profiles" / "slurm"), *args]
    if not any(a in ("-s", "--snakefile") or a.startswith("--snakefile=") for a in args):
        args = ["--snakefile", str(REPO / "Snakefile"), *args]
    cmd = [sys.executable, "-m", "snakemake", *args, "--nolock"]
    return subprocess.run(cmd, env={**os.environ, ENV: "only"}).returncode


if __name__ == "__main__":
    raise SystemExit(main())
