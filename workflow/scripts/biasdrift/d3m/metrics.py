"""Classification metrics of one model on one split, from its predictions table.

The thesis computed "AUC" on hard labels (which equals balanced accuracy), averaged
batch-mean losses, had no worst-group accuracy and crashed on single-class subsets
(spec section 10, item 11). Here AUC is on probabilities, cross-entropy is per example,
worst-group accuracy is over (group, label) cells and over groups, and every rate whose
denominator is empty (a class absent from a subset) is NaN with a warning.

A predictions table has one row per example: ``uid, label, group, cell, prob_1, pred,
loss`` (``prob_1`` = P(label 1), ``loss`` = cross-entropy of the true label in nats).
"""

from __future__ import annotations

import itertools
import logging
import math
import warnings
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

PREDICTION_COLUMNS = ("uid", "label", "group", "cell", "prob_1", "pred", "loss")
# metrics that get a bootstrap interval (over examples, resampled within cells)
BOOTSTRAP_METRICS = ("accuracy", "balanced_accuracy", "wga_cell", "wga_group", "auc", "ce")


class MetricWarning(UserWarning):
    """A metric is undefined on this subset (e.g. FPR without negatives)."""


def _rate(numerator: float, denominator: float, what: str) -> float:
    if denominator == 0:
        warnings.warn(f"{what} is undefined (no examples in its denominator): NaN", MetricWarning, stacklevel=3)
        return float("nan")
    return float(numerator / denominator)


def roc_auc(labels: np.ndarray, scores: np.ndarray, where: str = "subset") -> float:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (ties count one
    half, the Mann-Whitney statistic); NaN with a warning when one class is absent."""
    labels = np.asarray(labels).astype(int)
    scores = np.asarray(scores, dtype=float)
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        warnings.warn(f"ROC-AUC of {where} is undefined: only one class present: NaN", MetricWarning, stacklevel=2)
        return float("nan")
    ranks = pd.Series(scores).rank(method="average").to_numpy()
    return float((ranks[labels == 1].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _auc_rows(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """:func:`roc_auc` of every row of (n_rows, n) arrays at once (NaN where a row
    lacks a class)."""
    from scipy.stats import rankdata

    ranks = rankdata(scores, axis=1)  # average ranks for ties
    n_pos = labels.sum(axis=1).astype(float)
    n_neg = labels.shape[1] - n_pos
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = ((ranks * labels).sum(axis=1) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return np.where((n_pos > 0) & (n_neg > 0), auc, np.nan)


def binary_rates(labels: np.ndarray, preds: np.ndarray, where: str) -> dict[str, float]:
    """Accuracy, FPR and FNR (label 1 = positive = hateful)."""
    labels, preds = np.asarray(labels).astype(int), np.asarray(preds).astype(int)
    neg, pos = labels == 0, labels == 1
    return {
        "n": len(labels),
        "accuracy": _rate((labels == preds).sum(), len(labels), f"accuracy of {where}"),
        "fpr": _rate((preds[neg] == 1).sum(), neg.sum(), f"FPR of {where} (no label-0 examples)"),
        "fnr": _rate((preds[pos] == 0).sum(), pos.sum(), f"FNR of {where} (no label-1 examples)"),
    }


def balanced_accuracy(labels: np.ndarray, preds: np.ndarray, where: str = "subset") -> float:
    """Mean recall of the two classes; NaN with a warning when a class is absent."""
    labels, preds = np.asarray(labels).astype(int), np.asarray(preds).astype(int)
    recalls = [
        _rate((preds[labels == c] == c).sum(), (labels == c).sum(), f"recall of class {c} in {where}") for c in (0, 1)
    ]
    return float(np.mean(recalls))


def check_predictions(frame: pd.DataFrame, where: str) -> None:
    missing = [c for c in PREDICTION_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{where}: predictions lack column(s) {missing}")
    if frame.empty:
        raise ValueError(f"{where}: no predictions")
    if frame["prob_1"].isna().any() or frame["loss"].isna().any():
        raise ValueError(f"{where}: NaN in prob_1 or loss")


def classification_metrics(frame: pd.DataFrame, where: str = "predictions") -> dict[str, Any]:
    """Overall and per-group / per-cell metrics of one predictions table.

    ``wga_cell`` is the worst accuracy over (group, label) cells (within a cell accuracy
    is the recall of its label); ``wga_group`` the worst accuracy over groups.
    """
    check_predictions(frame, where)
    labels, preds = frame["label"].to_numpy(int), frame["pred"].to_numpy(int)
    out: dict[str, Any] = {
        "n": len(frame),
        "accuracy": float((labels == preds).mean()),
        "balanced_accuracy": balanced_accuracy(labels, preds, where),
        "auc": roc_auc(labels, frame["prob_1"].to_numpy(float), where),
        "ce": float(frame["loss"].mean()),
    }
    cells = {}
    for cell, part in frame.groupby("cell", sort=True):
        cells[str(cell)] = {"n": len(part), "accuracy": float((part["label"] == part["pred"]).mean())}
    groups = {}
    for group, part in frame.groupby("group", sort=True):
        groups[str(group)] = binary_rates(part["label"], part["pred"], f"group {group!r} of {where}")
        groups[str(group)]["auc"] = roc_auc(part["label"], part["prob_1"], f"group {group!r} of {where}")
        groups[str(group)]["ce"] = float(part["loss"].mean())
    worst_cell = min(cells, key=lambda c: (cells[c]["accuracy"], c))
    worst_group = min(groups, key=lambda g: (groups[g]["accuracy"], g))
    out.update(
        wga_cell=cells[worst_cell]["accuracy"],
        worst_cell=worst_cell,
        wga_group=groups[worst_group]["accuracy"],
        worst_group=worst_group,
        mean_group_accuracy=float(np.mean([g["accuracy"] for g in groups.values()])),
        cells=cells,
        groups=groups,
    )
    return out


def bootstrap_intervals(
    frame: pd.DataFrame, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> dict[str, dict[str, float]]:
    """Percentile bootstrap intervals of :data:`BOOTSTRAP_METRICS`, resampling examples
    with replacement within each (group, label) cell (cell sizes stay fixed, so no
    resample loses a cell)."""
    check_predictions(frame, "bootstrap")
    if n_boot < 1:
        return {}
    rng = np.random.default_rng(seed)
    frame = frame.sort_values("uid").reset_index(drop=True)
    index_by_cell = [part.index.to_numpy() for _, part in frame.groupby("cell", sort=True)]
    samples = np.concatenate(
        [cell_idx[rng.integers(0, len(cell_idx), size=(n_boot, len(cell_idx)))] for cell_idx in index_by_cell],
        axis=1,
    )  # [n_boot, n]
    labels = frame["label"].to_numpy(int)[samples]
    correct = (frame["label"].to_numpy(int) == frame["pred"].to_numpy(int))[samples]
    probs = frame["prob_1"].to_numpy(float)[samples]
    losses = frame["loss"].to_numpy(float)[samples]
    groups = frame["group"].to_numpy()[samples[0]]  # same column layout in every resample
    cell_slices = np.cumsum([0, *[len(c) for c in index_by_cell]])
    values: dict[str, np.ndarray] = {
        "accuracy": correct.mean(axis=1),
        "ce": losses.mean(axis=1),
        "wga_cell": np.min([correct[:, a:b].mean(axis=1) for a, b in itertools.pairwise(cell_slices)], axis=0),
        "wga_group": np.min([correct[:, groups == g].mean(axis=1) for g in np.unique(groups)], axis=0),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MetricWarning)
        recalls = []
        for c in (0, 1):
            mask = labels == c
            denom = mask.sum(axis=1)
            recalls.append(np.where(denom > 0, (correct & mask).sum(axis=1) / np.maximum(denom, 1), np.nan))
        values["balanced_accuracy"] = np.mean(recalls, axis=0)
        values["auc"] = _auc_rows(labels, probs)
    alpha = (1 - level) / 2
    out = {}
    for name in BOOTSTRAP_METRICS:
        v = values[name][~np.isnan(values[name])]
        out[name] = (
            {"low": float(np.quantile(v, alpha)), "high": float(np.quantile(v, 1 - alpha))}
            if len(v)
            else {"low": math.nan, "high": math.nan}
        )
    return out


def flatten_metrics(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Long rows ``scope, name, metric, value`` (scope overall / cell / group)."""
    rows = []
    for key, value in metrics.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            rows.append({"scope": "overall", "name": "all", "metric": key, "value": float(value)})
    for scope in ("cells", "groups"):
        for name, values in metrics.get(scope, {}).items():
            for key, value in values.items():
                rows.append({"scope": scope[:-1], "name": name, "metric": key, "value": float(value)})
    return rows
