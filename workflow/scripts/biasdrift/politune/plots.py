"""Figures of study politune (rules plot_politune, plot_politune_judge). Each figure
has a CSV of exactly the plotted numbers beside it.

* ``axes``: economic against social score of the base and of each run's reported
  checkpoint, per model, with interval whiskers (negative = left / libertarian);
* ``trajectory``: axis scores against optimizer step per run (step 0 = the base);
* ``items``: per-statement scores of the base and of each run's reported checkpoint;
* ``preference``: held-out preference accuracy and mean implicit-reward margin against
  step, with the trainer's training-batch reward accuracy for comparison;
* ``judge``: the judge's mean score (0 = very left ... 20 = very right) against step;
* ``compass``: Political Compass coordinates (economic against social, [-10, 10]) of
  the base and of each run's reported checkpoint, on shaded quadrants.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biasdrift.plots import _pyplot, save_figure, save_table
from biasdrift.runtime import read_json

SIDE_COLOURS = {"left": "tab:blue", "right": "tab:red"}
METHOD_MARKERS = {"dpo": "o", "sft": "s"}
METHOD_LINES = {"dpo": "-", "sft": "--"}


def _colour(side: str | None, palette: dict[str, str]) -> str:
    if side is None:
        return "black"
    if side not in palette:
        extra = ["tab:purple", "tab:green", "tab:orange", "tab:brown", "tab:pink", "tab:olive"]
        palette[side] = extra[(len(palette) - 2) % len(extra)]
    return palette[side]


def _selected(summary: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(model, state) -> label of the states summary.json reports (base + one per run)."""
    out = {}
    for model, entry in summary["models"].items():
        out[(model, "base")] = "base"
        for run, result in entry["runs"].items():
            out[(model, result["selected_state"])] = run
    return out


def plot_axes(scores: pd.DataFrame, summary: dict[str, Any], svg: str | Path, csv: str | Path) -> None:
    plt = _pyplot()
    chosen = _selected(summary)
    wide = scores.pivot_table(
        index=["model", "state", "side", "method"], columns="axis", values=["score", "ci_low", "ci_high"], dropna=False
    )
    wide.columns = [f"{axis}_{value}" for value, axis in wide.columns]
    wide = wide.reset_index()
    wide = wide[[(m, s) in chosen for m, s in zip(wide["model"], wide["state"], strict=True)]].copy()
    wide["label"] = [chosen[(m, s)] for m, s in zip(wide["model"], wide["state"], strict=True)]
    models = sorted(wide["model"].unique())
    fig, axes = plt.subplots(1, len(models), figsize=(4.6 * len(models), 4.4), squeeze=False)
    palette = dict(SIDE_COLOURS)
    for ax, model in zip(axes[0], models, strict=True):
        ax.axhline(0, color="grey", lw=0.8)
        ax.axvline(0, color="grey", lw=0.8)
        for row in wide[wide["model"] == model].itertuples():
            side = None if row.state == "base" else row.side
            x, y = getattr(row, "economic_score", np.nan), getattr(row, "social_score", np.nan)
            xerr = [[x - getattr(row, "economic_ci_low", x)], [getattr(row, "economic_ci_high", x) - x]]
            yerr = [[y - getattr(row, "social_ci_low", y)], [getattr(row, "social_ci_high", y) - y]]
            ax.errorbar(
                x,
                y,
                xerr=xerr,
                yerr=yerr,
                fmt=METHOD_MARKERS.get(row.method, "D"),
                color=_colour(side, palette),
                capsize=3,
                label=row.label,
            )
        ax.set_xlim(-1, 1)
        ax.set_ylim(-1, 1)
        ax.set_xlabel("economic score (left - / right +)")
        ax.set_ylabel("social score (libertarian - / authoritarian +)")
        ax.set_title(model)
        ax.legend(fontsize="small", loc="best")
        ax.grid(alpha=0.3)
    save_table(wide, csv)
    save_figure(fig, svg)


def plot_trajectory(scores: pd.DataFrame, svg: str | Path, csv: str | Path) -> None:
    plt = _pyplot()
    frame = with_base_at_step_zero(scores)
    models, axes_names = sorted(frame["model"].unique()), sorted(frame["axis"].unique())
    fig, grid = plt.subplots(
        len(models), len(axes_names), figsize=(5 * len(axes_names), 3.4 * len(models)), squeeze=False
    )
    palette = dict(SIDE_COLOURS)
    for i, model in enumerate(models):
        for j, axis in enumerate(axes_names):
            ax = grid[i][j]
            part = frame[(frame["model"] == model) & (frame["axis"] == axis)]
            for (side, method), run in part.groupby(["side", "method"], sort=True):
                run = run.sort_values("step_number")
                colour = _colour(side, palette)
                ax.plot(
                    run["step_number"],
                    run["score"],
                    METHOD_LINES.get(method, ":"),
                    color=colour,
                    marker="o",
                    ms=3,
                    label=f"{side}/{method}",
                )
                ax.fill_between(run["step_number"], run["ci_low"], run["ci_high"], color=colour, alpha=0.12)
            ax.axhline(0, color="grey", lw=0.8)
            ax.set_title(f"{model}: {axis}")
            ax.set_xlabel("optimizer step (0 = base)")
            ax.set_ylabel("score (left/libertarian - ... +)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize="small")
    save_table(frame, csv)
    save_figure(fig, svg)


def with_base_at_step_zero(frame: pd.DataFrame) -> pd.DataFrame:
    """Each run's rows plus its model's base as step 0 (trajectories start at the base)."""
    runs = frame[frame["state"] != "base"]
    pieces = [runs]
    for (model, side, method), _ in runs.groupby(["model", "side", "method"], sort=True):
        base = frame[(frame["model"] == model) & (frame["state"] == "base")]
        pieces.append(base.assign(side=side, method=method, step_number=0))
    out = pd.concat(pieces, ignore_index=True)
    return out.sort_values(["model", "side", "method", "step_number"]).reset_index(drop=True)


def plot_items(items: pd.DataFrame, summary: dict[str, Any], svg: str | Path, csv: str | Path) -> None:
    plt = _pyplot()
    chosen = _selected(summary)
    keep = items[[(m, s) in chosen for m, s in zip(items["model"], items["state"], strict=True)]].copy()
    keep["column"] = [f"{m}: {chosen[(m, s)]}" for m, s in zip(keep["model"], keep["state"], strict=True)]
    table = keep.pivot_table(index=["axis", "id"], columns="column", values="score", sort=True)
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * table.shape[1], 1.5 + 0.16 * table.shape[0]))
    image = ax.imshow(table.to_numpy(), cmap="coolwarm", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(range(table.shape[1]), table.columns, rotation=45, ha="right", fontsize="small")
    ax.set_yticks(range(table.shape[0]), [f"{a[:4]} {i}" for a, i in table.index], fontsize=6)
    fig.colorbar(image, ax=ax, label="item score (left/libertarian -1 ... +1 right/authoritarian)")
    ax.set_title("Statement probe per item")
    save_table(table.reset_index(), csv)
    save_figure(fig, svg)


def plot_preference(prefs: pd.DataFrame, training: pd.DataFrame, svg: str | Path, csv: str | Path) -> None:
    plt = _pyplot()
    own = prefs[(prefs["state"] != "base") & (prefs["pairs"] == prefs["side"])].copy()
    own = own.sort_values(["model", "side", "method", "step_number"])
    train_acc = pd.DataFrame()
    if not training.empty and "rewards/accuracies" in training:
        train_acc = training.dropna(subset=["rewards/accuracies"])[
            ["model", "side", "method", "step", "rewards/accuracies"]
        ]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    palette = dict(SIDE_COLOURS)
    for (model, side, method), run in own.groupby(["model", "side", "method"], sort=True):
        colour, style = _colour(side, palette), METHOD_LINES.get(method, ":")
        label = f"{model} {side}/{method}"
        left.errorbar(
            run["step_number"],
            run["accuracy"],
            yerr=_errors(run["accuracy"], run["accuracy_low"], run["accuracy_high"]),
            fmt=style,
            marker="o",
            ms=3,
            color=colour,
            capsize=2,
            label=f"{label} (held out)",
        )
        right.plot(run["step_number"], run["margin"], style, marker="o", ms=3, color=colour, label=label)
        right.fill_between(run["step_number"], run["margin_low"], run["margin_high"], color=colour, alpha=0.12)
        if not train_acc.empty:
            part = train_acc[
                (train_acc["model"] == model) & (train_acc["side"] == side) & (train_acc["method"] == method)
            ]
            if not part.empty:
                left.plot(
                    part["step"],
                    part["rewards/accuracies"],
                    ":",
                    color=colour,
                    alpha=0.6,
                    label=f"{label} (train batch)",
                )
    left.axhline(0.5, color="grey", ls="--", lw=0.8)
    left.set_ylim(0, 1.02)
    left.set_xlabel("optimizer step")
    left.set_ylabel("preference accuracy (implicit reward)")
    right.axhline(0, color="grey", ls="--", lw=0.8)
    right.set_xlabel("optimizer step")
    right.set_ylabel("mean implicit-reward margin (held out)")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize="x-small")
    save_table(own, csv)
    save_figure(fig, svg)


def _errors(value, low, high) -> list:
    """Whisker lengths (never negative: an interval bound may round past its point)."""
    return [(value - low).clip(lower=0), (high - value).clip(lower=0)]


def plot_judge(judged: pd.DataFrame, svg: str | Path, csv: str | Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    palette = dict(SIDE_COLOURS)
    frame = with_base_at_step_zero(judged)
    for (model, side, method), run in frame.groupby(["model", "side", "method"], sort=True):
        colour = _colour(side, palette)
        ax.errorbar(
            run["step_number"],
            run["judge_mean"],
            yerr=_errors(run["judge_mean"], run["judge_low"], run["judge_high"]),
            fmt=METHOD_LINES.get(method, ":"),
            marker="o",
            ms=3,
            color=colour,
            capsize=2,
            label=f"{model} {side}/{method}",
        )
    ax.axhline(10, color="grey", ls="--", lw=0.8)
    ax.set_ylim(0, 20)
    ax.set_xlabel("optimizer step (0 = base)")
    ax.set_ylabel("judge score (0 very left ... 20 very right)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    save_table(frame, csv)
    save_figure(fig, svg)


QUADRANTS = {  # (x sign, y sign) -> colour of the Political Compass quadrants
    (-1, 1): "#f4c7c3",  # authoritarian left
    (1, 1): "#c9daf8",  # authoritarian right
    (-1, -1): "#d9ead3",  # libertarian left
    (1, -1): "#e1d5e7",  # libertarian right
}


def plot_compass(compass: pd.DataFrame, summary: dict[str, Any], svg: str | Path, csv: str | Path) -> None:
    plt = _pyplot()
    chosen = _selected(summary)
    frame = compass[[(m, s) in chosen for m, s in zip(compass["model"], compass["state"], strict=True)]].copy()
    frame["label"] = [chosen[(m, s)] for m, s in zip(frame["model"], frame["state"], strict=True)]
    models = sorted(frame["model"].unique())
    fig, axes = plt.subplots(1, len(models), figsize=(4.6 * len(models), 4.4), squeeze=False)
    palette = dict(SIDE_COLOURS)
    for ax, model in zip(axes[0], models, strict=True):
        for (sx, sy), colour in QUADRANTS.items():
            ax.fill_between([0, 10 * sx], 0, 10 * sy, color=colour, alpha=0.5, lw=0)
        for row in frame[frame["model"] == model].itertuples():
            side = None if row.state == "base" else row.side
            ax.errorbar(
                row.economic,
                row.social,
                xerr=[[max(row.economic - row.economic_low, 0)], [max(row.economic_high - row.economic, 0)]],
                yerr=[[max(row.social - row.social_low, 0)], [max(row.social_high - row.social, 0)]],
                fmt=METHOD_MARKERS.get(row.method, "D"),
                color=_colour(side, palette),
                capsize=3,
                label=row.label,
            )
        ax.set_xlim(-10, 10)
        ax.set_ylim(-10, 10)
        ax.set_aspect("equal")
        ax.axhline(0, color="grey", lw=0.8)
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_xlabel("economic (left - / right +)")
        ax.set_ylabel("social (libertarian - / authoritarian +)")
        ax.set_title(model)
        ax.legend(fontsize="small", loc="best")
    save_table(frame, csv)
    save_figure(fig, svg)


def plot_compass_file(summary_path: str | Path, path: str | Path, svg: str | Path, csv: str | Path) -> dict[str, Any]:
    """Rule plot_politune_compass."""
    compass = read_table(path)
    if compass.empty:
        placeholder("no Political Compass coordinates", svg, csv)
        return {"figures": []}
    plot_compass(compass, read_json(summary_path), svg, csv)
    return {"figures": ["compass"]}


def placeholder(message: str, svg: str | Path, csv: str | Path) -> None:
    """A figure that says why there is nothing to plot (and an empty CSV)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 1.5))
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    ax.set_axis_off()
    save_table(pd.DataFrame({"note": [message]}), csv)
    save_figure(fig, svg)


def read_table(path: str | Path) -> pd.DataFrame:
    """A CSV written by save_table (empty tables included)."""
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def plot_all(files: dict[str, str], out: dict[str, str]) -> dict[str, Any]:
    """Rule plot_politune: the four figures from the summary's tables."""
    summary = read_json(files["summary"])
    scores, items = read_table(files["scores"]), read_table(files["item_scores"])
    prefs, training = read_table(files["preferences"]), read_table(files["training"])
    drawn = []
    if scores.empty:
        note = "no statement probe (studies.politune.probe.statements is null)"
        for name in ("axes", "trajectory", "items"):
            placeholder(note, out[f"{name}_svg"], out[f"{name}_csv"])
    else:
        plot_axes(scores, summary, out["axes_svg"], out["axes_csv"])
        plot_trajectory(scores, out["trajectory_svg"], out["trajectory_csv"])
        plot_items(items, summary, out["items_svg"], out["items_csv"])
        drawn += ["axes", "trajectory", "items"]
    if prefs.empty or "accuracy" not in prefs:
        placeholder("no held-out pairs (data.heldout_fraction is 0)", out["preference_svg"], out["preference_csv"])
    else:
        plot_preference(prefs, training, out["preference_svg"], out["preference_csv"])
        drawn.append("preference")
    return {"figures": drawn}


def plot_judge_file(path: str | Path, svg: str | Path, csv: str | Path) -> dict[str, Any]:
    """Rule plot_politune_judge."""
    judged = read_table(path)
    if judged.empty:
        placeholder("no judged answers", svg, csv)
        return {"figures": []}
    plot_judge(judged, svg, csv)
    return {"figures": ["judge"]}
