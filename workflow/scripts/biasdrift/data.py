"""Datasets: one loader for the three kinds of dataset alias (hub id, local file,
generated), all normalised to a parquet table with a ``split`` column."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from biasdrift import corpora
from biasdrift.runtime import atomic_path, hf_token, sha256_file

log = logging.getLogger(__name__)

TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet", ".txt")


class DataError(ValueError):
    """Bad input data: the message names the file and the column or split."""


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a local csv / tsv / jsonl / json / parquet / txt (one document per line) file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            frame = pd.read_csv(path)
        elif suffix == ".tsv":
            frame = pd.read_csv(path, sep="\t")
        elif suffix == ".jsonl":
            frame = pd.read_json(path, lines=True)
        elif suffix == ".json":
            frame = pd.read_json(path)
        elif suffix == ".parquet":
            frame = pd.read_parquet(path)
        elif suffix == ".txt":
            lines = [line.rstrip("\n") for line in path.read_text(encoding="utf-8").splitlines()]
            frame = pd.DataFrame({"text": [line for line in lines if line.strip()]})
        else:
            raise DataError(f"{path}: unsupported file type {suffix!r}; use one of {', '.join(TABLE_SUFFIXES)}")
    except (ValueError, pd.errors.ParserError) as err:
        if isinstance(err, DataError):
            raise
        raise DataError(f"{path}: cannot parse as {suffix[1:]}: {err}") from err
    if frame.empty:
        raise DataError(f"{path}: the file holds no rows")
    return frame


def load_hub_dataset(hf_id: str, revision: str, name: str | None, splits: Sequence[str] | None) -> pd.DataFrame:
    """Load a hub dataset with the real ``load_dataset`` (token from HF_TOKEN only)."""
    import datasets

    log.info("loading hub dataset %s (config %s) at revision %s", hf_id, name, revision)
    loaded = datasets.load_dataset(hf_id, name, revision=revision, token=hf_token())
    available = list(loaded.keys())
    wanted = list(splits) if splits else available
    missing = [s for s in wanted if s not in available]
    if missing:
        raise DataError(f"hub dataset {hf_id}: split(s) {missing} not found; available: {available}")
    frames = []
    for split in wanted:
        frame = loaded[split].to_pandas()
        frame["split"] = split
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def prepare_dataset(ref: dict[str, Any], out_path: str | Path) -> dict[str, Any]:
    """Materialise dataset alias ``ref`` as ``out_path`` (parquet, with ``split``).

    ``ref`` is the config entry plus ``alias`` (see :func:`biasdrift.config.dataset_ref`).
    Returns statistics for the manifest.
    """
    alias = ref["alias"]
    if "generate" in ref:
        gen = ref["generate"]
        frame = corpora.generate(gen["generator"], gen.get("params") or {}, int(gen.get("seed", 0)))
        source = {"generate": gen}
    elif "path" in ref:
        frame = read_table(ref["path"])
        source = {"path": ref["path"], "sha256": sha256_file(ref["path"])}
    elif "hf_id" in ref:
        frame = load_hub_dataset(ref["hf_id"], ref.get("revision") or "main", ref.get("name"), ref.get("splits"))
        source = {"hf_id": ref["hf_id"], "revision": ref.get("revision") or "main", "name": ref.get("name")}
    else:
        raise DataError(f"dataset {alias!r}: give exactly one of hf_id, path, generate")
    if frame.empty:
        raise DataError(f"dataset {alias!r}: no rows")
    if "split" not in frame.columns:
        frame["split"] = "train"
    frame["split"] = frame["split"].astype(str)
    with atomic_path(out_path) as tmp:
        frame.to_parquet(tmp, index=False)
    stats = {
        "alias": alias,
        "source": source,
        "rows": len(frame),
        "rows_per_split": {k: int(v) for k, v in frame["split"].value_counts().sort_index().items()},
        "columns": list(frame.columns),
        "sha256": sha256_file(out_path),
    }
    log.info("dataset %s: %d rows %s", alias, stats["rows"], stats["rows_per_split"])
    return stats


def read_dataset(
    path: str | Path,
    columns: Iterable[str] = (),
    split: str | Sequence[str] | None = None,
) -> pd.DataFrame:
    """Read a prepared dataset, checking required columns and non-emptiness, optionally
    keeping only some split(s)."""
    path = Path(path)
    frame = pd.read_parquet(path) if path.suffix == ".parquet" else read_table(path)
    require_columns(frame, columns, str(path))
    if split is not None:
        wanted = [split] if isinstance(split, str) else list(split)
        if "split" not in frame.columns:
            raise DataError(f"{path}: column 'split' is missing, cannot select split(s) {wanted}")
        frame = frame[frame["split"].isin(wanted)].reset_index(drop=True)
        if frame.empty:
            raise DataError(f"{path}: split(s) {wanted} hold no rows")
    if frame.empty:
        raise DataError(f"{path}: no rows")
    return frame


def require_columns(frame: pd.DataFrame, columns: Iterable[str], where: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(f"{where}: missing column(s) {missing}; present: {list(frame.columns)}")
