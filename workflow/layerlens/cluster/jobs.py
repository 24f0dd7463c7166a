"""What the planned run's jobs ask for: each rule's and group job's ``sbatch`` request, from Snakemake's own DAG
and the SLURM plugin's own option builders."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path


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
