"""What the cluster has: its nodes and partitions, from ``scontrol`` (CPUs, memory for jobs, GPUs, time limits,
per-node caps), and the ``LAYERLENS_GPUS`` switch for the GPU rules."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass

from ..errors import LayerLensError


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


def largest(nodes) -> str:
    """The partition's largest nodes: those with the most memory, CPUs or GPUs (at most three)."""
    if not nodes:
        return "it has no nodes"
    picks = []
    for key in (lambda n: (n.mem_mb, n.cpus), lambda n: (n.cpus, n.mem_mb), lambda n: (n.n_gpus, n.mem_mb)):
        best = max(nodes, key=key)
        if best not in picks:
            picks.append(best)
    return "largest node" + ("s" if len(picks) > 1 else "") + ": " + ", ".join(n.describe() for n in picks)
