"""SentencePiece BPE vocabulary (rule ``train_vocab``) and the one encoder every stage
uses (:class:`StoryTokenizer`).

The trainer follows the original's spec (BPE, ``character_coverage=1.0``,
``split_digits``, ``byte_fallback``, whitespace-only pieces allowed, identity
normalisation; ids: unk 0, BOS 1, EOS 2) but runs without the interactive prompt, takes
its text in memory (no ``tiny.txt``), and by default leaves the test shard out.
"""

from __future__ import annotations

import io
import logging
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from biasdrift.runtime import atomic_path, sha256_file, write_json
from biasdrift.tinystories.corpus import load_shard, shard_files
from biasdrift.tinystories.stories import render

log = logging.getLogger(__name__)

BOS_ID = 1


@dataclass(kw_only=True)
class VocabConfig:
    """Schema: ``studies.tinystories.vocab``."""

    SCHEMA: ClassVar[str] = "studies.tinystories.vocab"  # the schema section it mirrors: its defaults

    vocab_size: int = field(metadata={"help": "Vocabulary size (8192 in the paper)."})
    shards: int = field(metadata={"help": "Train on the first N training shards."})
    include_test_shard: bool = field(
        metadata={"help": "Also train on shard 0 (the original did; it is the test split)."}
    )
    input_sentence_size: int = field(metadata={"help": "Lines SentencePiece samples for training (0 = all)."})
    seed: int = field(metadata={"help": "Seed of the rendering (line order, Sentence choice)."})

    def __post_init__(self) -> None:
        if self.vocab_size < 260:
            raise ValueError(f"vocab_size must be >= 260 (256 byte tokens + unk/bos/eos), got {self.vocab_size}")
        if self.vocab_size > 65535:
            raise ValueError("vocab_size must fit uint16 (<= 65535)")
        if self.shards < 1:
            raise ValueError("shards must be >= 1")


def trainer_options(cfg: VocabConfig, threads: int) -> dict[str, Any]:
    return {
        "model_type": "bpe",
        "vocab_size": cfg.vocab_size,
        "character_coverage": 1.0,
        "split_digits": True,
        "allow_whitespace_only_pieces": True,
        "byte_fallback": True,
        "unk_surface": r" \342\201\207 ",
        "normalization_rule_name": "identity",
        "self_test_sample_size": 0,
        "input_sentence_size": cfg.input_sentence_size,
        "shuffle_input_sentence": True,
        "num_threads": max(1, threads),
        "unk_id": 0,
        "bos_id": BOS_ID,
        "eos_id": 2,
        "pad_id": -1,
        "minloglevel": 2,
    }


def training_lines(files: Sequence[Path], seed: int) -> Iterator[str]:
    """Rendered training text of ``files`` (instruction lines included, as the model
    sees it), one line per text line."""
    for s, path in enumerate(files):
        for i, record in enumerate(load_shard(path)):
            text = render(record, random.Random(seed * 1_000_003 + s * 10_007 + i))
            if text:
                yield from (line for line in text.split("\n") if line.strip())


def train_vocab(
    shard_dir: str | Path,
    cfg: VocabConfig,
    model_path: str | Path,
    vocab_path: str | Path,
    meta_path: str | Path,
    threads: int = 1,
) -> dict[str, Any]:
    """Train the SentencePiece model; write ``tok{V}.model``, ``.vocab`` and a meta file."""
    import sentencepiece as spm

    files = shard_files(shard_dir)
    chosen = files[: cfg.shards + 1] if cfg.include_test_shard else files[1 : cfg.shards + 1]
    if not chosen:
        raise ValueError(f"{shard_dir}: no training shards (there are {len(files)} shards; shard 0 is the test split)")
    options = trainer_options(cfg, threads)
    buffer = io.BytesIO()
    lines = 0

    def counted(it: Iterable[str]) -> Iterator[str]:
        nonlocal lines
        for line in it:
            lines += 1
            yield line

    spm.set_random_generator_seed(cfg.seed)  # input sampling
    spm.SentencePieceTrainer.train(
        sentence_iterator=counted(training_lines(chosen, cfg.seed)), model_writer=buffer, **options
    )
    with atomic_path(model_path) as tmp:
        tmp.write_bytes(buffer.getvalue())
    processor = spm.SentencePieceProcessor(model_file=str(model_path))
    with atomic_path(vocab_path) as tmp:
        tmp.write_text(
            "".join(f"{processor.id_to_piece(i)}\t{processor.get_score(i)}\n" for i in range(processor.vocab_size())),
            encoding="utf-8",
        )
    meta = {
        "config": asdict(cfg),
        "trainer": options,
        "input_shards": [p.name for p in chosen],
        "lines": lines,
        "vocab_size": processor.vocab_size(),
        "model_sha256": sha256_file(model_path),
    }
    write_json(meta_path, meta)
    log.info("trained a %d-piece BPE on %d lines of %d shards", processor.vocab_size(), lines, len(chosen))
    return meta


class StoryTokenizer:
    """SentencePiece encoding with BOS and no EOS (the original's ``encode(bos=True,
    eos=False)``). ``encode_batch`` is the fast path the pretokenizer uses: it encodes
    each distinct space-separated word once and concatenates the cached pieces, which
    equals whole-text encoding for this trainer spec (no piece spans a space; checked
    on a sample by :meth:`word_cache_is_exact` before it is used)."""

    def __init__(self, model_file: str | Path):
        import sentencepiece as spm

        self.model_file = str(model_file)
        self.sp = spm.SentencePieceProcessor(model_file=self.model_file)
        self.vocab_size = self.sp.vocab_size()
        self.bos_id = self.sp.bos_id()
        self._cache: dict[str, list[int]] = {}

    def __getstate__(self) -> dict[str, Any]:  # picklable for process pools
        return {"model_file": self.model_file}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["model_file"])

    def encode(self, text: str, bos: bool = True) -> list[int]:
        ids = self.sp.encode(text)
        return [self.bos_id, *ids] if bos else ids

    def decode(self, ids: Iterable[int]) -> str:
        return self.sp.decode([int(i) for i in ids])

    def _words(self, text: str) -> list[int]:
        cache, out = self._cache, []
        for word in text.split(" "):
            if not word:
                continue
            ids = cache.get(word)
            if ids is None:
                ids = cache[word] = self.sp.encode(word)
            out += ids
        return out

    def word_cache_is_exact(self, texts: Sequence[str]) -> bool:
        return all(self._words(t) == self.sp.encode(t) for t in texts)

    def encode_batch(self, texts: Sequence[str], fast: bool = True) -> np.ndarray:
        """BOS + ids of every text, concatenated, as uint16 (the shard format)."""
        if self.vocab_size > 65535:
            raise ValueError("vocabulary does not fit uint16")
        encode = self._words if fast else self.sp.encode
        stream: list[int] = []
        for text in texts:
            stream.append(self.bos_id)
            stream += encode(text)
        return np.array(stream, dtype=np.uint16)


def tokenizer_hash(model_file: str | Path) -> str:
    return sha256_file(model_file)
