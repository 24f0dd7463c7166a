"""SLURM job arrays against one sbatch per job: a few hundred small jobs through the SLURM executor plugin.

Needs a running SLURM cluster (tests/slurm/start_slurm.sh start) and snakemake-executor-plugin-slurm. The
workflow is one rule with N independent jobs (1 CPU, 100 MB, a line of output each; what a job does does not
change how it is submitted), run twice from a clean folder with the same settings but for
``--slurm-array-jobs``:

    python benchmarks/bench_arrays.py --jobs 200 --max-jobs 100 unlimited --modes sbatch array array:50

Counted, by putting logging wrappers for sbatch, squeue, sacct, scancel and scontrol first on the PATH of the
Snakemake process (they log each call, then run the real command): submissions (sbatch calls), status queries
and all scheduler calls, the SLURM job records (the cluster's jobcomp log), and the wall time from the start of
Snakemake to its exit. A run in which nothing happens for --stall seconds (no scheduler call, no new output),
or that has not finished after --timeout, is stopped and reported as hung.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
JOBCOMP = Path("/var/log/slurm/jobcomp.log")
COMMANDS = ("sbatch", "squeue", "sacct", "scancel", "scontrol", "sinfo")

SNAKEFILE = """
N = {n}

localrules: all


rule all:
    input: expand("out/{{i}}.txt", i=range(N))


rule cell:
    output: "out/{{i}}.txt"
    threads: 1
    resources: mem_mb=100, runtime=10
    shell: "echo {{wildcards.i}} > {{output}}"
"""


def shims(folder: Path, calls: Path) -> Path:
    """Wrappers that log each scheduler call to ``calls`` and run the real command."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in COMMANDS:
        real = shutil.which(name)
        if real is None:
            continue
        (folder / name).write_text(f'#!/bin/sh\necho "{name}" >> "{calls}"\nexec "{real}" "$@"\n')
        (folder / name).chmod(0o755)
    return folder


def run(n: int, max_jobs: str, array: int | None, timeout: int, stall: int, init: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix="bench-arrays-"))
    (work / "Snakefile").write_text(SNAKEFILE.format(n=n))
    calls = work / "scheduler-calls.txt"
    calls.touch()
    bin_dir = shims(work / "bin", calls)
    cmd = [sys.executable, "-m", "snakemake", "--executor", "slurm", "--jobs", max_jobs,
           "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", str(init),
           "--workflow-profile", "none", "--default-resources", "mem_mb=100", "runtime=10"]
    if array is not None:  # 0: the plugin's default --slurm-array-limit (1000, or MaxArraySize if lower)
        cmd += ["--slurm-array-jobs", "cell", *(["--slurm-array-limit", str(array)] if array else [])]
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    started = time.perf_counter()
    log = open(work / "snakemake.log", "w")
    proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    finished, progress, last_change = True, None, started
    while proc.poll() is None:
        now = time.perf_counter()
        seen = (calls.stat().st_size, len(list((work / "out").glob("*.txt"))) if (work / "out").is_dir() else 0)
        if seen != progress:
            progress, last_change = seen, now
        if now - started > timeout or now - last_change > stall:
            finished = False
            break
        time.sleep(1)
    rc = proc.returncode
    if not finished:
        proc.terminate()  # Snakemake cancels its SLURM jobs on SIGTERM, and waits for jobs it thinks are running
        try:
            rc = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:  # ... which, when it hangs, never end
            proc.kill()
            rc = proc.wait()
        finished = False
    wall = time.perf_counter() - started
    log.close()
    counts = {c: 0 for c in COMMANDS}
    for line in calls.read_text().split():
        counts[line] += 1
    records = []
    if JOBCOMP.is_file():
        records = [m for m in re.findall(r"JobId=(\d+) .*?WorkDir=(\S+)", JOBCOMP.read_text()) if m[1] == str(work)]
    outputs = len(list((work / "out").glob("*.txt"))) if (work / "out").is_dir() else 0
    mode = "one sbatch per job" if array is None else f"arrays of <= {array or 'default'} tasks"
    return {"mode": mode, "jobs": n, "max_jobs": max_jobs, "rc": rc,
            "finished": finished, "outputs": outputs, "wall_s": round(wall, 1), "sbatch": counts["sbatch"],
            "squeue": counts["squeue"], "scheduler_calls": sum(counts.values()),
            "slurm_job_ids": len({r[0] for r in records}), "workdir": str(work)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--jobs", type=int, default=300, help="jobs of the one rule")
    p.add_argument("--max-jobs", nargs="+", default=["100", "unlimited"], help="Snakemake --jobs values to try")
    p.add_argument("--modes", nargs="+", default=["sbatch", "array", "array:50"],
                   help="sbatch: one sbatch per job; array: --slurm-array-jobs with the plugin's default "
                        "--slurm-array-limit; array:N: with --slurm-array-limit N")
    p.add_argument("--timeout", type=int, default=3600, help="seconds before a run is stopped")
    p.add_argument("--stall", type=int, default=300, help="seconds without any progress: a run counts as hung")
    p.add_argument("--init", type=int, default=5, help="--slurm-init-seconds-before-status-checks")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "arrays.json"))
    args = p.parse_args(argv)
    if shutil.which("sbatch") is None:
        raise SystemExit("no SLURM here: start the test cluster first (tests/slurm/start_slurm.sh start)")
    results = []
    for max_jobs in args.max_jobs:
        for mode in args.modes:
            array = None if mode == "sbatch" else int(mode.partition(":")[2] or 0)
            r = run(args.jobs, max_jobs, array, args.timeout, args.stall, args.init)
            print(json.dumps(r), flush=True)
            results.append(r)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print("\n| --jobs | submission | finished | wall (s) | sbatch calls | squeue calls | all scheduler calls | "
          "SLURM job IDs |\n|---|---|---|---:|---:|---:|---:|---:|")
    for r in results:
        done = f"yes ({r['outputs']}/{r['jobs']})" if r["finished"] and r["rc"] == 0 else \
            f"no: {'hung, stopped' if not r['finished'] else 'rc ' + str(r['rc'])} ({r['outputs']}/{r['jobs']})"
        print(f"| {r['max_jobs']} | {r['mode']} | {done} | {r['wall_s']} | {r['sbatch']} | {r['squeue']} | "
              f"{r['scheduler_calls']} | {r['slurm_job_ids']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
