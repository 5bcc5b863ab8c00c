"""The matrix table (one line per model x probe, applicable or not) and its heatmap."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biasdrift.plots import _pyplot, save_figure, save_table

COLUMNS = [
    "row",
    "probe",
    "row_study",
    "probe_study",
    "base",
    "applicable",
    "reason",
    "n_items",
    "score",
    "low",
    "high",
    "change",
    "change_low",
    "change_high",
    "significant",
    "coverage",
    "confidence",
]


def matrix_table(cells: list[str | Path], rows: list[str], probes: list[str]) -> pd.DataFrame:
    """Every (row, probe) pair in registry order; a missing cell is an error."""
    records = {}
    for path in cells:
        cell = json.loads(Path(path).read_text())
        records[(cell["row"], cell["probe"])] = cell
    missing = [(r, p) for r in rows for p in probes if (r, p) not in records]
    if missing:
        raise ValueError(f"matrix cells missing: {missing[:5]}")
    frame = pd.DataFrame([{c: records[(r, p)].get(c) for c in COLUMNS} for r in rows for p in probes])
    return frame[COLUMNS]


def summarize(*, cells: list[str], rows: list[str], probes: list[str], out_csv: str) -> dict[str, Any]:
    frame = matrix_table(cells, rows, probes)
    save_table(frame, out_csv)
    applicable = frame[frame["applicable"]]
    return {
        "pairs": len(frame),
        "applicable": int(frame["applicable"].sum()),
        "significant_changes": int((applicable["significant"] == True).sum()),  # noqa: E712 - None is not True
    }


def plot_matrix(matrix_csv: str, svg: str, csv: str, title: str) -> dict[str, Any]:
    """Rows models, columns probes; colour: the change against the base over the column's
    largest absolute change (so probes of different scales share one colour bar); text:
    the change (fine-tunes) or the score (bases); * the change's interval excludes 0;
    grey: the probe does not apply."""
    frame = pd.read_csv(matrix_csv)
    rows = list(dict.fromkeys(frame["row"]))
    probes = list(dict.fromkeys(frame["probe"]))
    cell = frame.set_index(["row", "probe"])
    colour = np.full((len(rows), len(probes)), np.nan)
    text = [["" for _ in probes] for _ in rows]
    for j, probe in enumerate(probes):
        column = frame[frame["probe"] == probe]["change"].abs()
        scale = column.max() if column.notna().any() and column.max() > 0 else 1.0
        for i, row in enumerate(rows):
            c = cell.loc[(row, probe)]
            if not bool(c["applicable"]):
                text[i][j] = "n/a"
            elif pd.notna(c["change"]):
                colour[i, j] = c["change"] / scale
                text[i][j] = f"{c['change']:+.2f}" + ("*" if bool(c["significant"]) else "")
            else:
                text[i][j] = f"({c['score']:.2f})"
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(1.6 * len(probes) + 3, 0.36 * len(rows) + 1.5))
    na = np.array([[1.0 if t == "n/a" else 0.0 for t in line] for line in text])
    ax.imshow(na, cmap="Greys", vmin=0, vmax=4, aspect="auto")  # n/a: light grey
    shown = np.ma.masked_invalid(colour)
    image = ax.imshow(shown, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
    for i in range(len(rows)):
        for j in range(len(probes)):
            ax.text(j, i, text[i][j], ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(probes)), probes, rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="change vs base / column max |change|")
    save_figure(fig, svg)
    long = frame[["row", "probe", "applicable", "score", "change", "significant"]].copy()
    save_table(long, csv)
    return {"rows": len(rows), "probes": len(probes)}
