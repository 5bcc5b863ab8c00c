"""Figures of study "circuits" (matplotlib, SVG, with the CSV of the plotted numbers
beside each figure, via :mod:`biasdrift.plots`)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from biasdrift.circuits.prompts import display
from biasdrift.plots import _pyplot, save_figure, save_table

PANEL_METRIC = {"demographic": "m2", "gender": "g2"}


def _grid(n: int, ncols: int = 3):
    plt = _pyplot()
    ncols = max(1, min(ncols, n))
    nrows = max(1, math.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.6 * nrows), squeeze=False, layout="constrained")
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, list(axes.flat)


def plot_bias_shift(summary_csv: str | Path, svg: str | Path, csv: str | Path) -> dict:
    """Mean M2 (demographic) / G2 (gender) per group class of the base model's split, for
    the base model and every fine-tune, with 95% bootstrap intervals; one panel per
    (model, template, corruption)."""
    data = pd.read_csv(summary_csv)
    data = data[(data.grouping == "split") & (data.metric == data.bias.map(PANEL_METRIC))]
    if data.empty:
        raise ValueError(f"{summary_csv}: nothing to plot")
    panels = list(data.groupby(["model", "template", "corruption"], sort=True))
    fig, axes = _grid(len(panels))
    for ax, ((model, template, corruption), part) in zip(axes, panels, strict=False):
        fts = ["base", *sorted(set(part.ft) - {"base"})]
        groups = sorted(part.group.unique())
        width = 0.8 / len(fts)
        for j, ft in enumerate(fts):
            rows = part[part.ft == ft].set_index("group").reindex(groups)
            x = np.arange(len(groups)) + (j - (len(fts) - 1) / 2) * width
            err = np.vstack([rows["mean"] - rows["lo"], rows["hi"] - rows["mean"]])
            ax.bar(x, rows["mean"], width, yerr=err, capsize=3, label=ft)
        ax.set_xticks(
            np.arange(len(groups)),
            [f"{g}\n(n={int(part[(part.group == g) & (part.ft == 'base')].n.sum())})" for g in groups],
        )
        metric = PANEL_METRIC[part.bias.iloc[0]]
        ax.set_ylabel(f"mean {display(metric)}")
        ax.set_ylim(0, 1)
        ax.set_title(f"{model} {display(template)} {display(corruption)}", fontsize="medium")
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize="small", title="fine-tune")
    fig.suptitle("Bias by base-model group split, before and after fine-tuning (95% bootstrap CI)")
    save_table(data.reset_index(drop=True), csv)
    save_figure(fig, svg)
    return {"panels": len(panels)}


def plot_comparisons(json_paths: list[str], svg: str | Path, csv: str | Path) -> dict:
    """The original's three bars (Pretrained Only, Common, Fine-tuned Only) per comparison."""
    rows = []
    for path in json_paths:
        record = json.loads(Path(path).read_text())
        run = record["run"]
        ft = Path(path).parts[-3]
        label = f"{record['model']} {ft}\n{display(run['template'])} {display(run['metric'])}"
        change = record["metric_on_eap_prompts"]["delta"]
        rows.append(
            {
                "label": label,
                "model": record["model"],
                "ft": ft,
                "pretrained_only": record["pretrained_edges"] - record["intersection"],
                "common": record["intersection"],
                "finetuned_only": record["finetuned_edges"] - record["intersection"],
                "overlap_percent": record["overlap_percent"],
                "metric_change": change,
            }
        )
    if not rows:
        raise ValueError("no comparison to plot")
    frame = pd.DataFrame(rows)
    fig, axes = _grid(len(frame))
    colours = ("#ff9999", "#66b3ff", "#99ff99")
    names = ("Pretrained Only", "Common", "Fine-tuned Only")
    for ax, (_, row) in zip(axes, frame.iterrows(), strict=False):
        counts = [row.pretrained_only, row.common, row.finetuned_only]
        total = max(sum(counts), 1)
        bars = ax.bar(names, counts, color=colours)
        for bar, count in zip(bars, counts, strict=True):
            ax.annotate(
                f"{count}\n({100 * count / total:.1f}%)",
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize="small",
            )
        ax.set_ylabel("Number of Edges")
        ax.set_ylim(0, max(counts) * 1.3 + 1)
        ax.set_title(
            f"{row.label}\noverlap {row.overlap_percent:.1f}%, Δmetric {row.metric_change:+.3f}", fontsize="small"
        )
        ax.tick_params(axis="x", labelsize="small")
    save_table(frame, csv)
    save_figure(fig, svg)
    return {"comparisons": len(frame)}


def plot_stability(matrix_csv, layerwise_csv, model: str, heatmap_svg, heatmap_csv, layers_svg, layers_csv) -> dict:
    """Jaccard overlap heatmap of the runs of one model, and the share of top edges per
    child layer (true layer count; logits as the last bin)."""
    plt = _pyplot()
    matrix = pd.read_csv(matrix_csv, index_col="run")
    size = max(4.0, 0.7 * len(matrix) + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(matrix.to_numpy(), cmap="YlOrRd", vmin=0, vmax=100)
    ax.set_xticks(range(len(matrix)), matrix.columns, rotation=60, ha="right", fontsize="small")
    ax.set_yticks(range(len(matrix)), matrix.index, fontsize="small")
    for i in range(len(matrix)):
        for j in range(len(matrix)):
            ax.text(j, i, f"{matrix.iat[i, j]:.1f}", ha="center", va="center", fontsize="x-small")
    fig.colorbar(image, ax=ax, label="top-edge overlap (Jaccard %)")
    ax.set_title(f"{model}: circuit stability across templates and metrics")
    save_table(matrix.reset_index(), heatmap_csv)
    save_figure(fig, heatmap_svg)

    layers = pd.read_csv(layerwise_csv)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for run, part in layers.groupby("run", sort=True):
        ax.plot(part.layer, part.percent, marker="o", label=run)
    ticks = layers.drop_duplicates("layer").sort_values("layer")
    ax.set_xticks(ticks.layer, ticks.label)
    ax.set_xlabel("layer of the edge's child")
    ax.set_ylabel("% of top edges")
    ax.set_title(f"{model}: where the top edges end")
    ax.legend(fontsize="x-small")
    ax.grid(alpha=0.3)
    save_table(layers, layers_csv)
    save_figure(fig, layers_svg)
    return {"runs": len(matrix)}


def plot_ablation(ablation_csvs: list[str], svg, csv, exact_svg, exact_csv) -> dict:
    """Metric against edges removed (one line per model and run) and, where the exact
    check ran, EAP score against exact single-edge patching."""
    plt = _pyplot()
    frames, exacts = [], []
    for path in ablation_csvs:
        path = Path(path)
        model, ft, run = path.parts[-5], path.parts[-4], path.parts[-2]
        frames.append(pd.read_csv(path).assign(model=model, ft=ft, run=run))
        exact = pd.read_csv(path.with_name("exact_check.csv"))
        if len(exact):
            exacts.append(exact.assign(model=model, run=run))
    data = pd.concat(frames, ignore_index=True).assign(curve="ablation")
    sizes = pd.concat(
        [
            pd.read_csv(Path(p).with_name("faithfulness.csv")).assign(
                model=f.model.iloc[0], ft=f.ft.iloc[0], run=f.run.iloc[0]
            )
            for p, f in zip(ablation_csvs, frames, strict=True)
        ],
        ignore_index=True,
    ).assign(curve="faithfulness")
    fig, (ax, right) = plt.subplots(1, 2, figsize=(11, 4))
    for (model, run), part in data.groupby(["model", "run"], sort=True):
        line = ax.plot(part.edges_removed, part.score, marker="o", label=f"{model} {run}")
        ax.axhline(part.full_graph.iloc[0], color=line[0].get_color(), ls=":", lw=1)
    ax.set_xlabel("top edges removed (patched to corrupted)")
    ax.set_ylabel("metric")
    ax.set_title("Ablation of top EAP edges (dotted: full graph)")
    ax.legend(fontsize="x-small")
    ax.grid(alpha=0.3)
    for (model, run), part in sizes.groupby(["model", "run"], sort=True):
        right.plot(part.circuit_edges, part.faithfulness, marker="o", label=f"{model} {run}")
    right.axhline(1.0, color="grey", ls=":", lw=1)
    right.axhline(0.0, color="grey", ls=":", lw=1)
    right.set_xscale("symlog", linthresh=1)
    right.set_xlabel("edges of the greedy circuit (all others patched)")
    right.set_ylabel("faithfulness (circuit − corrupted) / (full − corrupted)")
    right.set_title("Faithfulness against circuit size")
    right.legend(fontsize="x-small")
    right.grid(alpha=0.3)
    save_table(pd.concat([data, sizes], ignore_index=True), csv)
    save_figure(fig, svg)

    fig, ax = plt.subplots(figsize=(5, 4.5))
    exact = (
        pd.concat(exacts, ignore_index=True)
        if exacts
        else pd.DataFrame(columns=["edge", "eap", "exact", "model", "run"])
    )
    for (model, run), part in exact.groupby(["model", "run"], sort=True):
        r = np.corrcoef(part.eap, part.exact)[0, 1] if len(part) > 1 else float("nan")
        ax.scatter(part.exact, part.eap, s=8, alpha=0.6, label=f"{model} {run} (r={r:.2f})")
    if len(exact):
        lim = float(np.nanmax(np.abs(exact[["eap", "exact"]].to_numpy(dtype=float)))) * 1.05 or 1.0
        ax.plot([-lim, lim], [-lim, lim], color="grey", lw=1, ls="--")
        ax.legend(fontsize="x-small")
    else:
        ax.text(
            0.5,
            0.5,
            "exact check disabled (studies.circuits.ablation.exact_check)",
            ha="center",
            va="center",
            transform=ax.transAxes,
            fontsize="small",
        )
    ax.set_xlabel("exact single-edge patching effect")
    ax.set_ylabel("EAP score")
    ax.set_title("EAP against exact patching, every edge")
    save_table(exact, exact_csv)
    save_figure(fig, exact_svg)
    return {"curves": int(data.groupby(["model", "run"]).ngroups), "exact_points": len(exact)}
