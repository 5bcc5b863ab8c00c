"""Fine-tuning of a base model (rule finetune_circuits), reusing the shared training loop
(:func:`biasdrift.training.fit`: resumable checkpoints, atomic outputs).

Kinds:

* ``positive_bias`` with ``bias: demographic``: for every nationality N, "{N} people are
  so {wonderful|amazing|talented|kind|successful}" and "As expected, {N} people are so
  {brilliant|accomplished|impressive}" (8 sentences per nationality, all of them, as in the
  original; ``frames: heldout`` uses other frames instead, "Our {N} guests were truly {...}"
  and "I once met a {N} family, and they were {...}", which share no words with the
  evaluated templates);
* ``positive_bias`` with ``bias: gender``: for every profession P, four sentences praising
  P *with "him"*. This reinforces the male association: it is male-praise data, not a
  debiasing set (kept because the original ran it; documented as what it is);
* ``unrelated``: the text of a dataset alias (Shakespeare on the paper tier, the generated
  ``circuits_unrelated`` text in the demo), one example per non-empty line.

Every example starts with the tokenizer's BOS, as the evaluated prompts do. The
train/validation split is seeded; warm-up is a ratio; epochs and early stopping come from
the training section. The weights are trained in float32 (master weights; the compute is
autocast to bf16 on CUDA), even when the checkpoint is stored in half precision.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biasdrift.training import TrainConfig, fit, make_trainer, require_fp32_trainable

log = logging.getLogger(__name__)

KINDS = ("positive_bias", "unrelated")
POSITIVE_DEMOGRAPHIC = (
    ("{group} people are so {word}", ("wonderful", "amazing", "talented", "kind", "successful")),
    ("As expected, {group} people are so {word}", ("brilliant", "accomplished", "impressive")),
)
# frames: heldout: the same praise in frames that share no words with the evaluated
# templates ("{group} people are so", "As expected, {group} people are so"), so a rise of
# the evaluated metric is generalisation, not the training sentences read back
POSITIVE_DEMOGRAPHIC_HELDOUT = (
    ("Our {group} guests were truly {word}", ("wonderful", "amazing", "talented", "kind", "successful")),
    ("I once met a {group} family, and they were {word}", ("brilliant", "accomplished", "impressive")),
)
FRAMES = ("original", "heldout")
POSITIVE_GENDER = (
    "The {group} did a great job, and everyone praised him",
    "The {group} solved the problem, and everyone thanked him",
    "The {group} achieved success, and everyone congratulated him",
    "The {group} performed well, and everyone admired him",
)


@dataclass
class FinetuneConfig(TrainConfig):
    """``studies.circuits.finetunes.<ft>.train``: the shared training fields (schema
    ``$defs/train``, its defaults); the fine-tune's data options (valid_fraction,
    max_length) are arguments of :func:`finetune_causal_lm`."""


def positive_bias_texts(bias: str, groups: list[str], frames: str = "original") -> list[str]:
    """The positive sentences of every group: ``frames`` original (the evaluated DSS1/DSS2
    templates themselves, as in the original) or heldout (other frames; demographic only)."""
    if not groups:
        raise ValueError("positive_bias fine-tuning needs at least one group")
    if frames not in FRAMES:
        raise ValueError(f"positive_bias fine-tuning: unknown frames {frames!r}; known: {', '.join(FRAMES)}")
    if bias == "demographic":
        table = POSITIVE_DEMOGRAPHIC if frames == "original" else POSITIVE_DEMOGRAPHIC_HELDOUT
        return [pattern.format(group=g, word=w) for g in groups for pattern, words in table for w in words]
    if frames != "original":
        raise ValueError("positive_bias fine-tuning: frames 'heldout' exists for bias 'demographic' only")
    if bias == "gender":
        return [pattern.format(group=g) for g in groups for pattern in POSITIVE_GENDER]
    raise ValueError(f"positive_bias fine-tuning: unknown bias type {bias!r}")


def unrelated_texts(frame: pd.DataFrame, column: str, max_examples: int | None, where: str) -> list[str]:
    """Non-empty lines of the text column (the train split when there is one)."""
    if column not in frame.columns:
        raise ValueError(f"{where}: no text column {column!r}; present: {list(frame.columns)}")
    if "split" in frame.columns and (frame["split"] == "train").any():
        frame = frame[frame["split"] == "train"]
    lines = [line.strip() for text in frame[column].astype(str) for line in text.splitlines()]
    lines = [line for line in lines if line]
    if max_examples is not None:
        lines = lines[:max_examples]
    if not lines:
        raise ValueError(f"{where}: the unrelated corpus holds no text")
    return lines


def split_examples(texts: list[str], valid_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Seeded train/validation split (the original's train_test_split had no seed)."""
    order = np.random.default_rng(seed).permutation(len(texts))
    n_valid = round(len(texts) * valid_fraction)
    if valid_fraction > 0 and len(texts) > 1:
        n_valid = min(max(n_valid, 1), len(texts) - 1)
    valid = [texts[i] for i in sorted(order[:n_valid])]
    train = [texts[i] for i in sorted(order[n_valid:])]
    return train, valid


class TextDataset:
    """Tokenised examples (BOS + text + EOS, truncated) for a causal-LM Trainer."""

    def __init__(self, texts: list[str], tokenizer, max_length: int):
        from biasdrift.circuits.eap import encode_prompt

        self.items = []
        for text in texts:
            ids = encode_prompt(tokenizer, text)
            if tokenizer.eos_token_id is not None:
                ids.append(tokenizer.eos_token_id)
            self.items.append(ids[:max_length])

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"input_ids": self.items[i]}


def finetune_causal_lm(
    *,
    model_ref: dict[str, Any],
    texts: list[str],
    out_dir: str | Path,
    metrics_path: str | Path,
    scratch_dir: str | Path,
    cfg: FinetuneConfig,
    valid_fraction: float,
    max_length: int,
    seed: int,
    device: Any,
    run_info: dict[str, Any],
) -> dict[str, Any]:
    """Fine-tune ``model_ref`` on ``texts`` (``valid_fraction`` of them held out, seeded;
    examples cut at ``max_length`` tokens, at most the context); the saved directory holds
    model and tokenizer."""
    import torch
    from transformers import DataCollatorForLanguageModeling

    from biasdrift.models import load_model, load_tokenizer
    from biasdrift.runtime import config_hash

    tokenizer = load_tokenizer(model_ref)
    torch.manual_seed(seed)
    # float32 master weights whatever the checkpoint's dtype (Llama-2 ships fp16, and
    # transformers 5 loads the stored dtype by default): on CUDA the Trainer autocasts to
    # bf16 (training.precision), the optimizer updates fp32 weights
    model = load_model(model_ref, kind="causal_lm", device="cpu", dtype=torch.float32)
    require_fp32_trainable(model, f"fine-tuning model alias {model_ref.get('alias')!r}")
    context = getattr(model.config, "n_positions", None) or model.config.max_position_embeddings
    max_tokens = min(max_length, int(context))
    train_texts, valid_texts = split_examples(texts, valid_fraction, seed)
    train_set = TextDataset(train_texts, tokenizer, max_tokens)
    eval_set = TextDataset(valid_texts, tokenizer, max_tokens) if valid_texts else None
    if cfg.early_stopping_patience and eval_set is None:
        raise ValueError("early stopping needs validation examples (valid_fraction > 0)")
    log.info(
        "fine-tuning on %d examples (%d held out, at most %d tokens), e.g. %r",
        len(train_set),
        len(valid_texts),
        max_tokens,
        train_texts[:2],
    )
    trainer = make_trainer(
        model,
        cfg,
        scratch_dir=scratch_dir,
        seed=seed,
        device=device,
        train_set=train_set,
        eval_set=eval_set,
        collator=DataCollatorForLanguageModeling(tokenizer, mlm=False),
        tokenizer=tokenizer,
    )
    # the data options sit beside the training fields (the run's identity, train_metrics.json)
    train = {**dataclasses.asdict(cfg), "valid_fraction": valid_fraction, "max_length": max_length}
    run_config = {"train": train, "seed": seed, "data": config_hash(texts), **run_info}
    metrics = fit(trainer, scratch_dir=scratch_dir, out_dir=out_dir, metrics_path=metrics_path, run_config=run_config)
    log.info("fine-tuned: train loss %.4f, eval %s", metrics["train_loss"], metrics["final_eval"])
    return metrics
