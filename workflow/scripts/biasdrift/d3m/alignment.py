"""Group alignment (D3M) and the removal sets of every method.

Alignment of training example i, as in MadryLab/D3M (``d3m/d3m.py``)::

    A_i = (1/G) * sum_g  L_g * mean_{j in query group g} S_ij

with S the (n_train, n_query) attribution matrix (positive = helpful), L_g the mean
cross-entropy of the base model on query group g, and groups the (group, label) cells.
The thesis used target groups only (``groups: group``), where the spurious feature
cancels between a group's label-0 and label-1 queries (spec section 5.2); it is kept as
an option for the contrast. Low A_i = harmful to the groups the model fails on.

Removal sets (all deterministic given their seed):
* ``lowest``: the k lowest A (ties broken by uid), nested across k;
* ``heuristic``: every example with A < 0 (the D3M library default);
* ``random``: the first k of a seeded permutation of the sorted uids, nested across k
  and different across seeds (the thesis drew one non-nested set per k);
* ``balance``: subsample every (group, label) cell to the smallest cell.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

GROUPINGS = ("cell", "group")


class AlignmentError(ValueError):
    """The alignment is undefined for these inputs (empty group, NaN, bad shapes)."""


def alignment_scores(
    scores: np.ndarray,
    query_groups: Sequence[str],
    query_loss: Sequence[float],
    groups: Sequence[str],
) -> tuple[np.ndarray, pd.DataFrame]:
    """A (n_train,) float64 and a per-group table (group, n_query, loss, weight).

    ``groups`` lists every group that must be represented (e.g. all training cells): a
    group without query examples, NaN scores or NaN losses raise :class:`AlignmentError`.
    """
    scores = np.asarray(scores, dtype=np.float64)
    query_groups = np.asarray(query_groups).astype(str)
    query_loss = np.asarray(query_loss, dtype=np.float64)
    if scores.ndim != 2 or scores.shape[1] != len(query_groups) or len(query_loss) != len(query_groups):
        raise AlignmentError(
            f"shapes do not fit: scores {scores.shape}, {len(query_groups)} query groups, {len(query_loss)} losses"
        )
    if not np.isfinite(scores).all():
        raise AlignmentError(f"{int((~np.isfinite(scores)).sum())} NaN/inf entries in the score matrix")
    if not np.isfinite(query_loss).all():
        raise AlignmentError(f"{int((~np.isfinite(query_loss)).sum())} NaN/inf query losses")
    if not len(groups):
        raise AlignmentError("no groups to align with")
    empty = [g for g in groups if not (query_groups == g).any()]
    if empty:
        raise AlignmentError(f"group(s) {empty} have no query examples: the alignment is undefined")
    unknown = sorted(set(query_groups) - set(map(str, groups)))
    if unknown:
        raise AlignmentError(f"query examples in group(s) {unknown} that are not among {list(groups)}")
    total = np.zeros(scores.shape[0])
    rows = []
    for g in groups:
        mask = query_groups == g
        loss = float(query_loss[mask].mean())
        total += loss * scores[:, mask].mean(axis=1)
        rows.append({"group": g, "n_query": int(mask.sum()), "loss": loss})
    return total / len(groups), pd.DataFrame(rows)


def group_key(frame: pd.DataFrame, grouping: str) -> pd.Series:
    if grouping not in GROUPINGS:
        raise AlignmentError(f"grouping must be one of {GROUPINGS}, got {grouping!r}")
    return frame[grouping].astype(str)


def align(
    scores: np.ndarray,
    train: pd.DataFrame,
    query: pd.DataFrame,
    query_loss: Sequence[float],
    grouping: str = "cell",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Alignment table of the training set: ``uid, group, label, cell, A, A_cell,
    A_group, rank`` (rank 0 = most harmful, by the chosen ``grouping``), and the
    per-group loss table of the chosen grouping. ``scores`` rows follow ``train``,
    columns follow ``query``."""
    keep = ["uid", "group", "label", "cell", *(c for c in ("mislabeled",) if c in train)]
    out = train[keep].copy().reset_index(drop=True)
    tables = {}
    for name in GROUPINGS:
        values, table = alignment_scores(
            scores, group_key(query, name), query_loss, sorted(group_key(train, name).unique())
        )
        out[f"A_{name}"] = values
        tables[name] = table
    out["A"] = out[f"A_{grouping}"]
    out["rank"] = harmful_order(out).argsort(kind="stable")
    return out, tables[grouping]


def harmful_order(alignment: pd.DataFrame) -> np.ndarray:
    """Row positions from most harmful (lowest A) to least; ties broken by uid."""
    frame = alignment.reset_index(drop=True)
    return np.lexsort((frame["uid"].to_numpy(), frame["A"].to_numpy()))


# --------------------------------------------------------------------------- selection
def resolve_k(k: float, unit: str, n_train: int) -> int:
    """Examples to remove for grid value ``k``: a fraction of n_train or a count."""
    if unit == "fraction":
        if not 0 <= k < 1:
            raise ValueError(f"k = {k}: a fraction of the training set must be in [0, 1)")
        count = round(k * n_train)
    elif unit == "count":
        if k != int(k) or k < 0:
            raise ValueError(f"k = {k}: a count must be a non-negative integer")
        count = int(k)
    else:
        raise ValueError(f"k unit must be fraction or count, got {unit!r}")
    if count >= n_train:
        raise ValueError(f"k = {k} ({unit}) removes {count} examples, but the training set has only {n_train}")
    return count


def select_lowest(alignment: pd.DataFrame, k: int) -> list[str]:
    if not 0 <= k < len(alignment):
        raise ValueError(f"k = {k} is out of range for {len(alignment)} training examples")
    frame = alignment.reset_index(drop=True)
    return frame["uid"].to_numpy()[harmful_order(frame)[:k]].tolist()


def select_heuristic(alignment: pd.DataFrame) -> list[str]:
    frame = alignment.reset_index(drop=True).iloc[harmful_order(alignment)]
    return frame.loc[frame["A"] < 0, "uid"].tolist()


def select_random(uids: Sequence[str], k: int, seed: int) -> list[str]:
    if not 0 <= k < len(uids):
        raise ValueError(f"k = {k} is out of range for {len(uids)} training examples")
    ordered = np.array(sorted(map(str, uids)))
    return ordered[np.random.default_rng(seed).permutation(len(ordered))[:k]].tolist()


def select_balanced(train: pd.DataFrame, seed: int) -> list[str]:
    """Remove examples so that every (group, label) cell keeps the smallest cell's size."""
    smallest = int(train.groupby("cell").size().min())
    rng = np.random.default_rng(seed)
    removed: list[str] = []
    for _, part in train.sort_values("uid").groupby("cell", sort=True):
        uids = part["uid"].to_numpy()
        removed += uids[rng.permutation(len(uids))[smallest:]].tolist()
    return sorted(removed)


def removal_summary(train: pd.DataFrame, removed: Sequence[str]) -> dict[str, object]:
    """How many of each cell a removal set takes (and of the known mislabeled examples,
    when the world marks them)."""
    chosen = train[train["uid"].isin(set(removed))]
    counts = chosen.groupby("cell").size()
    per_cell = {cell: int(counts.get(cell, 0)) for cell in sorted(train["cell"].unique())}
    top = max(per_cell, key=per_cell.get) if removed else None
    out = {
        "removed": len(chosen),
        "removed_per_cell": per_cell,
        "top_cell": top,
        "top_cell_share": (per_cell[top] / len(chosen)) if removed else math.nan,
    }
    if "mislabeled" in train:
        out["mislabeled_share"] = float(chosen["mislabeled"].mean()) if len(chosen) else math.nan
        out["mislabeled_share_train"] = float(train["mislabeled"].mean())
    return out
