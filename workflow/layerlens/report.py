"""Report stage: the probe and GLUE results as tables (CSV, Markdown) and figures.

GLUE scores are shown x100, as GLUE reports them. A model's score on a task is the mean over seeds of the task
score (:func:`layerlens.tasks.task_score`) ± the sample sd; a variant's delta to its base is paired by seed
(the same seed gives the same head initialisation and data order). Diverged runs (NaN loss) are counted and
shown, never averaged in.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from .io import atomic_path, read_json, write_text
from .stats import summarize

SCALE = 100.0


# --- collecting ------------------------------------------------------------------------------------------


def collect_probe(paths: Sequence[str | Path]) -> pd.DataFrame:
    frames = [pd.read_csv(p) for p in paths]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def collect_finetune(paths: Sequence[str | Path]) -> pd.DataFrame:
    rows = []
    for p in paths:
        m = read_json(p)
        rows.append({"model": m["model"], "task": m["task"], "seed": int(m["seed"]),
                     "score": m["main_score"], "diverged": bool(m.get("diverged", False)),
                     "constant_predictions": bool(m.get("constant_predictions", False)),
                     "train_seconds": m.get("train_seconds"), "path": str(p)})
    return pd.DataFrame(rows, columns=["model", "task", "seed", "score", "diverged", "constant_predictions",
                                       "train_seconds", "path"])


# --- probe tables ----------------------------------------------------------------------------------------


def write_probe_report(probe: pd.DataFrame, out_csv, out_md) -> None:
    with atomic_path(out_csv) as tmp:
        probe.to_csv(tmp, index=False)
    lines = ["# Layer probe: the masked-LM head on every hidden layer", "",
             "Share of input tokens (special tokens and padding excluded, nothing masked) that the model's own "
             "MLM head predicts back from each hidden layer; layer 0 is the embedding output. "
             "Top-1 with its 95% bootstrap interval over sentences.", ""]
    if "head" in probe and (probe["head"] == "fit").any():
        fitted = ", ".join(dict.fromkeys(probe.loc[probe["head"] == "fit", "model"]))
        lines += [f"Read with a fitted head (trained on the base's last layer only, encoder frozen): {fitted}. "
                  "Every other model is read with its own pretrained head.", ""]
    for metric, title in (("top1", "Top-1 accuracy"), ("agree_last", "Top-1 agreement with the last layer"),
                          ("cross_entropy", "Cross-entropy of the input token (nats)")):
        wide = probe.pivot_table(index="model", columns="layer", values=metric, sort=False)
        wide = wide.reindex(list(dict.fromkeys(probe["model"])))
        lines += [f"## {title}", "", _markdown(wide.map(lambda v: "" if pd.isna(v) else f"{v:.3f}")), ""]
    write_text(out_md, "\n".join(lines))


# --- GLUE tables -----------------------------------------------------------------------------------------


def glue_summary(runs: pd.DataFrame, bases: dict[str, str], tasks: Sequence[str]) -> pd.DataFrame:
    """Long table: one row per (model, task) plus one per model for the GLUE average (task ``average``).

    Columns: model, base, task, n_seeds, n_diverged, mean, sd, ci_lo, ci_hi, delta_mean, delta_sd, delta_n
    (scores x100; deltas paired by seed against the base; empty for base models).
    """
    rows = []
    models = list(bases)
    scores = {}  # (model, task) -> {seed: score}
    for (model, task), grp in runs.groupby(["model", "task"], sort=False):
        scores[(model, task)] = {int(s): (math.nan if d else v * SCALE)
                                 for s, v, d in zip(grp["seed"], grp["score"], grp["diverged"])}
    for model in models:
        per_seed_avg = _seed_averages(scores, model, tasks)
        for task in list(tasks) + ["average"]:
            by_seed = per_seed_avg if task == "average" else scores.get((model, task), {})
            if not by_seed:
                continue
            s = summarize(by_seed.values())
            row = {"model": model, "base": bases[model], "task": task, "n_seeds": len(by_seed),
                   "n_diverged": sum(1 for v in by_seed.values() if not math.isfinite(v)),
                   **{k: v for k, v in s.as_dict().items() if k != "n"}}
            base = bases[model]
            if base != model:
                base_by_seed = (_seed_averages(scores, base, tasks) if task == "average"
                                else scores.get((base, task), {}))
                deltas = [by_seed[k] - base_by_seed[k] for k in sorted(set(by_seed) & set(base_by_seed))]
                d = summarize(deltas)
                row.update(delta_mean=d.mean, delta_sd=d.sd, delta_n=d.n)
            rows.append(row)
    cols = ["model", "base", "task", "n_seeds", "n_diverged", "mean", "sd", "ci_lo", "ci_hi",
            "delta_mean", "delta_sd", "delta_n"]
    return pd.DataFrame(rows).reindex(columns=cols)


def _seed_averages(scores, model, tasks) -> dict[int, float]:
    """Per seed, the mean of the task scores over all tasks (only seeds present for every task)."""
    per_task = [scores.get((model, t), {}) for t in tasks]
    if not per_task or not all(per_task):
        return {}
    common = set.intersection(*(set(d) for d in per_task))
    return {s: float(np.mean([d[s] for d in per_task])) for s in sorted(common)}


def write_glue_report(summary: pd.DataFrame, tasks: Sequence[str], out_csv, out_md) -> None:
    with atomic_path(out_csv) as tmp:
        summary.to_csv(tmp, index=False)
    columns = list(tasks) + ["average"]
    table, deltas = {}, {}
    for _, r in summary.iterrows():
        cell = _pm(r["mean"], r["sd"]) + (f" ({int(r['n_diverged'])} diverged)" if r["n_diverged"] else "")
        table.setdefault(r["model"], {})[r["task"]] = cell
        if r["model"] != r["base"]:
            deltas.setdefault(r["model"], {})[r["task"]] = _signed(r["delta_mean"], r["delta_sd"])
    models = list(dict.fromkeys(summary["model"]))
    wide = pd.DataFrame.from_dict(table, orient="index").reindex(index=models, columns=columns)
    n_seeds = summary.groupby("model", sort=False)["n_seeds"].max()
    wide.insert(0, "seeds", n_seeds.reindex(models).astype("Int64"))
    lines = ["# GLUE dev scores", "",
             "Task score x100 (the GLUE benchmark's: the mean of a task's metrics, e.g. MRPC = mean of F1 and "
             "accuracy), mean ± sd over seeds. `average` is the mean over tasks, computed per seed.", "",
             _markdown(wide.fillna("")), ""]
    if deltas:
        dwide = pd.DataFrame.from_dict(deltas, orient="index").reindex(columns=columns)
        lines += ["## Variant minus base, paired by seed", "",
                  "Same seed = same classifier-head initialisation and data order. mean ± sd of the per-seed "
                  "differences.", "", _markdown(dwide.fillna("")), ""]
    write_text(out_md, "\n".join(lines))


def _pm(mean, sd) -> str:
    if not _finite(mean):
        return "n/a"
    return f"{mean:.2f} ± {sd:.2f}" if _finite(sd) else f"{mean:.2f}"


def _signed(mean, sd) -> str:
    if not _finite(mean):
        return "n/a"
    return f"{mean:+.2f} ± {sd:.2f}" if _finite(sd) else f"{mean:+.2f}"


def _finite(x) -> bool:
    return x is not None and not (isinstance(x, float) and math.isnan(x)) and np.isfinite(x)


def _markdown(df: pd.DataFrame) -> str:
    return df.to_markdown(disable_numparse=True)


# --- figures ---------------------------------------------------------------------------------------------


def plot_probe_family(probe: pd.DataFrame, base: str, variants: Sequence[str], path,
                      metric: str = "top1") -> None:
    """The probe curves of a base and its variants on one plot, against relative depth."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), constrained_layout=True)
    for i, model in enumerate([base] + list(variants)):
        t = probe[probe["model"] == model].sort_values("layer")
        if t.empty:
            continue
        depth = t["layer"].max()
        x = t["layer"] / depth if depth else t["layer"]
        style = "o-" if model == base else ".--"
        ax.plot(x, t[metric], style, color=f"C{i % 10}", label=f"{model} ({depth} layers)", linewidth=1.5)
        if metric == "top1" and "top1_lo" in t:
            ax.fill_between(x, t["top1_lo"], t["top1_hi"], color=f"C{i % 10}", alpha=0.15, linewidth=0)
    ax.set_xlabel("relative depth (hidden layer / number of layers; 0 = embeddings)")
    ax.set_ylabel({"top1": "top-1 = input token", "agree_last": "agreement with last layer"}.get(metric, metric))
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    ax.set_title(f"MLM head on every layer: {base} and its variants", fontsize=10)
    _save(fig, path)
    plt.close(fig)


def plot_glue_deltas(summary: pd.DataFrame, tasks: Sequence[str], path) -> None:
    """Per-task delta of each variant to its base (mean over seeds, error bar = sd of the paired deltas)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    d = summary[summary["model"] != summary["base"]]
    variants = list(dict.fromkeys(d["model"]))
    columns = list(tasks) + ["average"]
    fig, ax = plt.subplots(figsize=(max(5.0, 1.1 * len(columns) + 2), 3.8), constrained_layout=True)
    width = 0.8 / max(1, len(variants))
    for i, v in enumerate(variants):
        t = d[d["model"] == v].set_index("task").reindex(columns)
        x = np.arange(len(columns)) + (i - (len(variants) - 1) / 2) * width
        ax.bar(x, t["delta_mean"], width, yerr=t["delta_sd"].fillna(0), capsize=2, label=v, color=f"C{i % 10}")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks(np.arange(len(columns)), columns)
    ax.set_ylabel("variant - base (score x100)")
    ax.set_title("GLUE dev: change from duplicating / removing layers (paired by seed)", fontsize=10)
    if variants:
        ax.legend(fontsize=7)
    ax.grid(axis="y", alpha=0.3)
    _save(fig, path)
    plt.close(fig)


def _save(fig, path) -> None:
    path = Path(path)
    with atomic_path(path, suffix=path.suffix) as tmp:
        fig.savefig(tmp, dpi=150, format=path.suffix.lstrip("."))
