"""Figures of the study (each with a CSV of its plotted numbers beside it)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biasdrift.d3m.scores import load_scores
from biasdrift.plots import _pyplot, save_figure, save_table

METRIC_LABELS = {
    "wga_cell": "worst-cell accuracy (test)",
    "wga_group": "worst-group accuracy (test)",
    "accuracy": "accuracy (test)",
    "balanced_accuracy": "balanced accuracy (test)",
}


def counterfactual_curves(
    summary: pd.DataFrame, selection: dict[str, Any], metrics: Sequence[str], svg_path: str | Path, csv_path: str | Path
) -> dict[str, Any]:
    """Test metric against the number removed, per method (mean +- sd over seeds), with
    the base model and the k-free baselines as horizontal reference lines and the k
    chosen on validation marked."""
    plt = _pyplot()
    test = summary[(summary["split"] == "test") & (summary["scope"] == "overall") & summary["metric"].isin(metrics)]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 4), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    curves = sorted(m for m in test["method"].unique() if (test[test["method"] == m]["k"] != "none").any())
    references = sorted(set(test["method"]) - set(curves))
    for ax, metric in zip(axes[0], metrics, strict=True):
        part = test[test["metric"] == metric]
        base = part[part["method"] == "base"]
        for i, method in enumerate(curves):
            rows = pd.concat([base, part[part["method"] == method]]).sort_values("k_count")
            ax.errorbar(
                rows["k_count"],
                rows["mean"],
                yerr=rows["sd"].fillna(0),
                marker="o",
                capsize=3,
                color=colours[i % len(colours)],
                label=method,
            )
            chosen = selection["methods"].get(method, {}).get("k")
            mark = rows[rows["k"] == chosen]
            if len(mark):
                ax.scatter(
                    mark["k_count"],
                    mark["mean"],
                    s=160,
                    facecolors="none",
                    edgecolors=colours[i % len(colours)],
                    linewidths=2,
                )
        for j, method in enumerate(references):
            row = part[part["method"] == method]
            if len(row):
                style = ":" if method == "base" else "--"
                ax.axhline(
                    row["mean"].iloc[0],
                    linestyle=style,
                    color=colours[(len(curves) + j) % len(colours)],
                    label=f"{method} (removes {row['k_count'].iloc[0]:.0f})",
                )
        ax.set_xlabel("training examples removed")
        ax.set_ylabel(METRIC_LABELS.get(metric, metric))
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize="small")
    fig.suptitle("Counterfactual retraining (mean +- sd over seeds; circle = k chosen on validation)")
    save_table(test.sort_values(["metric", "method", "k_count"]), csv_path)
    save_figure(fig, svg_path)
    return {"methods": curves, "references": references}


def _heatmap(ax, matrix: pd.DataFrame, title: str, cmap: str = "RdBu") -> None:
    limit = float(np.nanmax(np.abs(matrix.to_numpy()))) or 1.0
    image = ax.imshow(matrix.to_numpy(), cmap=cmap, vmin=-limit, vmax=limit)
    ax.set_xticks(range(matrix.shape[1]), matrix.columns, rotation=90, fontsize="small")
    ax.set_yticks(range(matrix.shape[0]), matrix.index, fontsize="small")
    ax.set_title(title, fontsize="medium")
    ax.figure.colorbar(image, ax=ax, shrink=0.8)


def attribution_figures(
    methods: Sequence[str],
    data_path: str | Path,
    scores_paths: Sequence[str | Path],
    uids_paths: Sequence[str | Path],
    align_paths: Sequence[str | Path],
    query_split: str,
    top_n: int,
    out_dir: str | Path,
    pair: Sequence[str] = (),
) -> dict[str, Any]:
    """score_heatmap (mean score, train cell x query cell), alignment_cells (mean A per
    cell), top_harmful (the lowest-A training texts) and alignment_scatter (A of the two
    methods in ``pair``, default the first two, with Spearman's rho)."""
    from scipy.stats import spearmanr

    from biasdrift.d3m.data import read_world, split_frame

    plt = _pyplot()
    out_dir = Path(out_dir)
    frame = read_world(data_path)
    train, query = split_frame(frame, "train"), split_frame(frame, query_split)
    tables = {
        m: pd.read_parquet(p).set_index("uid").loc[train["uid"]].reset_index()
        for m, p in zip(methods, align_paths, strict=True)
    }
    info: dict[str, Any] = {}

    fig, axes = plt.subplots(1, len(methods), figsize=(5 * len(methods), 4.2), squeeze=False)
    heat_rows = []
    for ax, method, sp, up in zip(axes[0], methods, scores_paths, uids_paths, strict=True):
        scores, _, _ = load_scores(sp, up, train["uid"].tolist(), query["uid"].tolist())
        by_query = pd.DataFrame(scores.T).groupby(query["cell"].to_numpy()).mean().T  # [n_train, q cells]
        matrix = by_query.groupby(train["cell"].to_numpy()).mean()  # [train cells, query cells]
        scale = float(np.abs(scores).mean()) or 1.0
        _heatmap(ax, matrix / scale, f"{method}: mean score / mean |score|")
        ax.set_xlabel(f"query cell ({query_split})")
        ax.set_ylabel("training cell")
        long = (matrix / scale).stack().rename("score").reset_index()
        long.columns = ["train_cell", "query_cell", "score"]
        heat_rows.append(long.assign(method=method))
    save_table(pd.concat(heat_rows), out_dir / "score_heatmap.csv")
    save_figure(fig, out_dir / "score_heatmap.svg")

    fig, axes = plt.subplots(1, len(methods), figsize=(4.5 * len(methods), 3.6), squeeze=False)
    cell_rows = []
    for ax, method in zip(axes[0], methods, strict=True):
        table = tables[method]
        scale = float(table["A"].abs().mean()) or 1.0
        matrix = table.groupby(["group", "label"])["A"].mean().unstack("label") / scale
        _heatmap(ax, matrix, f"{method}: mean alignment / mean |A|")
        ax.set_xlabel("label")
        ax.set_ylabel("group")
        cell_rows.append(matrix.stack().rename("alignment").reset_index().assign(method=method))
    save_table(pd.concat(cell_rows), out_dir / "alignment_cells.csv")
    save_figure(fig, out_dir / "alignment_cells.svg")

    texts = train.set_index("uid")["text"]
    mislabeled = train.set_index("uid")["mislabeled"].map({True: "yes", False: ""}) if "mislabeled" in train else {}
    top_rows = []
    for method in methods:
        table = tables[method].nsmallest(top_n, "A")
        for rank, row in enumerate(table.itertuples(index=False)):
            top_rows.append(
                {
                    "method": method,
                    "rank": rank + 1,
                    "uid": row.uid,
                    "cell": row.cell,
                    "A": row.A,
                    "mislabeled": mislabeled.get(row.uid, ""),
                    "text": texts[row.uid][:90],
                }
            )
    top = pd.DataFrame(top_rows)
    save_table(top, out_dir / "top_harmful.csv")
    fig, axes = plt.subplots(len(methods), 1, figsize=(11, 0.26 * top_n * len(methods) + 1), squeeze=False)
    for ax, method in zip(axes[:, 0], methods, strict=True):
        part = top[top["method"] == method]
        ax.axis("off")
        ax.set_title(f"{method}: the {len(part)} most harmful training examples (lowest alignment)", fontsize="medium")
        cells = [[r.rank, r.cell, f"{r.A:.3g}", r.mislabeled, r.text] for r in part.itertuples()]
        if cells:
            table = ax.table(
                cellText=cells,
                colLabels=["rank", "cell", "A", "mislabeled", "text"],
                loc="upper center",
                cellLoc="left",
                colWidths=[0.05, 0.07, 0.09, 0.09, 0.70],
            )
            table.auto_set_font_size(False)
            table.set_fontsize(7)
        info[f"{method}_top_cell_share"] = (
            float((part["cell"] == part["cell"].mode().iloc[0]).mean()) if len(part) else float("nan")
        )
    save_figure(fig, out_dir / "top_harmful.svg")

    fig, ax = plt.subplots(figsize=(5.5, 5))
    pair = list(pair) or list(methods[:2])
    if len(pair) == 1:
        pair = pair * 2
    x, y = tables[pair[0]]["A"], tables[pair[1]]["A"]
    rho = float(spearmanr(x, y)[0]) if pair[0] != pair[1] else float("nan")
    # percentile ranks: alignments are heavy-tailed, and Spearman's rho is about ranks
    xr, yr = x.rank(pct=True), y.rank(pct=True)
    for cell, idx in train.groupby("cell").groups.items():
        ax.scatter(xr.iloc[idx], yr.iloc[idx], s=8, alpha=0.6, label=cell)
    ax.set_xlabel(f"alignment rank, {pair[0]} (0 = most harmful)")
    ax.set_ylabel(f"alignment rank, {pair[1]} (0 = most harmful)")
    ax.set_title(f"Spearman rho = {rho:.3f}")
    ax.legend(fontsize="x-small", markerscale=2, ncol=2)
    columns = {"uid": train["uid"], "cell": train["cell"], f"A_{pair[0]}": x.to_numpy(), f"A_{pair[1]}": y.to_numpy()}
    columns.update({f"rank_{pair[0]}": xr.to_numpy(), f"rank_{pair[1]}": yr.to_numpy()})
    save_table(
        pd.DataFrame(columns),
        out_dir / "alignment_scatter.csv",
    )
    save_figure(fig, out_dir / "alignment_scatter.svg")
    info["spearman"] = {"methods": pair, "rho": rho}
    return json.loads(json.dumps(info))


SWEEP_ORDER = ("base", "random", "balance")  # then the D3M methods and heuristics, sorted


def sweep_figure(table: pd.DataFrame, svg_path: str | Path, csv_path: str | Path) -> dict[str, Any]:
    """Per world (x), every method's test metric over seeds with its interval; a star
    above a D3M method that beats random removal beyond 2 SE, a ring where it falls below
    balancing beyond 2 SE."""
    plt = _pyplot()
    worlds = sorted(table["world"].unique())
    methods = [m for m in SWEEP_ORDER if m in set(table["method"])]
    methods += sorted(set(table["method"]) - set(methods))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, ax = plt.subplots(figsize=(1.3 * len(worlds) * max(1, len(methods) / 4) + 3, 4.6))
    width = 0.8 / len(methods)
    for i, method in enumerate(methods):
        part = table[table["method"] == method].set_index("world").reindex(worlds)
        x = np.arange(len(worlds)) + (i - (len(methods) - 1) / 2) * width
        err = np.vstack([part["mean"] - part["ci_low"], part["ci_high"] - part["mean"]])
        ax.errorbar(
            x,
            part["mean"],
            yerr=np.nan_to_num(err).clip(min=0),
            fmt="o",
            capsize=2,
            color=colours[i % len(colours)],
            label=method,
        )
        top = part["ci_high"].fillna(part["mean"])
        for xi, hit, y in zip(x, part["beats_random"].fillna(False), top, strict=True):
            if hit:
                ax.text(xi, y + 0.02, "*", ha="center", fontsize=14, color=colours[i % len(colours)])
        low = part["below_balance"].fillna(False).astype(bool)
        ax.scatter(x[low.to_numpy()], part["mean"][low], s=140, facecolors="none", edgecolors="black")
    labels = [f"{w}\n{d}" for w, d in table.groupby("world")["world_params"].first().reindex(worlds).items()]
    ax.set_xticks(np.arange(len(worlds)), [lab.replace(", ", "\n", 1) for lab in labels], fontsize="x-small")
    metric = table["metric"].iloc[0]
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.set_ylim(-0.05, 1.1)  # 3-seed t-intervals can reach beyond [0, 1]: the CSV has them
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))  # clear of the stars
    ax.set_title("D3M across worlds (* beats random removal beyond 2 SE; ring: below balancing)", fontsize="medium")
    save_table(table, csv_path)
    save_figure(fig, svg_path)
    return {"worlds": len(worlds), "methods": methods}
