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

from .checks import check_arrays, check_requests, check_status_command, report
from .jobs import Request, planned_requests
from .nodes import (
           Cluster,
           Node,
           NoSlurm,
           Partition,
           gpus_per_job,
           parse_gres,
           parse_nodes,
           parse_partitions,
           read_cluster,
)
from .preflight import ENV, main, preflight

__all__ = ["Cluster", "ENV", "Node", "NoSlurm", "Partition", "Request", "check_arrays", "check_requests",
           "check_status_command", "gpus_per_job", "main", "parse_gres", "parse_nodes", "parse_partitions",
           "planned_requests", "preflight", "read_cluster", "report"]
