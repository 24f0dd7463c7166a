"""Report stage: the probe, the output change and GLUE as tables (CSV, Markdown, LaTeX) and figures (PNG, PDF).

GLUE scores are shown x100, as GLUE reports them. A model's score on a task is the mean over seeds of the task
score (:func:`layerlens.tasks.task_score`: the mean of the task's metrics) ± the sample sd. The GLUE average is
the benchmark's: multi-metric tasks are averaged first (MRPC, QQP: F1 and accuracy; STS-B: Pearson and Spearman;
MNLI: matched and mismatched accuracy), then the task scores are averaged, per seed.

A variant is compared with its base in two ways (:mod:`layerlens.stats`):

- over seeds: the per-seed differences (same seed: same head initialisation and data order) with an exact
  sign-flip test, their effect size d_z and the seeds a paired t-test needs to detect it;
- over dev examples: a paired bootstrap of the score difference from the saved predictions, averaged over seeds.

Both sets of p-values are Holm-adjusted across tasks x variants; the tables mark the deltas that survive.
Diverged runs (NaN loss) are counted and shown, never averaged in.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from . import stats
from .io import atomic_path, read_json, read_tsv, write_text
from .tasks import batched_task_score, get_task

SCALE = 100.0
MARK_BOOT, MARK_SEED = "*", "†"


# --- collecting ------------------------------------------------------------------------------------------


def collect_probe(paths: Sequence[str | Path]) -> pd.DataFrame:
    frames = [pd.read_csv(p) for p in paths]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


RUN_COLUMNS = ["model", "task", "seed", "score", "diverged", "constant_predictions", "train_seconds",
               "train_tokens", "total_flos", "peak_gpu_memory_mb", "device", "path", "predictions"]


def collect_finetune(paths: Sequence[str | Path]) -> pd.DataFrame:
    rows = []
    for p in paths:
        m = read_json(p)
        rows.append({"model": m["model"], "task": m["task"], "seed": int(m["seed"]),
                     "score": math.nan if m["main_score"] is None else m["main_score"],
                     "diverged": bool(m.get("diverged", False)),
                     "constant_predictions": bool(m.get("constant_predictions", False)),
                     "train_seconds": m.get("train_seconds"), "train_tokens": m.get("train_tokens"),
                     "total_flos": m.get("total_flos"), "peak_gpu_memory_mb": m.get("peak_gpu_memory_mb"),
                     "device": m.get("device"), "path": str(p),
                     "predictions": str(Path(p).with_name("predictions.tsv"))})
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def read_predictions(path: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``{split: (idx, labels, predictions)}`` of one cell's predictions.tsv, sorted by idx."""
    df = read_tsv(path, text_columns=("split",))
    out = {}
    for split, g in df.groupby("split", sort=False):
        g = g.sort_values("idx")
        out[split] = (g["idx"].to_numpy(), g["label"].to_numpy(), g["prediction"].to_numpy())
    return out


# --- probe tables ----------------------------------------------------------------------------------------


def write_probe_report(probe: pd.DataFrame, out_csv, out_md, out_tex=None) -> None:
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
        lines += [f"## {title}", "", _markdown(_probe_wide(probe, metric)), ""]
    write_text(out_md, "\n".join(lines))
    if out_tex is not None:
        wide = _probe_wide(probe, "top1")
        write_text(out_tex, _latex(wide, best=_best_mask(_probe_wide(probe, "top1", raw=True), axis=1),
                                   caption="Top-1 reconstruction of the input tokens from each hidden layer "
                                           "(0 = embeddings) through the MLM head; best layer per model in bold.",
                                   label="tab:probe"))


def _probe_wide(probe: pd.DataFrame, metric: str, raw: bool = False) -> pd.DataFrame:
    wide = probe.pivot_table(index="model", columns="layer", values=metric, sort=False)
    wide = wide.reindex(list(dict.fromkeys(probe["model"])))
    return wide if raw else wide.map(lambda v: "" if pd.isna(v) else f"{v:.3f}")


# --- GLUE ------------------------------------------------------------------------------------------------


def _scores(runs: pd.DataFrame) -> dict[tuple[str, str], dict[int, float]]:
    out: dict[tuple[str, str], dict[int, float]] = {}
    for (model, task), grp in runs.groupby(["model", "task"], sort=False):
        out[(model, task)] = {int(s): (math.nan if d else v * SCALE)
                              for s, v, d in zip(grp["seed"], grp["score"], grp["diverged"])}
    return out


def _by_seed(scores, model, task, tasks) -> dict[int, float]:
    if task != "average":
        return scores.get((model, task), {})
    per_task = [scores.get((model, t), {}) for t in tasks]
    if not per_task or not all(per_task):
        return {}
    common = set.intersection(*(set(d) for d in per_task))
    return {s: float(np.mean([d[s] for d in per_task])) for s in sorted(common)}


def glue_summary(runs: pd.DataFrame, bases: dict[str, str], tasks: Sequence[str]) -> pd.DataFrame:
    """Long table: one row per (model, task) plus one per model for the GLUE average (task ``average``).

    Columns: model, base, task, n_seeds, n_diverged, mean, sd, ci_lo, ci_hi, delta_mean, delta_sd, delta_n
    (scores x100; deltas paired by seed against the base; empty for base models).
    """
    scores = _scores(runs)
    rows = []
    for model in bases:
        for task in list(tasks) + ["average"]:
            by_seed = _by_seed(scores, model, task, tasks)
            if not by_seed:
                continue
            s = stats.summarize(by_seed.values())
            row = {"model": model, "base": bases[model], "task": task, "n_seeds": len(by_seed),
                   "n_diverged": sum(1 for v in by_seed.values() if not math.isfinite(v)),
                   **{k: v for k, v in s.as_dict().items() if k != "n"}}
            if bases[model] != model:
                d = stats.summarize(_paired_diffs(by_seed, _by_seed(scores, bases[model], task, tasks)))
                row.update(delta_mean=d.mean, delta_sd=d.sd, delta_n=d.n)
            rows.append(row)
    cols = ["model", "base", "task", "n_seeds", "n_diverged", "mean", "sd", "ci_lo", "ci_hi",
            "delta_mean", "delta_sd", "delta_n"]
    return pd.DataFrame(rows).reindex(columns=cols)


def _paired_diffs(variant: dict[int, float], base: dict[int, float]) -> list[float]:
    return [variant[s] - base[s] for s in sorted(set(variant) & set(base))
            if math.isfinite(variant[s]) and math.isfinite(base[s])]


SIG_COLUMNS = ["variant", "base", "task", "delta", "delta_sd", "n_pairs", "d_z", "p_seeds", "p_seeds_holm",
               "seeds_needed",
               "boot_delta", "boot_lo", "boot_hi", "p_boot", "p_boot_holm", "survives_boot", "survives_seeds"]


def compare(runs: pd.DataFrame, bases: dict[str, str], tasks: Sequence[str], *, alpha: float = 0.05,
            n_boot: int = 1000, power: float = 0.8, seed: int = 0) -> pd.DataFrame:
    """Every variant against its base on every task and on the average: tests, effect sizes, Holm."""
    scores = _scores(runs)
    paths = {(r.model, r.task, int(r.seed)): r.predictions for r in runs.itertuples()}
    rows = []
    for variant, base in bases.items():
        if variant == base:
            continue
        for task in list(tasks) + ["average"]:
            diffs = _paired_diffs(_by_seed(scores, variant, task, tasks), _by_seed(scores, base, task, tasks))
            if not diffs:
                continue
            dz = stats.cohens_dz(diffs)
            boot = _bootstrap(paths, base, variant, tasks if task == "average" else [task], n_boot, seed)
            rows.append({"variant": variant, "base": base, "task": task, "delta": float(np.mean(diffs)),
                         "delta_sd": float(np.std(diffs, ddof=1)) if len(diffs) > 1 else math.nan,
                         "n_pairs": len(diffs), "d_z": dz, "p_seeds": stats.sign_flip_test(diffs),
                         "seeds_needed": max(stats.seeds_needed(dz, alpha, power), stats.min_seeds_sign_flip(alpha)),
                         "boot_delta": boot.delta * SCALE, "boot_lo": boot.ci_lo * SCALE,
                         "boot_hi": boot.ci_hi * SCALE, "p_boot": boot.p})
    table = pd.DataFrame(rows).reindex(columns=SIG_COLUMNS)
    if table.empty:
        return table
    family = table["task"] != "average"  # Holm across tasks x variants; the average is reported unadjusted
    for col in ("p_seeds", "p_boot"):
        table.loc[family, f"{col}_holm"] = stats.holm(table.loc[family, col].to_numpy())
    table["survives_boot"] = table["p_boot_holm"] < alpha
    table["survives_seeds"] = table["p_seeds_holm"] < alpha
    return table


def _bootstrap(paths, base: str, variant: str, tasks: Sequence[str], n_boot: int, seed: int) -> stats.Bootstrap:
    """Paired bootstrap of the (average) task score over the dev examples of ``tasks``, seeds paired."""
    labels, base_preds, var_preds = {}, [], []
    seeds = sorted({s for (m, t, s) in paths if m == base} & {s for (m, t, s) in paths if m == variant})
    seeds = [s for s in seeds if all((m, t, s) in paths for m in (base, variant) for t in tasks)]
    if not seeds:
        return stats.Bootstrap(math.nan, math.nan, math.nan, math.nan, n_boot)
    for s in seeds:
        b_all, v_all = {}, {}
        for t in tasks:
            b, v = read_predictions(paths[(base, t, s)]), read_predictions(paths[(variant, t, s)])
            for split in get_task(t).dev_splits:
                idx, y, pb = b[split]
                idx_v, y_v, pv = v[split]
                if not (np.array_equal(idx, idx_v) and np.array_equal(y, y_v)):
                    raise ValueError(f"{base} and {variant} were evaluated on different {t} {split} examples")
                labels[(t, split)] = y
                b_all[(t, split)], v_all[(t, split)] = pb, pv
        base_preds.append(b_all)
        var_preds.append(v_all)

    def score(outputs):
        return np.mean([batched_task_score(t, {sp: outputs[(t, sp)] for sp in get_task(t).dev_splits})
                        for t in tasks], axis=0)

    return stats.paired_bootstrap(score, labels, base_preds, var_preds, n_resamples=n_boot, seed=seed)


def write_glue_report(summary: pd.DataFrame, significance: pd.DataFrame, tasks: Sequence[str], out_csv, out_md,
                      out_tex, out_sig_csv, *, alpha: float = 0.05, power: float = 0.8) -> None:
    with atomic_path(out_csv) as tmp:
        summary.to_csv(tmp, index=False)
    with atomic_path(out_sig_csv) as tmp:
        significance.to_csv(tmp, index=False)
    columns = list(tasks) + ["average"]
    marks = _marks(significance)
    wide, means = {}, {}
    for _, r in summary.iterrows():
        cell = _pm(r["mean"], r["sd"]) + marks.get((r["model"], r["task"]), "")
        if r["n_diverged"]:
            cell += f" ({int(r['n_diverged'])} diverged)"
        wide.setdefault(r["model"], {})[r["task"]] = cell
        means.setdefault(r["model"], {})[r["task"]] = r["mean"]
    models = list(dict.fromkeys(summary["model"]))
    table = pd.DataFrame.from_dict(wide, orient="index").reindex(index=models, columns=columns)
    n_seeds = summary.groupby("model", sort=False)["n_seeds"].max().reindex(models)
    table.insert(0, "seeds", n_seeds.astype("Int64").astype(str))
    n = int(summary["n_seeds"].max()) if len(summary) else 0
    min_seeds = stats.min_seeds_sign_flip(alpha)
    lines = [
        "# GLUE dev scores", "",
        "Task score x100, mean ± sd over seeds. A task's score is the GLUE benchmark's: the mean of its metrics "
        "(MRPC, QQP: F1 and accuracy; STS-B: Pearson and Spearman; MNLI: matched and mismatched accuracy); "
        "`average` is the GLUE average, the mean of the task scores, computed per seed.",
        f"{MARK_BOOT}: the difference to the base survives the paired bootstrap over dev examples, "
        f"{MARK_SEED}: it survives the sign-flip test over seeds; both Holm-adjusted across tasks x variants at "
        f"alpha = {alpha}.", "",
        _markdown(table.fillna("")), ""]
    if not significance.empty:
        sig = significance.copy()
        show = pd.DataFrame({
            "variant": sig["variant"], "task": sig["task"],
            "Δ ± sd (seeds)": [_signed(d, sd) for d, sd in zip(sig["delta"], sig["delta_sd"])],
            "pairs": sig["n_pairs"], "d_z": sig["d_z"].map(_fmt2),
            "p seeds (Holm)": [f"{_fmtp(a)} ({_fmtp(b)})" for a, b in zip(sig["p_seeds"], sig["p_seeds_holm"])],
            "seeds needed": sig["seeds_needed"].map(lambda v: "∞" if not math.isfinite(v) else str(int(v))),
            "Δ bootstrap [95% CI]": [f"{d:+.2f} [{lo:+.2f}, {hi:+.2f}]" if math.isfinite(d) else "n/a"
                                     for d, lo, hi in zip(sig["boot_delta"], sig["boot_lo"], sig["boot_hi"])],
            "p boot (Holm)": [f"{_fmtp(a)} ({_fmtp(b)})" for a, b in zip(sig["p_boot"], sig["p_boot_holm"])],
        })
        lines += [
            "## Variant minus base", "",
            "Δ ± sd (seeds): mean and sd of the per-seed differences (same seed = same classifier-head "
            "initialisation and data "
            "order); d_z: that mean over the differences' sd; p seeds: exact two-sided sign-flip test; seeds "
            f"needed: seeds for which a paired t-test detects an effect of this d_z with {power:.0%} power at alpha = "
            f"{alpha} (never fewer than {min_seeds}). Δ bootstrap: resampling the dev examples, all seeds on the "
            "same resample, with its 95% percentile interval; p boot: its two-sided p-value. The `average` rows "
            "are not part of the Holm family.", "",
            (f"With {n} seeds the smallest p-value a sign-flip test can give is 2/2^{n} = {2 / 2 ** n:.3g}; it "
             f"takes at least {min_seeds} seeds to reach p < {alpha}.") if n else "", "",
            _markdown(show, index=False), ""]
    write_text(out_md, "\n".join(lines))
    best = pd.DataFrame(means).T.reindex(index=models, columns=columns)
    write_text(out_tex, _latex(table.drop(columns="seeds"), best=_best_mask(best, axis=0),
                               caption=f"GLUE dev scores (x100), mean $\\pm$ sd over seeds; best per column in bold. "
                                       f"{MARK_BOOT}/\\textdagger: difference to the base survives the paired "
                                       f"bootstrap / the sign-flip test over seeds (Holm, $\\alpha={alpha}$).",
                               label="tab:glue"))


def _marks(significance: pd.DataFrame) -> dict[tuple[str, str], str]:
    out = {}
    for r in significance.itertuples():
        out[(r.variant, r.task)] = (MARK_BOOT if r.survives_boot else "") + (MARK_SEED if r.survives_seeds else "")
    return out


# --- cost ------------------------------------------------------------------------------------------------


def read_benchmark(path: str | Path) -> dict:
    """One Snakemake ``benchmark:`` file: wall seconds and peak resident memory (MB)."""
    df = pd.read_csv(path, sep="\t")
    return {"wall_s": float(df["s"].iloc[-1]), "max_rss_mb": float(pd.to_numeric(df["max_rss"], "coerce").iloc[-1])}


def cost_table(runs: pd.DataFrame, benchmarks: dict[tuple[str, str, int], str], summary: pd.DataFrame,
               bases: dict[str, str]) -> pd.DataFrame:
    """Per model x task: job wall time, peak memory, training throughput, FLOPs, device; for a variant, the
    extra compute-hours over its base and the points gained per extra compute-hour."""
    rows = []
    for (model, task), g in runs.groupby(["model", "task"], sort=False):
        bench = [read_benchmark(benchmarks[(model, task, int(s))]) for s in g["seed"]
                 if (model, task, int(s)) in benchmarks]
        tokens_per_s = (g["train_tokens"] / g["train_seconds"]).astype(float)
        rows.append({"model": model, "base": bases.get(model, model), "task": task, "runs": len(g),
                     "wall_h_per_run": np.mean([b["wall_s"] for b in bench]) / 3600 if bench else math.nan,
                     "peak_rss_gb": max((b["max_rss_mb"] for b in bench), default=math.nan) / 1024,
                     "peak_gpu_gb": pd.to_numeric(g["peak_gpu_memory_mb"], "coerce").max() / 1024,
                     "train_tokens_per_s": float(tokens_per_s.mean()),
                     "tflops_per_run": float(pd.to_numeric(g["total_flos"], "coerce").mean()) / 1e12,
                     "device": ", ".join(sorted(set(map(str, g["device"].dropna())))) or "n/a"})
    cost = pd.DataFrame(rows)
    if cost.empty:
        return cost
    key = cost.set_index(["model", "task"])
    means = summary.set_index(["model", "task"])["mean"]
    extra, per_hour = [], []
    for r in cost.itertuples():
        if r.model == r.base or (r.base, r.task) not in key.index:
            extra.append(math.nan)
            per_hour.append(math.nan)
            continue
        dh = r.wall_h_per_run - key.loc[(r.base, r.task), "wall_h_per_run"]
        gain = means.get((r.model, r.task), math.nan) - means.get((r.base, r.task), math.nan)
        extra.append(dh)
        per_hour.append(gain / dh if dh > 0 else math.nan)
    cost["extra_h_per_run"] = extra
    cost["points_per_extra_hour"] = per_hour
    return cost


def write_cost_report(cost: pd.DataFrame, out_csv, out_md) -> None:
    with atomic_path(out_csv) as tmp:
        cost.to_csv(tmp, index=False)
    show = cost.copy()
    for col, fmt in (("wall_h_per_run", "{:.3f}"), ("peak_rss_gb", "{:.2f}"), ("peak_gpu_gb", "{:.2f}"),
                     ("train_tokens_per_s", "{:,.0f}"), ("tflops_per_run", "{:.2f}"), ("extra_h_per_run", "{:+.3f}"),
                     ("points_per_extra_hour", "{:+.1f}")):
        if col in show:
            show[col] = show[col].map(lambda v, f=fmt: "" if not _finite(v) else f.format(v))
    lines = ["# Cost", "",
             "Per fine-tuning run (mean over seeds): the job's wall time and peak resident memory (Snakemake "
             "`benchmark:`), peak GPU memory, training tokens per second, the Trainer's FLOP count, the device. For "
             "a variant: the extra hours per run over its base, and the points (x100) gained per extra hour. Hours "
             "are job hours on the device shown: GPU-hours on a one-GPU job.", "",
             _markdown(show, index=False), ""]
    write_text(out_md, "\n".join(lines))


# --- output change ---------------------------------------------------------------------------------------


def write_change_report(change: pd.DataFrame, out_csv, out_md, out_tex) -> None:
    with atomic_path(out_csv) as tmp:
        change.to_csv(tmp, index=False)
    show = change[["variant", "base", "kind", "touched", "kl", "agree_top1", "agree_lo", "agree_hi",
                   "top1_base", "top1_variant", "n_tokens"]].copy()
    show["agree_top1"] = [f"{a:.3f} [{lo:.3f}, {hi:.3f}]" for a, lo, hi in
                          zip(show.pop("agree_top1"), show.pop("agree_lo"), show.pop("agree_hi"))]
    show["kl"] = show["kl"].map(lambda v: f"{v:.3g}")
    for col in ("top1_base", "top1_variant"):
        show[col] = show[col].map(lambda v: f"{v:.3f}")
    lines = ["# Output change: variant vs base", "",
             "On the probe sentences, the variant's final masked-LM distribution against its base's: mean "
             "KL(base || variant) per token (nats), top-1 agreement (95% bootstrap interval over sentences), and "
             "how often each model's last layer gives back the input token.", "",
             _markdown(show.set_index("variant")), ""]
    write_text(out_md, "\n".join(lines))
    write_text(out_tex, _latex(show.set_index("variant"), best=None,
                               caption="Change of the final MLM distribution from removing or duplicating layers.",
                               label="tab:output-change"))


# --- formatting ------------------------------------------------------------------------------------------


def _pm(mean, sd) -> str:
    if not _finite(mean):
        return "n/a"
    return f"{mean:.2f} ± {sd:.2f}" if _finite(sd) else f"{mean:.2f}"


def _signed(mean, sd) -> str:
    if not _finite(mean):
        return "n/a"
    return f"{mean:+.2f} ± {sd:.2f}" if _finite(sd) else f"{mean:+.2f}"


def _fmt2(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}"


def _fmtp(v) -> str:
    return "n/a" if not _finite(v) else (f"{v:.3f}" if v >= 0.001 else f"{v:.1e}")


def _finite(x) -> bool:
    try:
        return x is not None and math.isfinite(float(x))
    except (TypeError, ValueError):
        return False


def _markdown(df: pd.DataFrame, index: bool = True) -> str:
    return df.to_markdown(index=index, disable_numparse=True)


def _best_mask(values: pd.DataFrame, axis: int) -> pd.DataFrame:
    """True where a value is the largest of its column (axis=0) or row (axis=1)."""
    v = values.apply(pd.to_numeric, errors="coerce")
    best = v.max(axis=axis)
    return v.eq(best, axis=1 - axis) if axis == 0 else v.eq(best, axis=0)


def _latex(table: pd.DataFrame, *, best: pd.DataFrame | None, caption: str, label: str) -> str:
    """A booktabs table: string cells, LaTeX-escaped, with the ``best`` cells in bold."""
    escaped = table.fillna("").astype(str).map(_tex_escape)
    escaped.index = [_tex_escape(str(i)) for i in escaped.index]
    escaped.columns = [_tex_escape(str(c)) for c in escaped.columns]
    styler = escaped.style
    if best is not None:
        mask = best.reindex(index=table.index, columns=table.columns).fillna(False).astype(bool).to_numpy()
        styler = styler.apply(lambda _: np.where(mask, "textbf:--rwrap;", ""), axis=None)
    return styler.to_latex(hrules=True, caption=caption, label=label, position="htbp",
                           column_format="l" + "r" * table.shape[1]) + "\n"


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
        "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "±": r"$\pm$", "†": r"\textdagger{}",
        "Δ": r"$\Delta$", "∞": r"$\infty$"}


def _tex_escape(text: str) -> str:
    return "".join(_TEX.get(c, c) for c in text)


# --- figures ---------------------------------------------------------------------------------------------


def _figure(width=6.4, height=4.0, ncols=1):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(width, height), constrained_layout=True)
    return plt, fig, axes


def save_figure(fig, paths) -> None:
    """Save one figure to every path given (PNG and PDF), atomically."""
    import matplotlib.pyplot as plt

    for path in [paths] if isinstance(paths, (str, Path)) else paths:
        path = Path(path)
        with atomic_path(path, suffix=path.suffix) as tmp:
            fig.savefig(tmp, dpi=150, format=path.suffix.lstrip("."))
    plt.close(fig)


def plot_probe(table: pd.DataFrame, path: str | Path, title: str | None = None) -> None:
    """Top-1, top-5 and agreement with the last layer against depth, with the top-1 interval shaded."""
    plt, fig, ax = _figure()
    x = table["layer"]
    ax.fill_between(x, table["top1_lo"], table["top1_hi"], alpha=0.25, color="C0", linewidth=0)
    ax.plot(x, table["top1"], "o-", color="C0", label="top-1 = input token")
    ax.plot(x, table["top5"], "s--", color="C1", label="input token in top-5")
    ax.plot(x, table["agree_last"], "^:", color="C2", label="top-1 agrees with last layer")
    ax.set_xlabel("hidden layer (0 = embedding output)")
    ax.set_ylabel("share of input tokens")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xticks(list(x))
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left", fontsize=8)
    n_tok = int(table["n_tokens"].iloc[0])
    head = "fitted MLM head" if table["head"].iloc[0] == "fit" else "MLM head"
    ax.set_title(title or f"{table['model'].iloc[0]}: {head} on every layer ({n_tok} tokens)", fontsize=10)
    save_figure(fig, path)


def plot_probe_family(probe: pd.DataFrame, base: str, variants: Sequence[str], paths,
                      metric: str = "top1") -> None:
    """The probe curves of a base and its variants on one plot, against relative depth."""
    plt, fig, ax = _figure()
    shown = [m for m in [base] + list(variants) if (probe["model"] == m).any()]
    many = len(shown) > 8
    for i, model in enumerate(shown):
        t = probe[probe["model"] == model].sort_values("layer")
        depth = t["layer"].max()
        x = t["layer"] / depth if depth else t["layer"]
        if model == base:
            ax.plot(x, t[metric], "o-", color="black", label=f"{model} ({depth} layers)", linewidth=2, zorder=5)
            if metric == "top1" and "top1_lo" in t:
                ax.fill_between(x, t["top1_lo"], t["top1_hi"], color="black", alpha=0.15, linewidth=0)
        else:
            ax.plot(x, t[metric], "-" if many else ".--", color=plt.cm.viridis(i / max(1, len(shown) - 1)),
                    label=None if many else f"{model} ({depth} layers)", linewidth=1, alpha=0.8)
    ax.set_xlabel("relative depth (hidden layer / number of layers; 0 = embeddings)")
    ax.set_ylabel({"top1": "top-1 = input token", "agree_last": "agreement with last layer"}.get(metric, metric))
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    suffix = f" ({len(shown) - 1} variants)" if many else ""
    ax.set_title(f"MLM head on every layer: {base} and its variants{suffix}", fontsize=10)
    save_figure(fig, paths)


def plot_glue_deltas(summary: pd.DataFrame, tasks: Sequence[str], paths) -> None:
    """Per-task delta of each variant to its base (mean over seeds, error bar = sd of the paired deltas)."""
    d = summary[summary["model"] != summary["base"]]
    variants = list(dict.fromkeys(d["model"]))
    columns = list(tasks) + ["average"]
    plt, fig, ax = _figure(max(5.0, 1.1 * len(columns) + 2), 3.8)
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
    save_figure(fig, paths)


def plot_output_change(change: pd.DataFrame, paths) -> None:
    """KL and top-1 agreement of each variant's outputs with its base's, against the (first) layer touched."""
    plt, fig, (ax_kl, ax_ag) = _figure(9.6, 3.8, ncols=2)
    groups = change.dropna(subset=["first_touched"]).groupby(["base", "kind"], sort=False)
    for i, ((base, kind), g) in enumerate(groups):
        g = g.sort_values("first_touched")
        style = {"duplicate": "o-", "remove": "s--", "duplicate_block": "^:"}.get(kind, "x-")
        ax_kl.plot(g["first_touched"], g["kl"], style, color=f"C{i % 10}", label=f"{base}: {kind}")
        ax_ag.plot(g["first_touched"], g["agree_top1"], style, color=f"C{i % 10}", label=f"{base}: {kind}")
        ax_ag.fill_between(g["first_touched"], g["agree_lo"], g["agree_hi"], color=f"C{i % 10}", alpha=0.15,
                           linewidth=0)
    ax_kl.set_ylabel("KL(base || variant), nats / token")
    if (change["kl"] > 0).all():
        ax_kl.set_yscale("log")
    ax_ag.set_ylabel("top-1 agreement with base")
    ax_ag.set_ylim(-0.02, 1.02)
    for ax in (ax_kl, ax_ag):
        ax.set_xlabel("layer touched (first layer of a block)")
        ax.grid(alpha=0.3)
    ax_ag.legend(fontsize=7, loc="lower left")
    fig.suptitle("Does removing or duplicating a layer change the outputs?", fontsize=10)
    save_figure(fig, paths)

