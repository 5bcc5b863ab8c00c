"""Rule ``pretokenize``: one dataset variant (filter / mix_match / adversarial / refusal)
rendered and encoded into ``dataNN.bin`` shards of little-endian uint16 token ids, one
per JSON shard, examples separated by BOS (id 1) and nothing else, plus ``meta.json``.

Every random draw of a record (adversarial and refusal coins, Sentence choice, line
order) comes from ``random.Random`` seeded by (seed, shard, index), so a seed gives
byte-identical shards whatever the number of workers. Shards are processed in parallel
(one process per shard); within a shard, encoding is batched through a word cache
(:class:`~biasdrift.tinystories.vocab.StoryTokenizer`).
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from biasdrift.runtime import atomic_path, progress, sha256_file, write_json
from biasdrift.tinystories.corpus import load_shard, shard_files
from biasdrift.tinystories.stories import FEATURES, check_record, render
from biasdrift.tinystories.transforms import DatasetSpec
from biasdrift.tinystories.vocab import StoryTokenizer

log = logging.getLogger(__name__)

CHECK_SAMPLE = 256  # texts on which the word cache is verified against whole-text encoding


@dataclass(kw_only=True)
class PretokenizeConfig:
    """Schema: ``studies.tinystories.pretokenize``."""

    SCHEMA: ClassVar[str] = "studies.tinystories.pretokenize"  # the schema section it mirrors: its defaults

    seed: int = field(metadata={"help": "Seed of every per-record random draw."})
    word_cache: bool = field(metadata={"help": "Encode through the word cache (fast path)."})


def record_rng(seed: int, shard: int, index: int) -> random.Random:
    """The generator of one record: a pure function of (seed, shard, index)."""
    return random.Random((seed * 1_000_003 + shard) * 10_000_019 + index)


def render_shard(records: list[dict], spec: DatasetSpec, seed: int, shard: int, where: str) -> tuple[list[str], dict]:
    """Apply ``spec`` to each record and render it. Returns the texts and the counts
    (in / kept by the filter / rendered / skipped for want of a Sentence)."""
    transform = spec.compile()
    texts, prompt_features = [], Counter()
    kept = 0
    for i, record in enumerate(records):
        check_record(record, f"{where}[{i}]")
        rng = record_rng(seed, shard, i)
        out = transform.apply(record, rng)
        if out is None:
            continue
        kept += 1
        text = render(out, rng, transform.subset)
        if text is None:
            continue
        texts.append(text)
        prompt_features.update(out["instruction"]["features"])
    counts = {
        "in": len(records),
        "kept": kept,
        "rendered": len(texts),
        "skipped_no_sentence": kept - len(texts),
        "prompt_features": {f: prompt_features.get(f, 0) for f in FEATURES},
    }
    return texts, counts


def encode_texts(tokenizer: StoryTokenizer, texts: list[str], word_cache: bool, where: str) -> np.ndarray:
    if word_cache and not tokenizer.word_cache_is_exact(texts[:CHECK_SAMPLE]):
        log.warning("%s: word-cached encoding differs from whole-text encoding; using the slow path", where)
        word_cache = False
    return tokenizer.encode_batch(texts, fast=word_cache)


def process_shard(job: tuple[str, int, str, str, DatasetSpec, PretokenizeConfig]) -> dict[str, Any]:
    """Render and encode one JSON shard into ``out_path`` (worker of :func:`pretokenize`)."""
    shard_path, shard, out_path, model_file, spec, cfg = job
    name = Path(shard_path).name
    texts, counts = render_shard(load_shard(shard_path), spec, cfg.seed, shard, name)
    tokens = encode_texts(StoryTokenizer(model_file), texts, cfg.word_cache, name)
    tokens.tofile(out_path)  # raw little-endian uint16 on every platform numpy supports
    return {"file": Path(out_path).name, **counts, "tokens": int(tokens.size), "bos": int((tokens == 1).sum())}


def pretokenize(
    shard_dir: str | Path,
    model_file: str | Path,
    spec: DatasetSpec,
    cfg: PretokenizeConfig,
    out_dir: str | Path,
    meta_path: str | Path,
    workers: int = 1,
) -> dict[str, Any]:
    """Pretokenize every shard of ``shard_dir`` for ``spec``; write ``out_dir/dataNN.bin``
    and ``meta_path``. Bad records or spec strings fail before anything is written."""
    files = shard_files(shard_dir)
    spec.compile()  # a bad spec fails here, before any work
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        jobs = [
            (str(path), i, str(tmp / f"{path.stem}.bin"), str(model_file), spec, cfg) for i, path in enumerate(files)
        ]
        if workers > 1 and len(jobs) > 1:
            with ProcessPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
                shards = list(progress(pool.map(process_shard, jobs), total=len(jobs), desc="pretokenize"))
        else:
            shards = [process_shard(job) for job in progress(jobs, desc="pretokenize")]
        totals = {k: sum(s[k] for s in shards) for k in ("in", "kept", "rendered", "skipped_no_sentence", "tokens")}
        totals["bos"] = sum(s["bos"] for s in shards)
        if totals["rendered"] == 0:
            raise ValueError(f"dataset {spec.name()}: the spec keeps no example ({spec.as_dict()})")
    meta = {
        "name": spec.name(),
        "spec": spec.as_dict(),
        "seed": cfg.seed,
        "word_cache": cfg.word_cache,
        "tokenizer_sha256": sha256_file(model_file),
        "dtype": "uint16",
        "bos_id": 1,
        "shards": shards,
        "totals": totals,
        "proportion_kept": totals["kept"] / totals["in"],
    }
    write_json(meta_path, meta)
    log.info(
        "%s: %d of %d examples kept, %d rendered, %d tokens",
        spec.name(),
        totals["kept"],
        totals["in"],
        totals["rendered"],
        totals["tokens"],
    )
    return meta


def read_tokens(path: str | Path) -> np.ndarray:
    """A ``dataNN.bin`` file as a read-only uint16 memmap (empty array for an empty file)."""
    path = Path(path)
    if path.stat().st_size == 0:
        return np.zeros(0, dtype=np.uint16)
    return np.memmap(path, dtype=np.uint16, mode="r")


def split_examples(tokens: np.ndarray, bos_id: int = 1) -> list[np.ndarray]:
    """BOS-delimited examples of a token stream (each without its BOS)."""
    starts = np.flatnonzero(tokens == bos_id)
    ends = [*starts[1:], tokens.size]
    return [np.asarray(tokens[s + 1 : e]) for s, e in zip(starts, ends, strict=True)]
