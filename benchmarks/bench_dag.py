"""DAG resolution: `snakemake -n` on a generated grid of about 1,000 jobs.

The grid: one 24-layer base (a Hub id with `num_layers: 24`, so nothing is downloaded in a dry run), every single
layer duplicated and every single layer removed (48 variants, all fine-tuned), four tasks, five seeds: 980
fine-tuning jobs plus probes, output changes, layer maps, tokenization, downloads and the report.

    python benchmarks/bench_dag.py --repeats 3

Reports the number of jobs and the wall time of each dry run (median over repeats).
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]

CONFIG = {
    "models": {"bert-large": {"source": "google-bert/bert-large-uncased", "num_layers": 24}},
    "sweeps": [{"base": "bert-large", "kind": "duplicate_each", "finetune": True},
               {"base": "bert-large", "kind": "remove_each", "finetune": True}],
    "tasks": ["rte", "mrpc", "stsb", "cola"],
    "seeds": [1, 2, 3, 4, 5],
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "dag.json"))
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-dag-"))
    (work / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    times, jobs = [], None
    for _ in range(args.repeats):
        started = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--configfile",
                               "config.yaml", "-n", "--quiet", "rules", "--cores", "1"], cwd=work,
                              capture_output=True, text=True)
        times.append(time.perf_counter() - started)
        if proc.returncode:
            raise SystemExit(proc.stderr[-3000:])
        total = re.search(r"^total\s+(\d+)", proc.stdout + proc.stderr, re.M)
        jobs = int(total.group(1)) if total else None
    result = {"jobs": jobs, "seconds": times, "median_s": statistics.median(times)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(f"| jobs | dry run, median of {args.repeats} (s) | runs (s) |\n|---:|---:|---|\n"
          f"| {jobs} | {result['median_s']:.1f} | {', '.join(f'{t:.1f}' for t in times)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
