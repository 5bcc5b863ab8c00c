"""Score matrices on disk: always (n_train, n_query) float32 ``scores.npy`` with a uid
sidecar ``uids.json`` ({"train": [...], "query": [...]}), so no later stage depends on
row order (the thesis transposed its matrices back and forth; spec section 4.3).

Sign convention of every stored matrix: positive = the training example *helps* the
query (removing it lowers the query's margin)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from biasdrift.runtime import atomic_path, read_json, write_json


class ScoreError(ValueError):
    """A score matrix does not fit the data it is used with."""


def save_scores(
    scores_path: str | Path,
    uids_path: str | Path,
    scores: np.ndarray,
    train_uids: Sequence[str],
    query_uids: Sequence[str],
) -> None:
    scores = np.asarray(scores, dtype=np.float32)
    if scores.shape != (len(train_uids), len(query_uids)):
        raise ScoreError(
            f"score matrix has shape {scores.shape}, expected (n_train, n_query) = "
            f"({len(train_uids)}, {len(query_uids)})"
        )
    if not np.isfinite(scores).all():
        raise ScoreError(f"score matrix has {int((~np.isfinite(scores)).sum())} non-finite entries")
    with atomic_path(scores_path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, scores)
    write_json(uids_path, {"train": list(map(str, train_uids)), "query": list(map(str, query_uids))})


def load_scores(
    scores_path: str | Path,
    uids_path: str | Path,
    train_uids: Sequence[str] | None = None,
    query_uids: Sequence[str] | None = None,
) -> tuple[np.ndarray, list[str], list[str]]:
    """The matrix and its uids; if expected uids are given, the matrix is reordered to
    them and any mismatch (missing, extra, transposed) is an error naming the file."""
    scores = np.load(scores_path)
    uids: dict[str, Any] = read_json(uids_path)
    rows, cols = list(uids["train"]), list(uids["query"])
    if scores.ndim != 2 or scores.shape != (len(rows), len(cols)):
        raise ScoreError(
            f"{scores_path}: shape {scores.shape} does not match its uid sidecar "
            f"({len(rows)} train x {len(cols)} query uids in {uids_path})"
        )
    if train_uids is not None:
        scores = scores[_reorder(rows, train_uids, f"{scores_path} (train rows)"), :]
        rows = list(train_uids)
    if query_uids is not None:
        scores = scores[:, _reorder(cols, query_uids, f"{scores_path} (query columns)")]
        cols = list(query_uids)
    return scores.astype(np.float32, copy=False), rows, cols


def _reorder(have: Sequence[str], want: Sequence[str], where: str) -> np.ndarray:
    position = {uid: i for i, uid in enumerate(have)}
    if len(position) != len(have):
        raise ScoreError(f"{where}: duplicate uids in the sidecar")
    missing = [u for u in want if u not in position]
    extra = set(have) - set(want)
    if missing or extra or len(want) != len(have):
        raise ScoreError(
            f"{where}: uids do not match the data: {len(missing)} expected uid(s) missing "
            f"(e.g. {missing[:3]}), {len(extra)} unexpected (e.g. {sorted(extra)[:3]}); "
            "the scores belong to another dataset or split"
        )
    return np.array([position[u] for u in want], dtype=np.int64)
