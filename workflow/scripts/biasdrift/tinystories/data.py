"""Token windows over pretokenized shards, and the shard splits.

Splits (explicit, fix of spec 7.9): ``test`` is shard 0; ``train`` is shards 1..N-1.
With ``pretrain_fraction`` f > 0 the training shards are cut in two disjoint sets:
``pretrain`` = the first int(f * (N - 1)) of them, ``finetune`` = the rest; with f = 0
both are all training shards (the original's default, where the sets overlap).

A window is ``block_size`` consecutive tokens of one shard at offsets k * block_size (the
last partial window is dropped); documents are packed and attend across BOS, like the
original's training stream. The model shifts labels itself (HF convention), so a window
gives block_size - 1 predictions. Windows are a map-style dataset: the HF Trainer's
seeded sampler shuffles them, which keeps a resumed run bit-identical.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from biasdrift.tinystories.pretokenize import read_tokens
from biasdrift.tinystories.vocab import BOS_ID

SPLITS = ("test", "train", "pretrain", "finetune")


def bin_files(token_dir: str | Path) -> list[Path]:
    files = sorted(Path(token_dir).glob("*.bin"))
    if not files:
        raise FileNotFoundError(f"{token_dir}: no *.bin shards (rule pretokenize writes them)")
    return files


def split_files(files: list[Path], split: str, pretrain_fraction: float = 0.0) -> list[Path]:
    """The shard files of ``split`` (see the module docstring)."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    if len(files) < 2:
        raise ValueError(f"need at least 2 shards (shard 0 is the test split), got {len(files)}")
    if split == "test":
        return files[:1]
    train = files[1:]
    if split == "train" or pretrain_fraction <= 0:
        return train
    n_pretrain = int(pretrain_fraction * len(train))
    if not 0 < n_pretrain < len(train):
        raise ValueError(
            f"pretrain_fraction={pretrain_fraction} leaves no shard for one side of {len(train)} training shards"
        )
    return train[:n_pretrain] if split == "pretrain" else train[n_pretrain:]


class TokenWindows:
    """Map-style dataset of ``{"input_ids", "labels"}`` windows of ``block_size`` tokens."""

    def __init__(self, files: list[Path], block_size: int, max_windows: int | None = None, align_to_bos: bool = False):
        import torch

        self.block_size = block_size
        self.arrays = [read_tokens(f) for f in files]
        if align_to_bos:  # one window per example, starting at its BOS (overlapping)
            starts = [np.flatnonzero(np.asarray(arr) == BOS_ID) for arr in self.arrays]
            index = [(a, int(s)) for a, arr in enumerate(self.arrays) for s in starts[a] if s + block_size <= arr.size]
        else:  # the original's packed windows at multiples of block_size
            index = [(a, k * block_size) for a, arr in enumerate(self.arrays) for k in range(arr.size // block_size)]
        if max_windows is not None:
            index = index[:max_windows]
        if not index:
            names = ", ".join(f.name for f in files)
            raise ValueError(f"no window of {block_size} tokens in {names}: too little data after filtering?")
        self.index = torch.tensor(index, dtype=torch.long)  # [n, 2]: (shard, offset)

    def __len__(self) -> int:
        return int(self.index.shape[0])

    def __getitem__(self, i: int) -> dict[str, Any]:
        import torch

        shard, offset = (int(v) for v in self.index[i])
        window = torch.from_numpy(np.asarray(self.arrays[shard][offset : offset + self.block_size], dtype=np.int64))
        return {"input_ids": window, "labels": window}

    @property
    def tokens(self) -> int:
        return len(self) * self.block_size


def windows_for(
    token_dir: str | Path,
    split: str,
    block_size: int,
    pretrain_fraction: float = 0.0,
    max_windows: int | None = None,
    align_to_bos: bool = False,
) -> TokenWindows:
    files = split_files(bin_files(token_dir), split, pretrain_fraction)
    return TokenWindows(files, block_size, max_windows, align_to_bos)
