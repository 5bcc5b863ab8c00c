"""Preference pairs: schema checks, cleaning, the seeded held-out split, and left/right
mixes (rule prepare_pairs).

Cleaning (idempotent): strip whitespace, leading newlines and wrapping double quotes
(the real PoliTune sets have all three), then drop rows with an empty field, rows whose
chosen equals rejected, and exact duplicates. The held-out split is drawn by prompt, so
no prompt is in both splits.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from biasdrift.data import DataError, read_dataset, require_columns
from biasdrift.runtime import atomic_path

log = logging.getLogger(__name__)

COLUMNS = ("prompt", "chosen", "rejected")
SPLITS = ("train", "heldout")


@dataclass(frozen=True)
class PairsConfig:
    SCHEMA: ClassVar[str] = "studies.politune.data"  # the schema section it mirrors: its defaults

    heldout_fraction: float = field(metadata={"help": "Share of prompts held out for evaluation."})
    seed: int = field(metadata={"help": "Seed of the held-out split and of mixes."})
    max_rows: int | None = field(metadata={"help": "Keep at most this many rows (after cleaning)."})

    def __post_init__(self) -> None:
        if not 0 <= self.heldout_fraction < 1:
            raise ValueError(f"heldout_fraction must be in [0, 1), got {self.heldout_fraction}")


def clean_text(text: str) -> str:
    """Strip whitespace and wrapping double quotes until nothing changes."""
    previous = None
    while previous != text:
        previous = text
        text = text.strip()
        if len(text) >= 2 and text[0] == text[-1] == '"':
            text = text[1:-1]
    return text


def check_schema(frame: pd.DataFrame, where: str) -> None:
    """The three columns exist and hold strings (the message names file, column and row)."""
    require_columns(frame, COLUMNS, where)
    for column in COLUMNS:
        bad = frame.index[~frame[column].map(lambda v: isinstance(v, str))]
        if len(bad):
            value = frame.loc[bad[0], column]
            raise DataError(
                f"{where}: column {column!r} must hold text; row {bad[0]} holds {value!r} ({len(bad)} such row(s))"
            )


def clean_pairs(frame: pd.DataFrame, where: str) -> tuple[pd.DataFrame, dict[str, int]]:
    check_schema(frame, where)
    out = frame[list(COLUMNS)].copy()
    for column in COLUMNS:
        out[column] = out[column].map(clean_text)
    stats = {"rows_in": len(out)}
    empty = (out[list(COLUMNS)] == "").any(axis=1)
    stats["dropped_empty"] = int(empty.sum())
    out = out[~empty]
    same = out["chosen"] == out["rejected"]
    stats["dropped_chosen_equals_rejected"] = int(same.sum())
    out = out[~same]
    duplicated = out.duplicated(list(COLUMNS))
    stats["dropped_duplicates"] = int(duplicated.sum())
    out = out[~duplicated].reset_index(drop=True)
    stats["rows_out"] = len(out)
    stats["duplicate_prompts"] = int(out["prompt"].duplicated().sum())
    if out.empty:
        raise DataError(f"{where}: no preference pairs left after cleaning ({stats})")
    return out, stats


def split_heldout(frame: pd.DataFrame, fraction: float, seed: int) -> pd.DataFrame:
    """Add ``split`` (train / heldout): round(fraction * prompts) prompts are held out,
    at least one when the fraction is positive and there are two prompts or more."""
    prompts = sorted(frame["prompt"].unique())
    n_held = round(len(prompts) * fraction)
    if fraction > 0 and len(prompts) > 1:
        n_held = max(1, min(len(prompts) - 1, n_held))
    held = set(random.Random(seed).sample(prompts, n_held))
    out = frame.copy()
    out["split"] = ["heldout" if p in held else "train" for p in out["prompt"]]
    return out


def mix_pairs(parts: dict[str, pd.DataFrame], fractions: dict[str, float], seed: int) -> pd.DataFrame:
    """A mix: ``fractions[side]`` of each side's own pairs, per split, then shuffled.
    Pairs keep their direction, so a left/right mix holds pairs that pull both ways."""
    pieces = []
    for offset, (side, fraction) in enumerate(sorted(fractions.items())):
        frame = parts[side]
        for split in SPLITS:
            rows = frame[frame["split"] == split]
            n = round(len(rows) * fraction)
            pieces.append(rows.sample(n=n, random_state=seed + offset).assign(source=side))
    mixed = pd.concat(pieces, ignore_index=True)
    if mixed.empty:
        raise DataError(f"mix {fractions}: no rows (fractions too small?)")
    return mixed.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def prepare_pairs(
    spec: dict[str, Any],
    inputs: dict[str, str | Path],
    out_path: str | Path,
    cfg: PairsConfig,
) -> dict[str, Any]:
    """Write one side's cleaned, split pairs (parquet: prompt, chosen, rejected, split,
    source). ``spec`` is ``{"dataset": alias}`` (``inputs`` = {alias: parquet}) or
    ``{"mix": {side: fraction}}`` (``inputs`` = {side: prepared pairs of that side})."""
    if "dataset" in spec:
        ((alias, path),) = inputs.items()
        frame, stats = clean_pairs(read_dataset(path), f"{path} (dataset {alias})")
        if cfg.max_rows is not None and len(frame) > cfg.max_rows:
            frame = frame.sample(n=cfg.max_rows, random_state=cfg.seed).reset_index(drop=True)
            stats["truncated_to"] = cfg.max_rows
        frame = split_heldout(frame, cfg.heldout_fraction, cfg.seed).assign(source=alias)
    else:
        parts = {}
        for side, path in inputs.items():
            part = read_dataset(path, [*COLUMNS, "split"])
            parts[side] = part
        frame = mix_pairs(parts, spec["mix"], cfg.seed)
        shared = set(parts[next(iter(parts))]["prompt"])
        for part in list(parts.values())[1:]:
            shared &= set(part["prompt"])
        stats = {"rows_out": len(frame), "prompts_shared_by_all_parts": len(shared)}
    with atomic_path(out_path) as tmp:
        frame.to_parquet(tmp, index=False)
    stats["rows_per_split"] = {s: int((frame["split"] == s).sum()) for s in SPLITS}
    log.info("pairs %s: %s", out_path, stats)
    return stats


def read_pairs(path: str | Path, split: str) -> pd.DataFrame:
    return read_dataset(path, [*COLUMNS, "split"], split=split)
