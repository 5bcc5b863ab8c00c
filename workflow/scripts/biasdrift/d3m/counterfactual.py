"""The training jobs of the study: the base models and the counterfactual retrainings
(a removal set, then the same fine-tuning recipe), each evaluated the same way.

Removal sets are drawn before any model is loaded, so a bad k, an alignment table
that does not match the data or an unknown method fails before training starts.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from biasdrift.d3m import alignment as al
from biasdrift.d3m.classifier import train_classifier
from biasdrift.d3m.data import read_world, split_frame
from biasdrift.d3m.metrics import bootstrap_intervals, classification_metrics
from biasdrift.runtime import atomic_path, sha256_file, write_json, write_text
from biasdrift.training import TrainConfig

log = logging.getLogger(__name__)

EVAL_SPLITS = ("val", "test")
KINDS = ("lowest", "random", "heuristic", "balance")


def evaluate(preds: pd.DataFrame, splits: Sequence[str], n_boot: int, level: float, seed: int) -> dict[str, Any]:
    """Metrics with bootstrap intervals of each split in ``splits``."""
    out = {}
    for split in splits:
        part = preds[preds["split"] == split]
        metrics = classification_metrics(part, where=f"{split} predictions")
        metrics["ci"] = bootstrap_intervals(part, n_boot=n_boot, level=level, seed=seed)
        out[split] = metrics
    return out


def read_alignment(path: str | Path, train: pd.DataFrame) -> pd.DataFrame:
    """An alignment table that covers exactly the training uids of the data."""
    table = pd.read_parquet(path)
    have, want = set(table["uid"]), set(train["uid"])
    if have != want:
        raise ValueError(
            f"{path}: alignment uids do not match the training split ({len(want - have)} missing, "
            f"{len(have - want)} unexpected); it was computed for other data"
        )
    return table


def removal_kind(method: str) -> str:
    """The removal of a method name: random, balance, heuristic-<attribution> or an
    attribution (its k lowest alignments)."""
    from biasdrift.d3m.workflow import BALANCE, HEURISTIC, RANDOM

    if method == RANDOM:
        return "random"
    if method == BALANCE:
        return "balance"
    return "heuristic" if method.startswith(HEURISTIC) else "lowest"


def removal_set(
    kind: str,
    train: pd.DataFrame,
    seed: int,
    k: float | None = None,
    unit: str = "fraction",
    alignment: pd.DataFrame | None = None,
) -> tuple[list[str], int | None]:
    """(removed uids, k as a count) for one run; every check happens here."""
    if kind not in KINDS:
        raise ValueError(f"unknown removal kind {kind!r}; known: {', '.join(KINDS)}")
    if kind in ("lowest", "heuristic") and alignment is None:
        raise ValueError(f"removal kind {kind!r} needs an alignment table")
    count = al.resolve_k(k, unit, len(train)) if kind in ("lowest", "random") else None
    if kind == "lowest":
        return al.select_lowest(alignment, count), count
    if kind == "random":
        return al.select_random(train["uid"], count, seed), count
    if kind == "heuristic":
        return al.select_heuristic(alignment), None
    return al.select_balanced(train, seed), None


@dataclass
class RunSpec:
    """What every training run of the study shares (base models and retrainings)."""

    model_ref: dict[str, Any]
    data_path: Path
    cfg: TrainConfig
    max_length: int
    seed: int
    scratch_dir: Path
    preds_path: Path
    metrics_path: Path
    train_metrics_path: Path
    device: Any
    n_boot: int
    level: float
    snapshot_epochs: tuple[int, ...] = ()  # base models: the epochs a TRAK ensemble uses

    def train(self, frame: pd.DataFrame, removed: Sequence[str], out_path: Path, keep_model: bool, splits):
        return train_classifier(
            model_ref=self.model_ref,
            frame=frame,
            removed=removed,
            cfg=self.cfg,
            max_length=self.max_length,
            seed=self.seed,
            scratch_dir=self.scratch_dir,
            out_path=out_path,
            metrics_path=self.train_metrics_path,
            device=self.device,
            keep_model=keep_model,
            predict_splits=splits,
            data_sha256=sha256_file(self.data_path),
            snapshot_epochs=self.snapshot_epochs,
        )


def finetune_base(spec: RunSpec, model_dir: str | Path) -> dict[str, Any]:
    """A base model on the full training split: weights with the epoch snapshots of
    ``spec.snapshot_epochs``, and predictions (with per-example loss) on every split."""
    frame = read_world(spec.data_path)
    train_metrics, preds = spec.train(frame, [], Path(model_dir), True, ("train", *EVAL_SPLITS))
    with atomic_path(spec.preds_path) as tmp:
        preds.to_parquet(tmp, index=False)
    run = {"method": "base", "k": None, "k_count": 0, "seed": spec.seed}
    return _write_run_metrics(spec, preds, run, train_metrics)


def retrain(
    spec: RunSpec,
    *,
    kind: str,
    method: str,
    k: float | None,
    unit: str,
    align_path: str | Path | None,
    removed_path: str | Path,
) -> dict[str, Any]:
    """One counterfactual run: draw the removal set, retrain without it, evaluate."""
    frame = read_world(spec.data_path)
    train = split_frame(frame, "train")
    alignment = read_alignment(align_path, train) if align_path else None
    removed, count = removal_set(kind, train, spec.seed, k=k, unit=unit, alignment=alignment)
    summary = al.removal_summary(train, removed)
    log.info(
        "%s (k=%s): removing %d of %d training examples; per cell %s",
        method,
        k,
        len(removed),
        len(train),
        summary["removed_per_cell"],
    )
    write_text(removed_path, "".join(f"{uid}\n" for uid in removed))
    train_metrics, preds = spec.train(frame, removed, spec.preds_path, False, EVAL_SPLITS)
    run = {
        "method": method,
        "k": k,
        "k_count": len(removed) if count is None else count,
        "seed": spec.seed,
        "kind": kind,
        **summary,
    }
    return _write_run_metrics(spec, preds, run, train_metrics)


def _write_run_metrics(spec: RunSpec, preds: pd.DataFrame, run: dict, train_metrics: dict) -> dict[str, Any]:
    evaluation = evaluate(preds, EVAL_SPLITS, spec.n_boot, spec.level, spec.seed)
    out = {
        "run": {**run, "n_train": train_metrics["n_train"]},
        "splits": evaluation,
        "train": {k: train_metrics[k] for k in ("global_step", "train_loss", "resumed_from_step")},
    }
    write_json(spec.metrics_path, out)
    test = evaluation["test"]
    log.info(
        "%s seed %s: test accuracy %.3f, WGA (cells) %.3f [%s], WGA (groups) %.3f",
        run["method"],
        spec.seed,
        test["accuracy"],
        test["wga_cell"],
        test["worst_cell"],
        test["wga_group"],
    )
    return {"run": out["run"], "test_wga_cell": test["wga_cell"], "test_accuracy": test["accuracy"]}
