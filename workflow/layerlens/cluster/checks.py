"""The checks: each request against the nodes of its partition, the status command against the accounting
database, job arrays against the plugin's limits; each failure names the rule or group and what to change."""

from __future__ import annotations

import re
import shutil

from .jobs import Request
from .nodes import Cluster, Node, Partition, largest


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
        why = f"in {on}, {'; '.join(reasons)} ({largest(part.nodes)}; time limit: {limit})"
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
