"""A tinystories world for the unit tests: a synthetic corpus unpacked into JSON shards, a
vocabulary trained on it and the 'all' dataset pretokenized (no downloads)."""

from __future__ import annotations

from pathlib import Path

from biasdrift.config import from_schema
from biasdrift.tinystories import corpus, synthetic
from biasdrift.tinystories.pretokenize import DatasetSpec, PretokenizeConfig, pretokenize
from biasdrift.tinystories.training import StoryTrainConfig
from biasdrift.tinystories.vocab import VocabConfig, train_vocab


def build_world(root: Path, n_shards: int, stories_per_shard: int, seed: int, vocab_size: int) -> Path:
    """``root``/shards (shard 0 = test), tok.model and the pretokenized ``all`` dataset."""
    params = from_schema(synthetic.SyntheticParams, n_shards=n_shards, stories_per_shard=stories_per_shard, seed=seed)
    corpus.synthesize_tarball(params, root / "c.tar.gz")
    corpus.unpack(root / "c.tar.gz", root / "shards", root / "manifest.json")
    train_vocab(
        root / "shards",
        from_schema(VocabConfig, vocab_size=vocab_size, shards=2),
        root / "tok.model",
        root / "tok.vocab",
        root / "meta.json",
    )
    pretokenize(
        root / "shards",
        root / "tok.model",
        DatasetSpec(),
        from_schema(PretokenizeConfig),
        root / "all",
        root / "all.json",
    )
    return root


def story_train_config(**values) -> StoryTrainConfig:
    """The schema's train defaults, 32-token BOS-aligned windows, no evaluation, ``values``
    on top."""
    return from_schema(
        StoryTrainConfig, **{"block_size": 32, "eval_blocks": 0, "compile": False, "align_to_bos": True, **values}
    )
