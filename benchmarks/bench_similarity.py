"""What the layer similarity costs the probe: the share of the probe job's CPU time spent in the similarity
consumer (cosine, Block Influence, angular distance; and with linear CKA), timed inside the same run, at several
depths, each depth and setting in its own process (its peak memory its own).

CPU time (``time.process_time``, all threads) rather than wall time, and a share within one run rather than two
runs compared: on a shared machine the wall time of separate runs moves by more than the cost measured.

Models and sentences as in bench_probe.py: MiniLM-L6-H384's encoder with a masked-LM head (random: neither speed
nor the similarity depends on it), and deeper variants built with the pipeline's own layer maps.

    python benchmarks/bench_similarity.py --sentences 256 --depth-factors 1 2 4

Also prints the real MiniLM's per-layer similarity (depth factor 1). Measured, never asserted in a timed test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_probe import REPO, build_models, proc_status_mb, reset_peak_rss, sentences  # noqa: E402

MODES = ("similarity", "similarity+cka")


class Timed:
    """A chunk consumer that adds up the CPU time its inner consumer takes."""

    def __init__(self, inner):
        self.inner, self.cpu = inner, 0.0

    def add(self, chunk):
        t = time.process_time()
        self.inner.add(chunk)
        self.cpu += time.process_time() - t


def worker(args) -> dict:
    import torch
    from layerlens import forward, probe, similarity

    torch.set_num_threads(args.threads)
    sents = json.loads(Path(args.sentences_file).read_text())
    model, _ = forward.load_mlm(args.model, "cpu")
    with torch.inference_mode():  # page every weight in, so RSS counts them before the probe starts
        sum(float(p.float().sum()) for p in model.parameters())
    loaded_mb = reset_peak_rss()
    sim = Timed(similarity.Similarity(len(sents), cka=args.mode == "similarity+cka"))
    wall, cpu = time.perf_counter(), time.process_time()
    probe.run_probe(args.model, sents, max_length=args.max_length, batch_size=args.batch_size, bootstrap=0,
                    device="cpu", model=model, also=[sim])
    t = time.process_time()
    table = sim.inner.table(bootstrap=1000)
    sim.cpu += time.process_time() - t
    layers = table[table["n_layers"] == 1][["from_state", "cos", "block_influence", "angular", "cka"]]
    return {"mode": args.mode, "wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu,
            "similarity_cpu_s": sim.cpu, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "working_mb": None if loaded_mb is None else proc_status_mb("VmHWM") - loaded_mb,
            "layers": layers.to_dict("records")}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd")
    w = sub.add_parser("worker")
    for a in ("--mode", "--model", "--sentences-file"):
        w.add_argument(a, required=True)
    for a, d in (("--max-length", 128), ("--batch-size", 32), ("--threads", os.cpu_count())):
        w.add_argument(a, type=int, default=d)
    p.add_argument("--glue-dir", default=str(REPO.parent / "shared" / "glue"))
    p.add_argument("--sentences", type=int, default=256)
    p.add_argument("--depth-factors", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--work", default=None)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "similarity.json"))
    args = p.parse_args(argv)
    if args.cmd == "worker":
        print(json.dumps(worker(args)))
        return 0

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-similarity-"))
    models = build_models(work, args.depth_factors)
    sfile = work / "sentences.json"
    sfile.write_text(json.dumps(sentences(args.glue_dir, args.sentences)))
    runs = []
    for depth, folder in sorted(models.items()):
        for mode in MODES:
            cmd = [sys.executable, __file__, "worker", "--mode", mode, "--model", str(folder), "--sentences-file",
                   str(sfile), "--threads", str(args.threads)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode:
                raise SystemExit(proc.stderr[-3000:])
            r = json.loads(proc.stdout.strip().splitlines()[-1]) | {"depth": depth}
            print(f"depth {depth} {mode}: {r['cpu_s']:.1f} CPU s, similarity {r['similarity_cpu_s']:.1f}",
                  file=sys.stderr)
            runs.append(r)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"settings": vars(args), "runs": runs}, indent=2))
    print("| layers | setting | probe job (CPU s) | of which similarity (CPU s) | share | CKA sums (MB, computed) | "
          "peak above the loaded model (MB) |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for r in runs:
        cka = r["mode"] == "similarity+cka"
        sums = (r["depth"] + 1) * (r["depth"] + 2) / 2 * 384 ** 2 * 8 / 2**20 if cka else 0
        above = "n/a" if r["working_mb"] is None else f"{r['working_mb']:.0f}"
        print(f"| {r['depth']} | {r['mode']} | {r['cpu_s']:.1f} | {r['similarity_cpu_s']:.1f} | "
              f"{r['similarity_cpu_s'] / r['cpu_s']:.0%} | {sums:.0f} | {above} |")
    base = next(x for x in runs if x["depth"] == min(models) and x["mode"] == "similarity+cka")
    print("\n| layer | cos(in, out) | Block Influence | angular distance | CKA(in, out) |\n|---:|---:|---:|---:|---:|")
    for row in base["layers"]:
        print(f"| {row['from_state']} | {row['cos']:.3f} | {row['block_influence']:.3f} | {row['angular']:.3f} | "
              f"{row['cka']:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
