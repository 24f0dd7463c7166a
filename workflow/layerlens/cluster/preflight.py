"""The two ways in: every SLURM run's ``onstart:`` (:func:`preflight`) and ``python -m layerlens.cluster check``
(:func:`main`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from .checks import check_arrays, check_requests, check_status_command, effective_status_command, report
from .jobs import planned_requests
from .nodes import NoSlurm, read_cluster

ENV = "LAYERLENS_PREFLIGHT"
REPO = Path(__file__).resolve().parents[3]


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

