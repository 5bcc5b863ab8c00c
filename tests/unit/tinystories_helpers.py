"""A tinystories world for the unit tests: a synthetic corpus unpacked into JSON shards, a
vocabulary trained on it and the 'all' dataset pretokenized (no downloads)."""

from __future__ import annotations

from pathlib import Path

from biasdrift.tinystories import corpus, synthetic
from biasdrift.tinystories.pretokenize import DatasetSpec, PretokenizeConfig, pretokenize
from biasdrift.tinystories.vocab import VocabConfig, train_vocab


def build_world(root: Path, n_shards: int, stories_per_shard: int, seed: int, vocab_size: int) -> Path:
    """``root``/shards (shard 0 = test), tok.model and the pretokenized ``all`` dataset."""
    params = synthetic.SyntheticParams(n_shards=n_shards, stories_per_shard=stories_per_shard, seed=seed)
    corpus.synthesize_tarball(params, root / "c.tar.gz")
    corpus.unpack(root / "c.tar.gz", root / "shards", root / "manifest.json")
    train_vocab(
        root / "shards",
        VocabConfig(vocab_size=vocab_size, shards=2),
        root / "tok.model",
        root / "tok.vocab",
        root / "meta.json",
    )
    pretokenize(
        root / "shards", root / "tok.model", DatasetSpec(), PretokenizeConfig(), root / "all", root / "all.json"
    )
    return root
