"""Every run of a world in one long table, its summary over seeds, and the choice of k.

k is chosen per method on the validation split (``select_metric``, mean over seeds;
ties go to the smaller k) and the test split is reported once, at that k (spec
section 8). Intervals over seeds are Student-t intervals of the mean; per-run
bootstrap intervals over test examples stay in the long table.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biasdrift.d3m.metrics import flatten_metrics
from biasdrift.runtime import atomic_path, read_json, write_json

RUN_COLUMNS = ("method", "k", "k_count", "seed", "mislabeled_share")
KEYS = ["method", "k", "split", "scope", "name", "metric"]


def long_table(metrics_paths: Sequence[str | Path]) -> pd.DataFrame:
    rows = []
    for path in metrics_paths:
        data = read_json(path)
        run = {c: data["run"].get(c) for c in RUN_COLUMNS}
        run["k"] = "none" if run["k"] is None else f"{run['k']:g}"
        for split, metrics in data["splits"].items():
            for row in flatten_metrics(metrics):
                rows.append({**run, "split": split, **row})
            for metric, bounds in metrics.get("ci", {}).items():
                for side in ("low", "high"):
                    rows.append(
                        {
                            **run,
                            "split": split,
                            "scope": "overall",
                            "name": "all",
                            "metric": f"{metric}_ci_{side}",
                            "value": bounds[side],
                        }
                    )
    if not rows:
        raise ValueError("no run metrics to aggregate")
    return pd.DataFrame(rows)


def t_interval(values: np.ndarray, level: float) -> tuple[float, float]:
    from scipy import stats

    values = values[~np.isnan(values)]
    if len(values) < 2:
        return math.nan, math.nan
    half = stats.t.ppf((1 + level) / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return float(values.mean() - half), float(values.mean() + half)


def summarise(long: pd.DataFrame, level: float) -> pd.DataFrame:
    rows = []
    for key, part in long.groupby(KEYS, sort=True, dropna=False):
        values = part["value"].to_numpy(float)
        low, high = t_interval(values, level)
        rows.append(
            {
                **dict(zip(KEYS, key, strict=True)),
                "k_count": float(part["k_count"].mean()),
                "mislabeled_share": float(part["mislabeled_share"].astype(float).mean()),
                "n_seeds": int(part["seed"].nunique()),
                "mean": float(np.nanmean(values)) if not np.isnan(values).all() else math.nan,
                "sd": float(np.nanstd(values, ddof=1)) if (~np.isnan(values)).sum() > 1 else math.nan,
                "ci_low": low,
                "ci_high": high,
            }
        )
    return pd.DataFrame(rows)


def _overall(summary: pd.DataFrame, split: str, metric: str) -> pd.DataFrame:
    part = summary[(summary["split"] == split) & (summary["scope"] == "overall") & (summary["metric"] == metric)]
    return part.set_index(["method", "k"])


def choose_k(summary: pd.DataFrame, methods: Sequence[str], metric: str) -> dict[str, str]:
    """Per method, the k with the best mean validation ``metric`` (smallest k on ties)."""
    val = _overall(summary, "val", metric).reset_index()
    chosen = {}
    for method in methods:
        part = val[(val["method"] == method) & (val["k"] != "none")]
        if part.empty:
            continue
        part = part.assign(kf=part["k"].astype(float)).sort_values(["mean", "kf"], ascending=[False, True])
        chosen[method] = str(part.iloc[0]["k"])
    return chosen


def selection(long: pd.DataFrame, summary: pd.DataFrame, metric: str, level: float) -> dict[str, Any]:
    """Chosen k per method with its test numbers; baselines and the base model beside."""
    methods = sorted(m for m in long["method"].unique() if (long[long["method"] == m]["k"] != "none").any())
    chosen = choose_k(summary, methods, metric)
    test = _overall(summary, "test", metric)
    report_metrics = ("wga_cell", "wga_group", "accuracy", "balanced_accuracy", "auc", "ce")

    def entry(method: str, k: str) -> dict[str, Any]:
        out: dict[str, Any] = {"k": k}
        for name in report_metrics:
            row = _overall(summary, "test", name).loc[(method, k)]
            out[name] = {c: float(row[c]) for c in ("mean", "sd", "ci_low", "ci_high")}
            out["n_seeds"], out["k_count"] = int(row["n_seeds"]), float(row["k_count"])
            out["mislabeled_share"] = float(row["mislabeled_share"])
        return out

    result: dict[str, Any] = {"select_metric": metric, "level": level, "methods": {}, "baselines": {}}
    for method, k in chosen.items():
        result["methods"][method] = entry(method, k)
        if "random" in chosen and method != "random" and (("random", k) in test.index):
            rand = seed_values(long, "random", k, metric)
            gap, se = welch_gap(seed_values(long, method, k, metric), rand)
            result["methods"][method]["vs_random_same_k"] = {
                "random_mean": float(rand.mean()),
                "gap": gap,
                "gap_se": se,
            }
    for method in sorted(set(long["method"]) - set(methods)):
        result["baselines"][method] = entry(method, "none")
    return result


def welch_gap(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Difference of the means of two sets of seed values and its standard error (Welch;
    NaN with fewer than two seeds on a side, or an empty side)."""
    if not len(a) or not len(b):
        return math.nan, math.nan
    gap = float(a.mean() - b.mean())
    if min(len(a), len(b)) < 2:
        return gap, math.nan
    return gap, float(math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b)))


def seed_values(long: pd.DataFrame, method: str, k: str, metric: str) -> np.ndarray:
    part = long[
        (long["method"] == method)
        & (long["k"] == k)
        & (long["split"] == "test")
        & (long["scope"] == "overall")
        & (long["metric"] == metric)
    ]
    return part.sort_values("seed")["value"].to_numpy(float)


def aggregate(
    metrics_paths: Sequence[str | Path],
    long_path: str | Path,
    summary_path: str | Path,
    selection_path: str | Path,
    level: float,
    select_metric: str,
) -> dict[str, Any]:
    long = long_table(metrics_paths)
    summary = summarise(long, level)
    chosen = selection(long, summary, select_metric, level)
    with atomic_path(long_path) as tmp:
        long.to_parquet(tmp, index=False)
    with atomic_path(summary_path) as tmp:
        summary.to_csv(tmp, index=False)
    write_json(selection_path, chosen)
    return {"runs": len(metrics_paths), "chosen_k": {m: v["k"] for m, v in chosen["methods"].items()}}
