"""Tokenizers trained locally (no hub): byte-level BPE (GPT-2 / Llama style) and
WordPiece (BERT style), saved with ``save_pretrained`` so ``AutoTokenizer`` reloads them.

Studies may register further kinds in ``TRAINERS`` from ``biasdrift.<study>.tokenizers``
(tinystories adds SentencePiece)."""

from __future__ import annotations

import heapq
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any, ClassVar

from biasdrift import plugins
from biasdrift.runtime import atomic_path

log = logging.getLogger(__name__)

BPE_SPECIALS = {"eos": "<|endoftext|>", "pad": "<|pad|>"}
WORDPIECE_SPECIALS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")


@dataclass
class TokenizerConfig:
    SCHEMA: ClassVar[str] = "$defs.tokenizer"  # the schema section it mirrors: its defaults
    kind: str = field(metadata={"help": "bpe (byte-level BPE) or wordpiece (BERT)."})
    vocab_size: int = field(metadata={"help": "Target vocabulary size."})
    lowercase: bool = field(metadata={"help": "Lower-case text first."})
    min_frequency: int = field(metadata={"help": "Minimum pair frequency for a merge."})


def byte_level_bpe(
    texts: Iterable[str], vocab_size: int, min_frequency: int, specials: Sequence[str], lowercase: bool = False
):
    """A byte-level BPE ``tokenizers.Tokenizer`` (GPT-2 / Llama 3 / Qwen style) trained on
    ``texts``, with ``specials`` as the first ids (the demo tokenizers and the smoke tier's
    stand-ins for hub tokenizers share it)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    if lowercase:
        tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(specials),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def _train_bpe(texts: Iterable[str], cfg: TokenizerConfig):
    from transformers import PreTrainedTokenizerFast

    tok = byte_level_bpe(
        texts, cfg.vocab_size, cfg.min_frequency, [BPE_SPECIALS["eos"], BPE_SPECIALS["pad"]], cfg.lowercase
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BPE_SPECIALS["eos"],
        eos_token=BPE_SPECIALS["eos"],
        unk_token=BPE_SPECIALS["eos"],
        pad_token=BPE_SPECIALS["pad"],
        model_input_names=["input_ids", "attention_mask"],
    )


def wordpiece_vocab(
    words: Counter[str], vocab_size: int, min_frequency: int, specials: Sequence[str], prefix: str = "##"
) -> list[str]:
    """A WordPiece vocabulary learned as by ``tokenizers.trainers.WordPieceTrainer`` (BPE
    merges over words split into a first character and ``##``-prefixed continuations,
    the most frequent pair first), but reproducible: ties go to the smallest pair. The
    Rust trainer numbers the ``##`` pieces in hash-map order, which changes from process
    to process, so its merges and ids did too (the same corpus gave other BERT models).

    ``words`` counts the normalised, pre-tokenised words. Returns the tokens in id order:
    specials, characters, ``##`` characters (each sorted), then merges in merge order."""
    splits = {word: [word[0], *(prefix + c for c in word[1:])] for word in words if word}
    alphabet = sorted({c for word in splits for c in word})
    continuations = sorted({piece for parts in splits.values() for piece in parts[1:]})
    vocab = list(dict.fromkeys([*specials, *alphabet, *continuations]))
    known = set(vocab)
    pairs: Counter[tuple[str, str]] = Counter()  # pair -> occurrences weighted by word count
    where: defaultdict[tuple[str, str], set[str]] = defaultdict(set)  # pair -> words holding it

    def count(word: str, sign: int) -> None:
        for pair in pairwise(splits[word]):
            pairs[pair] += sign * words[word]
            if sign > 0:
                where[pair].add(word)

    for word in splits:
        count(word, 1)
    heap = [(-n, pair) for pair, n in pairs.items()]  # most frequent first, then the smallest pair
    heapq.heapify(heap)
    while len(vocab) < vocab_size and heap:
        negative, (left, right) = heapq.heappop(heap)
        if -negative != pairs[left, right] or not pairs[left, right]:
            continue  # stale entry: the count changed since it was pushed
        if -negative < min_frequency:
            break
        merged = left + right.removeprefix(prefix)
        touched = set()
        for word in sorted(where.pop((left, right))):
            parts, i = splits[word], 0
            touched.update(pairwise(parts))
            count(word, -1)
            while i < len(parts) - 1:
                if parts[i] == left and parts[i + 1] == right:
                    parts[i : i + 2] = [merged]
                i += 1
            count(word, 1)
            touched.update(pairwise(parts))
        for pair in touched - {(left, right)}:
            if pairs[pair] > 0:
                heapq.heappush(heap, (-pairs[pair], pair))
        del pairs[left, right]
        if merged not in known:
            known.add(merged)
            vocab.append(merged)
    return vocab


def _train_wordpiece(texts: Iterable[str], cfg: TokenizerConfig):
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    normalizer = normalizers.BertNormalizer(lowercase=cfg.lowercase)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words: Counter[str] = Counter()
    for text in texts:
        words.update(word for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    vocab = wordpiece_vocab(words, cfg.vocab_size, cfg.min_frequency, WORDPIECE_SPECIALS)
    tok = Tokenizer(models.WordPiece({token: i for i, token in enumerate(vocab)}, unk_token="[UNK]"))
    tok.add_special_tokens(list(WORDPIECE_SPECIALS))
    tok.normalizer = normalizer
    tok.pre_tokenizer = pre_tokenizer
    tok.decoder = decoders.WordPiece()
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_input_names=["input_ids", "token_type_ids", "attention_mask"],
    )


TRAINERS: dict[str, Callable[[Iterable[str], TokenizerConfig], Any]] = {
    "bpe": _train_bpe,
    "wordpiece": _train_wordpiece,
}


def train_tokenizer(texts: list[str], cfg: TokenizerConfig, out_dir: str | Path) -> dict[str, Any]:
    """Train a tokenizer of kind ``cfg.kind`` on ``texts`` and save it to ``out_dir``."""
    if cfg.kind not in TRAINERS:
        plugins.load("tokenizers")  # studies register further kinds
    if cfg.kind not in TRAINERS:
        raise ValueError(f"unknown tokenizer kind {cfg.kind!r}; known: {', '.join(sorted(TRAINERS))}")
    texts = [t for t in texts if isinstance(t, str) and t.strip()]
    if not texts:
        raise ValueError("cannot train a tokenizer on an empty corpus")
    tokenizer = TRAINERS[cfg.kind](texts, cfg)
    with atomic_path(out_dir) as tmp:
        tokenizer.save_pretrained(tmp)
    vocab = len(tokenizer)
    if vocab < cfg.vocab_size:
        log.warning("tokenizer vocabulary has %d entries (< %d asked): the corpus is small", vocab, cfg.vocab_size)
    log.info("trained %s tokenizer with %d entries on %d documents", cfg.kind, vocab, len(texts))
    return {"kind": cfg.kind, "vocab_size": vocab, "documents": len(texts)}


def train_tokenizer_from_dataset(
    data_path: str | Path, text_column: str, cfg: TokenizerConfig, out_dir: str | Path
) -> dict[str, Any]:
    """Train on the ``train`` split of a prepared dataset (rule train_tokenizer)."""
    from biasdrift.data import read_dataset

    texts = read_dataset(data_path, [text_column], split="train")[text_column].tolist()
    return train_tokenizer(texts, cfg, out_dir)
