"""Figures of study "specdec" for the report; each is written with a CSV of exactly the
plotted numbers beside it (:func:`biasdrift.plots.save_table`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from biasdrift.plots import _pyplot, save_figure, save_table

PALETTE = ("#0173b2", "#de8f05", "#029e73", "#d55e00", "#cc78bc", "#ca9161", "#fbafe4", "#949494", "#ece133", "#56b4e9")


def _colours(names) -> dict[str, str]:
    return {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(names)}


def _order(values, first: str | None = None) -> list[str]:
    """Sorted, with ``first`` (the reference condition) in front."""
    names = sorted(set(values))
    if first in names:
        names.remove(first)
        names.insert(0, first)
    return names


def _errors(frame: pd.DataFrame, centre: str = "mean") -> np.ndarray:
    return np.vstack([frame[centre] - frame["ci_lo"], frame["ci_hi"] - frame[centre]]).clip(min=0)


def share_by_category(summary: pd.DataFrame, reference: str, svg: str | Path, csv: str | Path, title: str) -> dict:
    """Mean metric per category (bars) with two-way cluster bootstrap CIs, hue = condition."""
    plt = _pyplot()
    conditions = _order(summary["condition"], reference)
    categories = sorted(set(summary["category"]))
    colours = _colours(conditions)
    width = 0.8 / len(conditions)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.4 * len(categories) + 2), 4))
    for j, condition in enumerate(conditions):
        part = summary[summary["condition"] == condition].set_index("category").reindex(categories)
        x = np.arange(len(categories)) + (j - (len(conditions) - 1) / 2) * width
        ax.bar(x, part["mean"], width, yerr=_errors(part), capsize=3, color=colours[condition], label=condition)
    ax.set_xticks(np.arange(len(categories)), categories)
    ax.set_ylabel(summary["metric"].iloc[0].replace("_", " "))
    ax.set_ylim(0, 1)
    ax.set_title(title, fontsize="medium")
    ax.legend(title="condition", fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    save_table(summary, csv)
    save_figure(fig, svg)
    return {"bars": len(summary)}


def identity_distribution(means: pd.DataFrame, contrast: list[str], reference: str, svg, csv, title: str) -> dict:
    """Per-identity means of the two contrasted groups (box + points), one panel per condition."""
    plt = _pyplot()
    data = means[means["category"].isin(contrast)].reset_index(drop=True)
    conditions = _order(data["condition"], reference)
    fig, axes = plt.subplots(1, len(conditions), figsize=(2.6 * len(conditions) + 1, 3.8), sharey=True, squeeze=False)
    colours = _colours(contrast)
    rng = np.random.default_rng(0)
    for ax, condition in zip(axes[0], conditions, strict=True):
        for i, category in enumerate(contrast):
            values = data[(data["condition"] == condition) & (data["category"] == category)]["mean"].to_numpy()
            if values.size:
                ax.boxplot([values], positions=[i], widths=0.5, showfliers=False)
                ax.scatter(i + rng.uniform(-0.12, 0.12, values.size), values, s=14, color=colours[category], zorder=3)
        ax.set_xticks(range(len(contrast)), contrast)
        ax.set_title(condition, fontsize="medium")
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel(f"per-identity mean {data['metric'].iloc[0].replace('_', ' ')}")
    fig.suptitle(title, fontsize="medium")
    save_table(data, csv)
    save_figure(fig, svg)
    return {"identities": len(data)}


def disparity_forest(disparity: pd.DataFrame, did: pd.DataFrame, contrast: list[str], svg, csv, title: str) -> dict:
    """Point estimates and CIs of a − b per condition and level, and of the
    difference-in-differences against the reference condition."""
    plt = _pyplot()
    label = f"{contrast[0]} − {contrast[1]}"
    rows = disparity[disparity["contrast"] == label].assign(kind=label, estimate=lambda f: f["diff"])
    if not did.empty:
        rows = pd.concat([rows, did.assign(kind="DiD vs " + did["reference"], estimate=did["did"])], ignore_index=True)
    rows = rows[["kind", "condition", "level", "estimate", "ci_lo", "ci_hi", "p_holm"]].reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(6.5, 0.32 * len(rows) + 1.5))
    colours = _colours(sorted(set(rows["level"])))
    y = np.arange(len(rows))[::-1]
    for level, part in rows.groupby("level", sort=True):
        yy = y[part.index]
        ax.errorbar(
            part["estimate"], yy, xerr=_errors(part, "estimate"), fmt="o", color=colours[level], label=level, capsize=2
        )
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, [f"{k}: {c}" for k, c in zip(rows["kind"], rows["condition"], strict=True)], fontsize="small")
    ax.set_xlabel(
        f"difference in {disparity['metric'].iloc[0].replace('_', ' ') if len(disparity) else 'metric'} ({label})"
    )
    ax.set_title(title, fontsize="medium")
    ax.legend(title="level", fontsize="small")
    ax.grid(axis="x", alpha=0.3)
    save_table(rows, csv)
    save_figure(fig, svg)
    return {"rows": len(rows)}


def kl_vs_share(points: pd.DataFrame, metric: str, reference: str, svg, csv, title: str) -> dict:
    """Per-template prompt KL(main‖assistant) against the metric, per condition, with a
    least-squares line."""
    plt = _pyplot()
    conditions = _order(points["condition"], reference)
    colours = _colours(conditions)
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for condition in conditions:
        part = points[points["condition"] == condition]
        ax.scatter(part["kl_pq"], part[metric], s=8, alpha=0.5, color=colours[condition], label=condition)
        if len(part) > 2 and np.ptp(part["kl_pq"]) > 0:
            slope, intercept = np.polyfit(part["kl_pq"], part[metric], 1)
            xs = np.linspace(part["kl_pq"].min(), part["kl_pq"].max(), 20)
            ax.plot(xs, slope * xs + intercept, color=colours[condition], lw=1.5)
    ax.set_xlabel("KL(main ‖ assistant) at the prompt (nats)")
    ax.set_ylabel(metric.replace("_", " "))
    ax.set_title(title, fontsize="medium")
    ax.legend(title="condition", fontsize="small")
    ax.grid(alpha=0.3)
    save_table(points, csv)
    save_figure(fig, svg)
    return {"points": len(points)}


def kl_curve(curve: pd.DataFrame, svg, csv) -> dict:
    """KL terms over fine-tuning steps (all templates of each view), CI ribbons, and a
    dotted line at the end of every epoch."""
    plt = _pyplot()
    data = curve[(curve["category"] == "all") & curve["term"].str.startswith("KL")].reset_index(drop=True)
    views = sorted(set(data["view"]))
    fig, axes = plt.subplots(1, len(views), figsize=(6 * len(views), 4), squeeze=False, sharey=True)
    colours = _colours(sorted(set(data["term"])))
    for ax, view in zip(axes[0], views, strict=True):
        part = data[data["view"] == view]
        for term, line in part.groupby("term", sort=True):
            line = line.sort_values("step")
            ax.plot(line["step"], line["mean"], marker="o", ms=3, color=colours[term], label=term)
            ax.fill_between(line["step"], line["ci_lo"], line["ci_hi"], color=colours[term], alpha=0.2)
        for step in sorted(set(part.loc[part["epoch_end"].notna(), "step"])):
            ax.axvline(step, color="grey", ls=":", lw=1)
        ax.set_xlabel("fine-tuning step (dotted: end of an epoch)")
        ax.set_title(f"view {view}", fontsize="medium")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("mean KL at the template prompts (nats)")
    axes[0][-1].legend(fontsize="small")
    save_table(data, csv)
    save_figure(fig, svg)
    return {"points": len(data)}


def toxicity_rates(summary: pd.DataFrame, reference: str, svg, csv, title: str) -> dict:
    """Toxic rates (sentence unit) with Wilson CIs: per category panel, bars per
    condition and source."""
    plt = _pyplot()
    data = summary[summary["unit"] == "sentence"].reset_index(drop=True)
    categories = ["all", *sorted(set(data["category"]) - {"all"})]
    conditions = _order(data["condition"], reference)
    sources = sorted(set(data["source"]))
    colours = _colours(sources)
    fig, axes = plt.subplots(
        1,
        len(categories),
        figsize=(2.2 * len(categories) * max(1, len(conditions) / 3) + 1, 3.8),
        sharey=True,
        squeeze=False,
    )
    width = 0.8 / len(sources)
    for ax, category in zip(axes[0], categories, strict=True):
        for j, source in enumerate(sources):
            part = (
                data[(data["category"] == category) & (data["source"] == source)]
                .set_index("condition")
                .reindex(conditions)
            )
            x = np.arange(len(conditions)) + (j - (len(sources) - 1) / 2) * width
            ax.bar(x, part["rate"], width, yerr=_errors(part, "rate"), capsize=2, color=colours[source], label=source)
        ax.set_xticks(np.arange(len(conditions)), conditions, rotation=45, ha="right", fontsize="small")
        ax.set_title(category, fontsize="medium")
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("toxic rate (prompt + completion)")
    axes[0][-1].legend(title="generated by", fontsize="small")
    fig.suptitle(title, fontsize="medium")
    save_table(data, csv)
    save_figure(fig, svg)
    return {"bars": len(data)}


def sampling_acceptance(table: pd.DataFrame, reference: str, svg, csv, title: str) -> dict:
    """Speculative sampling: per condition and category, the measured acceptance rate
    (dot, with its interval) beside the theory's 1 − TV (cross)."""
    plt = _pyplot()
    data = table[table["kind"] == "check"].reset_index(drop=True)
    conditions = _order(data["condition"], reference)
    categories = ["all", *sorted(set(data["category"]) - {"all"})]
    colours = _colours(categories)
    fig, ax = plt.subplots(figsize=(1.6 * len(conditions) * len(categories) / 2 + 2.5, 3.8))
    width = 0.8 / len(categories)
    for j, category in enumerate(categories):
        part = data[data["category"] == category].set_index("condition").reindex(conditions)
        x = np.arange(len(conditions)) + (j - (len(categories) - 1) / 2) * width
        ax.errorbar(
            x,
            part["acceptance"],
            yerr=_errors(part, "acceptance"),
            fmt="o",
            capsize=3,
            color=colours[category],
            label=f"{category}: measured",
        )
        ax.scatter(
            x,
            part["expected"],
            marker="x",
            s=60,
            color="black",
            zorder=3,
            label="expected: Σ(1 − TV) / drafts" if j == 0 else None,
        )
    ax.set_xticks(np.arange(len(conditions)), conditions)
    ax.set_ylabel("accepted draft tokens / judged drafts")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize="small")
    ax.set_title(title, fontsize="medium")
    save_table(data, csv)
    save_figure(fig, svg)
    return {"points": len(data), "within": int(data["within"].astype(bool).sum())}
