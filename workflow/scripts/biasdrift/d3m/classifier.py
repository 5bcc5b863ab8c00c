"""Fine-tune a sequence classifier on one world's training split (minus a removal set)
with the foundation's training loop (:func:`biasdrift.training.fit`: resumable
checkpoints in an undeclared scratch directory), and predict every example.

The base model keeps its weights and a snapshot per epoch (``epoch-<n>/``, for a TRAK
ensemble over checkpoints); counterfactual retrainings keep only their predictions.
Training runs a fixed number of steps or epochs: no checkpoint selection on a biased validation
accuracy (spec section 10, item 13).
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from biasdrift.d3m.attribution import TensorDataset, margins
from biasdrift.runtime import atomic_path, config_hash
from biasdrift.training import TrainConfig, fit, make_trainer

log = logging.getLogger(__name__)

EPOCH_PREFIX = "epoch-"
LABEL_NAMES = {0: "not_hateful", 1: "hateful"}


def encode(tokenizer, frame: pd.DataFrame, max_length: int) -> TensorDataset:
    """Token tensors of ``frame.text`` padded to the longest example (at most
    ``max_length`` tokens) plus ``labels``; one fixed length keeps TRAK's vmap happy."""
    import torch

    texts = frame["text"].astype(str).tolist()
    lengths = [len(ids) for ids in tokenizer(texts)["input_ids"]]
    cut = sum(n > max_length for n in lengths)
    if cut:  # real texts may run long; in a generated world it means words the tokenizer never saw
        log.warning(
            "%d of %d texts are longer than max_length %d tokens (longest %d) and are truncated",
            cut,
            len(texts),
            max_length,
            max(lengths),
        )
    longest = min(max(lengths), max_length)
    enc = tokenizer(texts, padding="max_length", truncation=True, max_length=longest, return_tensors="pt")
    tensors = {name: enc[name] for name in tokenizer.model_input_names if name in enc}
    tensors["labels"] = torch.tensor(frame["label"].to_numpy(int), dtype=torch.long)
    return TensorDataset(tensors)


def input_names(dataset: TensorDataset) -> list[str]:
    return [name for name in dataset.tensors if name != "labels"]


def predict(model, dataset: TensorDataset, frame: pd.DataFrame, batch_size: int = 64, device: Any = "cpu"):
    """Predictions table (uid, split, label, group, cell, logit_0, logit_1, prob_1,
    pred, loss, margin) of ``model`` on the encoded ``frame``."""
    import torch

    model = model.to(device).eval()
    names = input_names(dataset)
    chunks = []
    with torch.no_grad():
        for batch in dataset.batches(names, batch_size):
            out = model(**{n: t.to(device) for n, t in zip(names, batch, strict=True)})
            chunks.append(out.logits.float().cpu())
    logits = torch.cat(chunks)  # [n, 2]
    labels = dataset.tensors["labels"]
    out = frame[[c for c in ("uid", "split", "label", "group", "cell") if c in frame]].reset_index(drop=True).copy()
    out["logit_0"], out["logit_1"] = logits[:, 0].numpy(), logits[:, 1].numpy()
    out["prob_1"] = torch.softmax(logits, -1)[:, 1].numpy()
    out["pred"] = logits.argmax(-1).numpy()
    out["loss"] = torch.nn.functional.cross_entropy(logits, labels, reduction="none").numpy()
    out["margin"] = margins(logits, labels).numpy()
    return out


def _epoch_callback(snapshot_dir: Path, epochs: Collection[int]):
    from transformers import TrainerCallback

    keep = set(epochs)

    class EpochSnapshot(TrainerCallback):
        """Save the weights at the end of each epoch in ``epochs`` (those a TRAK
        ensemble uses; bert-base is 440 MB a snapshot) into the scratch directory (a
        resumed run rewrites the same snapshots, bit for bit on CPU)."""

        def on_epoch_end(self, args, state, control, model=None, **kwargs):  # noqa: ARG002
            epoch = round(state.epoch)
            if epoch in keep:
                with atomic_path(snapshot_dir / f"{EPOCH_PREFIX}{epoch}") as tmp:
                    model.save_pretrained(tmp)

    return EpochSnapshot()


def epoch_dirs(model_dir: str | Path) -> dict[int, Path]:
    """Epoch snapshots inside a saved base model directory."""
    found = {}
    for child in Path(model_dir).glob(f"{EPOCH_PREFIX}*"):
        suffix = child.name[len(EPOCH_PREFIX) :]
        if child.is_dir() and suffix.isdigit():
            found[int(suffix)] = child
    return dict(sorted(found.items()))


def load_classifier(ref: dict[str, Any], device: Any = "cpu", **kwargs: Any):
    from biasdrift.models import load_model

    return load_model(
        ref,
        kind="sequence_classification",
        device=device,
        num_labels=2,
        id2label=LABEL_NAMES,
        label2id={v: k for k, v in LABEL_NAMES.items()},
        **kwargs,
    )


def train_classifier(
    *,
    model_ref: dict[str, Any],
    frame: pd.DataFrame,
    removed: Sequence[str],
    cfg: TrainConfig,
    max_length: int,
    seed: int,
    scratch_dir: str | Path,
    out_path: str | Path,
    metrics_path: str | Path,
    device: Any,
    keep_model: bool,
    predict_splits: Sequence[str] = ("val", "test"),
    data_sha256: str | None = None,
    snapshot_epochs: Collection[int] = (),
) -> tuple[dict[str, Any], pd.DataFrame]:
    """Fine-tune ``model_ref`` on the train split of ``frame`` minus ``removed`` uids.

    ``keep_model``: ``out_path`` is the model directory (final weights, tokenizer and an
    ``epoch-<n>/`` snapshot for each of ``snapshot_epochs``); otherwise ``out_path`` is the predictions parquet and no
    weights are kept. Returns the training metrics and the predictions on
    ``predict_splits``.
    """
    import torch

    from biasdrift.models import load_tokenizer

    train = frame[frame["split"] == "train"]
    removed_set = set(removed)
    unknown = removed_set - set(train["uid"])
    if unknown:
        raise ValueError(f"{len(unknown)} removed uid(s) are not training examples, e.g. {sorted(unknown)[:3]}")
    kept = train[~train["uid"].isin(removed_set)].sort_values("uid").reset_index(drop=True)
    if kept.empty:
        raise ValueError(f"removing {len(removed_set)} examples leaves no training data")
    if kept["label"].nunique() < 2:
        log.warning(
            "after removing %d examples only label %s is left: the classifier can only learn a constant",
            len(removed_set),
            kept["label"].iloc[0],
        )
    tokenizer = load_tokenizer(model_ref)
    train_set = encode(tokenizer, kept, max_length)
    scratch_dir = Path(scratch_dir)
    torch.manual_seed(seed)  # the new classification head
    model = load_classifier(model_ref, device=device)
    callbacks = []
    if keep_model and snapshot_epochs:
        callbacks.append(_epoch_callback(scratch_dir / "epochs", snapshot_epochs))
    eval_frame = frame[frame["split"] == "val"]
    trainer = make_trainer(
        model,
        cfg,
        scratch_dir=scratch_dir,
        seed=seed,
        device=torch.device(device).type,
        train_set=train_set,
        eval_set=encode(tokenizer, eval_frame, max_length) if cfg.eval_steps and len(eval_frame) else None,
        tokenizer=tokenizer,
        callbacks=callbacks,
    )
    to_predict = frame[frame["split"].isin(predict_splits)].reset_index(drop=True)
    predictions: dict[str, pd.DataFrame] = {}

    def predict_now(model) -> pd.DataFrame:
        if "frame" not in predictions:
            predictions["frame"] = predict(model, encode(tokenizer, to_predict, max_length), to_predict, device=device)
        return predictions["frame"]

    def save_model(trainer, tmp: Path) -> None:
        trainer.save_model(str(tmp))
        for epoch, path in epoch_dirs(scratch_dir / "epochs").items():
            shutil.copytree(path, tmp / f"{EPOCH_PREFIX}{epoch}")

    def save_predictions(trainer, tmp: Path) -> None:
        predict_now(trainer.model).to_parquet(tmp, index=False)

    save: Callable[[Any, Path], None] = save_model if keep_model else save_predictions
    run_config = {
        "model": model_ref,
        "train": cfg,
        "max_length": max_length,
        "seed": seed,
        "data_sha256": data_sha256,
        "removed_sha": config_hash(sorted(removed_set)),
        "keep_model": keep_model,
        "snapshot_epochs": sorted(snapshot_epochs) if keep_model else [],
    }
    metrics = fit(
        trainer, scratch_dir=scratch_dir, out_dir=out_path, metrics_path=metrics_path, run_config=run_config, save=save
    )
    metrics["n_train"] = len(kept)
    metrics["n_removed"] = len(removed_set)
    return metrics, predict_now(trainer.model)
