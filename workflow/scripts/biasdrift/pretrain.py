"""Rule pretrain_lm: pretrain a tiny model from scratch on a corpus (causal LM for
gpt2 / llama, masked LM for bert) with the shared training loop."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from biasdrift.data import DataError, read_dataset
from biasdrift.models import ModelSize, build_model, get_architecture
from biasdrift.runtime import sha256_file
from biasdrift.training import TrainConfig, fit, make_trainer

log = logging.getLogger(__name__)


@dataclass
class PretrainConfig(TrainConfig):
    """Training fields plus what pretraining adds (schema: ``$defs/pretrain``)."""

    SCHEMA: ClassVar[str] = "$defs.pretrain"  # the schema section it mirrors: its defaults

    block_size: int = field(metadata={"help": "Tokens per packed training block."})
    mlm_probability: float = field(metadata={"help": "Masked fraction (masked LM)."})
    valid_blocks: int = field(metadata={"help": "Validation blocks evaluated (0 = none)."})


class BlockDataset:
    """Packed token blocks as a map-style dataset of ``{"input_ids": LongTensor}``."""

    def __init__(self, blocks: list[list[int]]):
        import torch

        self.blocks = torch.tensor(blocks, dtype=torch.long)  # [n_blocks, block_size]

    def __len__(self) -> int:
        return self.blocks.shape[0]

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"input_ids": self.blocks[i], "labels": self.blocks[i]}


class MaskedBlockDataset(BlockDataset):
    """Blocks with BERT masking (80% [MASK], 10% random token, 10% unchanged) drawn
    from a generator seeded by ``(seed, index)``, over ``repeats`` passes of the blocks
    (static masking with duplication, as in the original BERT recipe).

    The masks are a pure function of the sample index, not of a random stream: the
    dataloader prefetches and collates the next batch before a checkpoint is written,
    so stream-drawn masks would differ after a resume.
    """

    def __init__(self, blocks: list[list[int]], tokenizer, probability: float, seed: int, repeats: int = 1):
        import torch

        super().__init__(blocks)
        special = torch.tensor(sorted(set(tokenizer.all_special_ids)), dtype=torch.long)
        self.maskable = ~torch.isin(self.blocks, special)  # [n_blocks, block_size]
        self.mask_id = tokenizer.mask_token_id
        self.vocab = len(tokenizer)
        self.probability, self.seed, self.repeats = probability, seed, repeats

    def __len__(self) -> int:
        return self.blocks.shape[0] * self.repeats

    def __getitem__(self, j: int) -> dict[str, Any]:
        import torch

        i = j % self.blocks.shape[0]
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + j)
        ids = self.blocks[i].clone()
        chosen = (torch.rand(ids.shape, generator=gen) < self.probability) & self.maskable[i]
        labels = torch.where(chosen, ids, torch.full_like(ids, -100))
        roll = torch.rand(ids.shape, generator=gen)
        random_ids = torch.randint(self.vocab, ids.shape, generator=gen)
        ids = torch.where(chosen & (roll < 0.8), torch.full_like(ids, self.mask_id), ids)
        ids = torch.where(chosen & (roll >= 0.8) & (roll < 0.9), random_ids, ids)
        return {"input_ids": ids, "labels": labels}


def pack_blocks(texts: list[str], tokenizer, block_size: int, task: str) -> list[list[int]]:
    """Tokenise documents, join them and cut the stream into full blocks.

    Causal LM: each document is followed by EOS. Masked LM: each document carries the
    tokenizer's own special tokens ([CLS] ... [SEP]). The last partial block is dropped.
    """
    if task == "clm":
        if tokenizer.eos_token_id is None:
            raise ValueError("a causal-LM tokenizer needs an EOS token to separate documents")
        encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
        stream = [tok for ids in encoded for tok in (*ids, tokenizer.eos_token_id)]
    else:
        encoded = tokenizer(texts, add_special_tokens=True, truncation=False)["input_ids"]
        stream = [tok for ids in encoded for tok in ids]
    n_blocks = len(stream) // block_size
    return [stream[i * block_size : (i + 1) * block_size] for i in range(n_blocks)]


def mlm_repeats(cfg: PretrainConfig, n_blocks: int) -> int:
    """Passes over the blocks a masked-LM run needs (each pass gets fresh masks)."""
    if cfg.max_steps > 0:
        return max(1, math.ceil(cfg.max_steps * cfg.batch_size * cfg.grad_accum / n_blocks))
    return max(1, math.ceil(cfg.epochs))


def pretrain_lm(
    *,
    arch: str,
    size: ModelSize,
    tokenizer_dir: str | Path,
    corpus_path: str | Path,
    text_column: str,
    out_dir: str | Path,
    metrics_path: str | Path,
    scratch_dir: str | Path,
    cfg: PretrainConfig,
    seed: int,
    device: Any,
) -> dict[str, Any]:
    """Build ``arch`` at ``size`` and pretrain it on the corpus's ``train`` split.

    The saved directory holds model and tokenizer (``save_pretrained``, safetensors),
    loadable with ``AutoModelFor{CausalLM,MaskedLM}.from_pretrained``.
    """
    import torch
    from transformers import AutoTokenizer

    spec = get_architecture(arch)
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir), local_files_only=True)
    if spec.task == "mlm" and tokenizer.mask_token is None:
        raise ValueError(f"arch {arch} is a masked LM but tokenizer {tokenizer_dir} has no mask token")
    if cfg.block_size > size.context:
        raise ValueError(f"block_size {cfg.block_size} exceeds the model context {size.context}")

    train_texts = read_dataset(corpus_path, [text_column], split="train")[text_column].tolist()
    train_blocks = pack_blocks(train_texts, tokenizer, cfg.block_size, spec.task)
    if not train_blocks:
        raise DataError(f"{corpus_path}: the train split is shorter than one block of {cfg.block_size} tokens")
    eval_set = None
    if cfg.valid_blocks:
        try:
            valid_texts = read_dataset(corpus_path, [text_column], split="valid")[text_column].tolist()
        except DataError:
            log.warning("%s has no valid split: no validation loss", corpus_path)
        else:
            valid_blocks = pack_blocks(valid_texts, tokenizer, cfg.block_size, spec.task)[: cfg.valid_blocks]
            eval_set = BlockDataset(valid_blocks) if valid_blocks else None
    log.info(
        "corpus %s: %d train blocks of %d tokens (%d documents)%s",
        corpus_path,
        len(train_blocks),
        cfg.block_size,
        len(train_texts),
        f", {len(eval_set)} validation blocks" if eval_set else "",
    )

    if spec.task == "mlm":
        repeats = mlm_repeats(cfg, len(train_blocks))
        train_set = MaskedBlockDataset(train_blocks, tokenizer, cfg.mlm_probability, seed, repeats)
        if eval_set is not None:
            eval_set = MaskedBlockDataset(eval_set.blocks.tolist(), tokenizer, cfg.mlm_probability, seed + 1)
        overrides = {"num_train_epochs": cfg.epochs / repeats}
    else:
        train_set, overrides = BlockDataset(train_blocks), {}

    torch.manual_seed(seed)
    model = build_model(arch, size, tokenizer)
    trainer = make_trainer(
        model,
        cfg,
        scratch_dir=scratch_dir,
        seed=seed,
        device=device,
        train_set=train_set,
        eval_set=eval_set,
        tokenizer=tokenizer,
        **overrides,
    )
    run_config = {
        "arch": arch,
        "size": size,
        "train": cfg,
        "seed": seed,
        "corpus_sha256": sha256_file(corpus_path),
        "tokenizer_sha256": sha256_file(Path(tokenizer_dir) / "tokenizer.json"),
    }
    metrics = fit(trainer, scratch_dir=scratch_dir, out_dir=out_dir, metrics_path=metrics_path, run_config=run_config)
    log.info("pretrained %s: train loss %.4f, eval %s", arch, metrics["train_loss"], metrics["final_eval"])
    return metrics
