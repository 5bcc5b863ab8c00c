"""Smoke-tier fixture of study "tinystories": ``TinyStories_all_data.tar.gz`` in the layout
of the hub dataset ``roneneldan/TinyStories`` (config/smoke/tinystories.yaml points
``studies.tinystories.corpus.path`` at it).

The hub file is a gzipped tar of 50 members ``data00.json`` ... ``data49.json`` (about
100,000 records each), each one JSON array of records::

    {"story": "\\n\\nLily and Ben ...", "instruction": {"prompt:": "Write a short story
     (3-5 paragraphs) ... Possible story:", "words": [verb, noun, adjective], "features":
     ["Dialogue", ...]}, "summary": "...", "source": "GPT-4"}

(the key really is ``"prompt:"``; ``features`` may be empty; ``source`` is "GPT-4" or
"GPT-3.5"; there is no ``sentence`` field). The fixture has a few small shards of that
shape: stories from the seeded synthetic generator (so every dataset filter keeps
examples in every shard), relabelled with the hub's sources, plus hand-written stories
in the TinyStories style whose wording does not follow the marker rules (curly quotes,
non-ASCII text, features the marker words do not reveal), as on the real corpus.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from biasdrift.config import from_schema
from biasdrift.smoke.fixtures import register_dataset_fixture

N_SHARDS = 5  # shard 0 = test; with pretrain_fraction 0.8: pretraining 1-3, fine-tuning 4
STORIES_PER_SHARD = 40

# TinyStories-style stories written for this fixture (not taken from the dataset).
HANDWRITTEN: tuple[dict[str, Any], ...] = (
    {
        "story": "\n\nTom had a red kite. He ran up the hill with it. The wind was strong.\n"
        "“Look, Mom! It can fly!” Tom said. Mom clapped her hands.\n"
        "Then the string broke. The kite flew over the trees and was gone. Tom sat on the grass and was very sad.",
        "words": ["run", "kite", "red"],
        "features": ["Dialogue", "BadEnding"],
        "summary": "Tom flies his red kite on a windy hill, but the string breaks and the kite is lost.",
    },
    {
        "story": "\n\nMia and her friend Sam found one cookie on the table. Both of them wanted it.\n"
        "Mia broke the cookie in two. She gave the bigger piece to Sam. Sam smiled.\n"
        "They ate the cookie together, and it tasted better because they shared it.",
        "words": ["break", "cookie", "big"],
        "features": ["Conflict", "MoralValue"],
        "summary": "Mia and Sam both want the last cookie, so Mia shares it and they are happy.",
    },
    {
        "story": "\n\nA little duck lived by the pond. Every day it looked at a big gray stone in the water.\n"
        "One morning the stone moved. It opened its eyes and yawned! It was an old turtle, "
        "sleeping in the sun.\nThe duck and the turtle became best friends.",
        "words": ["look", "stone", "gray"],
        "features": ["Twist"],
        "summary": "A duck learns that the gray stone in its pond is really a sleepy old turtle.",
    },
    {
        "story": "\n\nGrandpa gave Lucy a tiny key. “Keep it safe,” he said. Lucy put it in her pocket.\n"
        "Later, Lucy found a small box in the attic. It was locked. She remembered the key in her pocket.\n"
        "The key fit! Inside the box was a photo of Grandpa when he was a boy. Lucy laughed.",
        "words": ["keep", "key", "tiny"],
        "features": ["Dialogue", "Foreshadowing"],
        "summary": "Lucy keeps the key Grandpa gives her and later uses it to open a box with an old photo.",
    },
    {
        "story": "\n\nBen’s café had a new cake. It was pink and soft. Ben put it in the window.\n"
        "A girl came in and bought a slice. She ate it slowly and said it was the best cake in the town.\n"
        "Ben was proud. He baked two more cakes the next day.",
        "words": ["bake", "cake", "soft"],
        "features": [],
        "summary": "Ben bakes a soft pink cake for his café and a girl loves it.",
    },
)


def hub_record(story: str, words: list[str], features: list[str], summary: str, source: str) -> dict[str, Any]:
    """One record with the hub's keys, nesting and key order."""
    from biasdrift.tinystories.synthetic import _prompt

    instruction = {"prompt:": _prompt(words, features), "words": list(words), "features": list(features)}
    return {"story": story, "instruction": instruction, "summary": summary, "source": source}


def hub_shard(index: int, seed: int, stories: int = STORIES_PER_SHARD) -> list[dict[str, Any]]:
    """Shard ``index``: synthetic stories in the hub's record shape, and one hand-written
    story (a different one per shard)."""
    from biasdrift.tinystories import synthetic

    params = from_schema(
        synthetic.SyntheticParams, n_shards=N_SHARDS, stories_per_shard=stories - 1, seed=seed, edge_cases=False
    )
    records = []
    for i, rec in enumerate(synthetic.generate_shard(params, index)):
        ins = rec["instruction"]
        source = "GPT-4" if i % 3 else "GPT-3.5"
        records.append(hub_record(rec["story"], ins["words"], ins["features"], rec["summary"], source))
    hand = HANDWRITTEN[index % len(HANDWRITTEN)]
    records.insert(
        len(records) // 2, hub_record(hand["story"], hand["words"], hand["features"], hand["summary"], "GPT-4")
    )
    return records


def write_hub_tarball(out_path: str | Path, seed: int = 0, n_shards: int = N_SHARDS) -> dict[str, Any]:
    """The fixture tarball: members ``dataNN.json`` at the top level of a gzipped tar."""
    import gzip
    import io
    import json
    import tarfile

    counts = []
    with (
        open(out_path, "wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as packed,
        tarfile.open(fileobj=packed, mode="w") as tar,
    ):
        for index in range(n_shards):
            records = hub_shard(index, seed)
            payload = json.dumps(records, ensure_ascii=False).encode("utf-8")
            info = tarfile.TarInfo(f"data{index:02d}.json")
            info.size, info.mtime, info.mode = len(payload), 0, 0o644
            tar.addfile(info, io.BytesIO(payload))
            counts.append(len(records))
    return {"shards": n_shards, "records": sum(counts), "rows": sum(counts)}


@register_dataset_fixture("TinyStories_all_data.tar.gz", "roneneldan/TinyStories")
def tinystories_all_data(out_path: Path, seed: int) -> dict[str, Any]:
    return write_hub_tarball(out_path, seed)
