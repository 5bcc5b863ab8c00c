"""Rule-level steps around the attribution: score a world's base model(s), and turn a
score matrix into the alignment table of the training set."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biasdrift.d3m import alignment as al
from biasdrift.d3m.data import read_world, split_frame
from biasdrift.d3m.scores import load_scores, save_scores
from biasdrift.runtime import atomic_path
from biasdrift.training import remove_scratch

log = logging.getLogger(__name__)


def checkpoint_dirs(model_dirs: Sequence[str | Path], epochs: Sequence[int]) -> list[Path]:
    """The ensemble: each base model's final weights, or its ``epoch-<n>`` snapshots."""
    from biasdrift.d3m.classifier import epoch_dirs

    out = []
    for model_dir in model_dirs:
        if not epochs:
            out.append(Path(model_dir))
            continue
        snapshots = epoch_dirs(model_dir)
        missing = [e for e in epochs if e not in snapshots]
        if missing:
            raise ValueError(f"{model_dir}: no snapshot of epoch(s) {missing}; available: {sorted(snapshots)}")
        out += [snapshots[e] for e in epochs]
    return out


def score_world(
    *,
    method: str,
    cfg: Any,  # TrakConfig or InfluenceConfig
    model_dirs: Sequence[str | Path],
    epochs: Sequence[int],
    data_path: str | Path,
    query_split: str,
    max_length: int,
    scores_path: str | Path,
    uids_path: str | Path,
    work_dir: str | Path,
    device: str,
    seed: int,
    where: str = "trak",
) -> dict[str, Any]:
    """Score matrix (n_train, n_query) of one attribution ``method`` (trak | if).

    TRAK settings that cannot work here (proj_dim >= the training rows with lambda_reg
    0, projector cuda without fast_jl) fail before any model is loaded, naming
    ``where`` (the config keys)."""
    from biasdrift.d3m import attribution as at

    frame = read_world(data_path)
    train, query = split_frame(frame, "train"), split_frame(frame, query_split)
    choice = None
    if method == "trak":
        at.check_proj_dim(cfg, len(train), where)
        choice = at.choose_projector(cfg, device)
    checkpoints = checkpoint_dirs(model_dirs, epochs)

    from transformers import AutoTokenizer

    from biasdrift.d3m.classifier import encode, input_names, load_classifier

    tokenizer = AutoTokenizer.from_pretrained(str(model_dirs[0]), local_files_only=True)
    train_set, query_set = encode(tokenizer, train, max_length), encode(tokenizer, query, max_length)
    names = input_names(train_set)

    def load(path: Path):
        ref = {"alias": path.name, "source": "path", "path": str(path)}
        return load_classifier(ref, device=device, attn_implementation="eager")

    if method == "trak":
        scores, info = at.trak_scores(
            [load(p) for p in checkpoints], names, train_set, query_set, cfg, work_dir, device=device, choice=choice
        )
    elif method == "if":
        if len(checkpoints) != 1:
            raise ValueError("influence functions use one checkpoint (the score seed's final weights)")
        scores, info = at.influence_scores(
            load(checkpoints[0]), names, train_set, query_set, cfg, work_dir, device=device, seed=seed
        )
    else:
        raise ValueError(f"unknown attribution method {method!r} (trak or if)")
    save_scores(scores_path, uids_path, scores, train["uid"].tolist(), query["uid"].tolist())
    remove_scratch(work_dir)  # the attribution store, and the .scratch folder once empty
    info.update(
        n_train=len(train),
        n_query=len(query),
        query_split=query_split,
        checkpoint_dirs=[str(p) for p in checkpoints],
        score_mean=float(scores.mean()),
        score_std=float(scores.std()),
    )
    log.info("%s scores %s: mean %.3g, sd %.3g", method, scores.shape, info["score_mean"], info["score_std"])
    return info


def align_world(
    *,
    data_path: str | Path,
    scores_path: str | Path,
    uids_path: str | Path,
    preds_path: str | Path,
    query_split: str,
    grouping: str,
    align_path: str | Path,
    groups_path: str | Path,
) -> dict[str, Any]:
    """Alignment table of the training split (uid, group, label, cell, A, A_cell,
    A_group, rank) from a score matrix and the score model's query losses."""
    frame = read_world(data_path)
    train, query = split_frame(frame, "train"), split_frame(frame, query_split)
    scores, _, _ = load_scores(scores_path, uids_path, train["uid"].tolist(), query["uid"].tolist())
    preds = pd.read_parquet(preds_path).set_index("uid")
    missing = sorted(set(query["uid"]) - set(preds.index))
    if missing:
        raise ValueError(f"{preds_path}: no prediction for {len(missing)} query uid(s), e.g. {missing[:3]}")
    loss = preds.loc[query["uid"], "loss"].to_numpy(float)
    table, groups = al.align(scores, train, query, loss, grouping)
    with atomic_path(align_path) as tmp:
        table.to_parquet(tmp, index=False)
    with atomic_path(groups_path) as tmp:
        groups.to_csv(tmp, index=False)
    lowest = table.nsmallest(max(1, len(table) // 20), "A")
    share = lowest["cell"].value_counts(normalize=True)
    info = {
        "n_train": len(table),
        "n_negative": int((table["A"] < 0).sum()),
        "lowest_5pct_top_cell": str(share.index[0]),
        "lowest_5pct_top_cell_share": float(share.iloc[0]),
        "group_losses": groups.to_dict(orient="records"),
        **({"lowest_5pct_mislabeled_share": float(lowest["mislabeled"].mean())} if "mislabeled" in lowest else {}),
        "A_mean": float(np.mean(table["A"])),
    }
    log.info(
        "alignment: %d of %d negative; the lowest 5%% are %.0f%% %s",
        info["n_negative"],
        len(table),
        100 * info["lowest_5pct_top_cell_share"],
        info["lowest_5pct_top_cell"],
    )
    return info
