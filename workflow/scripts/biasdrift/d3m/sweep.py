"""The d3m sweep: every world's result side by side (rule summarize_d3m_sweep).

Per world and method (each D3M attribution and random removal at the k chosen on
validation, the k-free baselines balance and heuristic-<method>, and the base model):
the test ``select_metric`` (worst-cell accuracy by default) over seeds with its
Student-t interval, and two gaps with their Welch standard errors over seeds:

* against random removal of as many examples (the study's check: beyond 2 SE), and
* against group balancing (which needs the training group labels D3M does without).

``sweep.json`` counts, per method, the worlds where it beats random removal and where it
beats / falls below balancing beyond 2 SE. For a D3M method the table also says what its
removal set (at the chosen k, from its alignment table) is made of: the share of known
mislabeled examples, the share from the biased group's majority cell (the examples the
planted shortcut rests on, where the world names it), the share of mislabeled examples
that carry the majority label (their core word is the worst cell's label's) and the cell
it takes most from.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biasdrift.d3m.aggregate import seed_values, t_interval, welch_gap
from biasdrift.d3m.alignment import removal_summary, select_lowest
from biasdrift.runtime import atomic_path, read_json, write_json

BALANCE = "balance"
RANDOM = "random"


def beyond(gap: float, se: float) -> bool:
    """The gap is positive beyond two standard errors."""
    return bool(np.isfinite(se) and gap - 2 * se > 0)


def world_rows(world: str, selection: dict[str, Any], long: pd.DataFrame, level: float) -> list[dict[str, Any]]:
    """One row per method and baseline of one world (see the module doc)."""
    metric = selection["select_metric"]
    entries = [(m, e, "d3m" if m != RANDOM else "random") for m, e in sorted(selection["methods"].items())]
    entries += [(m, e, "baseline") for m, e in sorted(selection["baselines"].items())]
    balance = seed_values(long, BALANCE, "none", metric) if BALANCE in selection["baselines"] else np.array([])
    rows = []
    for method, entry, kind in entries:
        k = entry["k"]
        values = seed_values(long, method, k, metric)
        low, high = t_interval(values, level)
        random = seed_values(long, RANDOM, k, metric) if kind == "d3m" else np.array([])
        vs_random, vs_random_se = welch_gap(values, random)
        vs_balance, vs_balance_se = welch_gap(values, balance) if method != BALANCE else (math.nan, math.nan)
        rows.append(
            {
                "world": world,
                "method": method,
                "kind": kind,
                "k": k,
                "k_count": entry["k_count"],
                "metric": metric,
                "n_seeds": len(values),
                "mean": float(values.mean()) if len(values) else math.nan,
                "ci_low": low,
                "ci_high": high,
                "mislabeled_share": entry.get("mislabeled_share", math.nan),
                "vs_random": vs_random,
                "vs_random_se": vs_random_se,
                "beats_random": beyond(vs_random, vs_random_se),
                "vs_balance": vs_balance,
                "vs_balance_se": vs_balance_se,
                "beats_balance": beyond(vs_balance, vs_balance_se),
                "below_balance": beyond(-vs_balance, vs_balance_se),
            }
        )
    return rows


def removal_makeup(alignment: pd.DataFrame, k_count: int, majority_cell: str | None) -> dict[str, Any]:
    """What the ``k_count`` most harmful examples of an alignment table are made of (the
    per-cell counts of :func:`~biasdrift.d3m.alignment.removal_summary`)."""
    removed_uids = select_lowest(alignment, int(k_count))
    summary = removal_summary(alignment, removed_uids)
    known = bool(majority_cell) and summary["removed"] > 0
    out = {
        "majority_share": summary["removed_per_cell"].get(majority_cell, 0) / summary["removed"] if known else math.nan,
        "top_cell": summary["top_cell"] or "",
        "top_cell_share": summary["top_cell_share"],
        "mislabeled_majority_label_share": math.nan,
    }
    removed = alignment[alignment["uid"].isin(set(removed_uids))]
    if known and "mislabeled" in removed and "label" in removed:
        # labelled the biased group's majority label, core word of the other: the examples
        # that teach the model to overrule the worst cell's own evidence
        majority_label = int(str(majority_cell).rsplit("|", 1)[1])
        flagged = removed["mislabeled"].astype(bool) & (removed["label"] == majority_label)
        out["mislabeled_majority_label_share"] = float(flagged.mean())
    return out


def sweep_table(
    worlds: Mapping[str, tuple[str | Path, str | Path]],
    descriptions: Mapping[str, str],
    level: float,
    aligns: Mapping[tuple[str, str], str | Path] | None = None,
    majority_cells: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Every world's rows; ``worlds`` maps a world to its (selection.json,
    counterfactual.parquet), ``aligns`` a (world, method) to its alignment table."""
    if len(worlds) < 1:
        raise ValueError("a d3m sweep needs at least one world")
    aligns, majority_cells = aligns or {}, majority_cells or {}
    rows = []
    for world, (selection_path, long_path) in sorted(worlds.items()):
        for row in world_rows(world, read_json(selection_path), pd.read_parquet(long_path), level):
            path = aligns.get((world, row["method"]))
            makeup = removal_makeup(pd.read_parquet(path), row["k_count"], majority_cells.get(world)) if path else {}
            rows.append({**row, **makeup, "world_params": descriptions.get(world, "")})
    return pd.DataFrame(rows)


def counts(table: pd.DataFrame) -> dict[str, Any]:
    """Per method: worlds, and on how many it beats random / beats or falls below balancing."""
    out: dict[str, Any] = {"worlds": sorted(table["world"].unique()), "methods": {}}
    for method, part in table.groupby("method", sort=True):
        out["methods"][method] = {
            "worlds": len(part),
            "beats_random": int(part["beats_random"].sum()) if (part["kind"] == "d3m").any() else None,
            "beats_balance": int(part["beats_balance"].sum()),
            "below_balance": int(part["below_balance"].sum()),
        }
    return out


def summarize_sweep(
    *,
    worlds: Mapping[str, tuple[str, str]],
    descriptions: Mapping[str, str],
    level: float,
    csv_path: str | Path,
    json_path: str | Path,
    aligns: Mapping[tuple[str, str], str] | None = None,
    majority_cells: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Rule summarize_d3m_sweep: the table (CSV) and its counts (JSON)."""
    table = sweep_table(worlds, descriptions, level, aligns, majority_cells)
    summary = counts(table)
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False)
    write_json(json_path, summary)
    return {name: entry["beats_random"] for name, entry in summary["methods"].items()}
