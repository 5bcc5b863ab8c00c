"""Plots shared by the studies: matplotlib on the Agg backend, SVG at modest size, and
always a CSV of the plotted numbers beside the figure."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from biasdrift.runtime import atomic_path, read_json

log = logging.getLogger(__name__)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "biasdrift"  # stable element ids: reproducible SVGs
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        fmt = Path(path).suffix.lstrip(".") or "svg"
        metadata = {"Date": None} if fmt == "svg" else None  # no timestamp: same plot, same bytes
        fig.savefig(tmp, bbox_inches="tight", format=fmt, metadata=metadata)
    _pyplot().close(fig)


def save_table(frame: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def training_curves(metrics_paths: dict[str, str | Path]) -> pd.DataFrame:
    """Long table (model, step, split, loss) from each model's train_metrics.json."""
    rows = []
    for alias, path in metrics_paths.items():
        for entry in read_json(path)["log_history"]:
            if "loss" in entry:
                rows.append({"model": alias, "step": entry["step"], "split": "train", "loss": entry["loss"]})
            if "eval_loss" in entry:
                rows.append({"model": alias, "step": entry["step"], "split": "valid", "loss": entry["eval_loss"]})
    frame = pd.DataFrame(rows, columns=["model", "step", "split", "loss"])
    return frame.drop_duplicates().sort_values(["model", "split", "step"]).reset_index(drop=True)


def plot_training_curves(metrics_paths: dict[str, str | Path], svg_path: str | Path, csv_path: str | Path) -> dict:
    """Loss against optimizer step, one line per model (solid train, dashed valid)."""
    frame = training_curves(metrics_paths)
    if frame.empty:
        raise ValueError("no loss values in any train_metrics.json: nothing to plot")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (alias, group) in enumerate(frame.groupby("model", sort=True)):
        colour = colours[i % len(colours)]
        for split, style in (("train", "-"), ("valid", "--")):
            part = group[group["split"] == split]
            if not part.empty:
                ax.plot(
                    part["step"],
                    part["loss"],
                    style,
                    color=colour,
                    label=f"{alias} ({split})",
                    marker="o" if len(part) == 1 else None,
                )
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("cross-entropy loss (nats/token)")
    ax.set_title("Pretraining from scratch")
    ax.legend(fontsize="small")
    ax.grid(alpha=0.3)
    save_table(frame, csv_path)
    save_figure(fig, svg_path)
    return {"models": sorted(metrics_paths), "points": len(frame)}
