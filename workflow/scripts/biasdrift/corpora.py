"""Synthetic dataset generators (the demo tier's data), in a string registry.

A generator is a function ``(params, seed) -> pandas.DataFrame`` with a ``split`` column
and a ``@dataclass`` of parameters; it is registered under the name that
``datasets.<alias>.generate.generator`` uses in the config. Studies register theirs in
``biasdrift.<study>.generators``, imported on lookup (:mod:`biasdrift.plugins`); the
schema of their params goes into the study's schema fragment (``generators:``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pandas as pd

from biasdrift import plugins
from biasdrift.config import config_from_dict, repo_schema_defaults


@dataclass(frozen=True)
class Generator:
    name: str
    func: Callable[[Any, int], pd.DataFrame]
    params_cls: type


_REGISTRY: dict[str, Generator] = {}


def register_generator(name: str, params_cls: type) -> Callable:
    def decorate(func: Callable[[Any, int], pd.DataFrame]) -> Callable:
        if name in _REGISTRY and _REGISTRY[name].func is not func:
            raise ValueError(f"generator {name!r} is registered twice")
        _REGISTRY[name] = Generator(name, func, params_cls)
        return func

    return decorate


def get_generator(name: str) -> Generator:
    if name not in _REGISTRY:
        plugins.load("generators")
    if name not in _REGISTRY:
        raise KeyError(f"unknown dataset generator {name!r}; registered: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def generate(name: str, params: dict[str, Any], seed: int) -> pd.DataFrame:
    """Rows of generator ``name``; params the schema has a default for may be left out
    (a validated config has them all)."""
    gen = get_generator(name)
    values = {**repo_schema_defaults(f"generators.{name}"), **params}
    frame = gen.func(config_from_dict(gen.params_cls, values, f"generator {name} params"), seed)
    if frame.empty:
        raise ValueError(f"generator {name!r} produced no rows (check its params: {params})")
    if "split" not in frame.columns:
        raise ValueError(f"generator {name!r} did not write a 'split' column")
    return frame


def assign_splits(n: int, valid_fraction: float, rng: random.Random) -> list[str]:
    """A seeded train/valid assignment with exactly round(n * valid_fraction) valid rows
    (at least one when the fraction is positive and n > 1)."""
    n_valid = round(n * valid_fraction)
    if valid_fraction > 0 and n > 1:
        n_valid = max(1, min(n - 1, n_valid))
    order = list(range(n))
    rng.shuffle(order)
    valid = set(order[:n_valid])
    return ["valid" if i in valid else "train" for i in range(n)]


# --------------------------------------------------------------------------- neutral_text
@dataclass
class NeutralTextParams:
    SCHEMA: ClassVar[str] = "generators.neutral_text"  # the schema section it mirrors: its defaults
    n_documents: int = field(metadata={"help": "Documents to generate."})
    sentences_per_document: int = field(metadata={"help": "Sentences per document."})
    valid_fraction: float = field(metadata={"help": "Fraction of documents in the valid split."})


SUBJECTS = (
    "the farmer",
    "a child",
    "my neighbour",
    "the teacher",
    "an old friend",
    "the baker",
    "a traveller",
    "the doctor",
    "our guest",
    "the driver",
    "a student",
    "the gardener",
    "the musician",
    "a clerk",
)
VERBS = (
    "carried",
    "painted",
    "found",
    "cleaned",
    "bought",
    "sold",
    "opened",
    "fixed",
    "visited",
    "watched",
    "cooked",
    "moved",
    "described",
    "noticed",
)
OBJECTS = (
    "a red box",
    "the small table",
    "an umbrella",
    "the garden gate",
    "a loaf of bread",
    "the blue car",
    "a letter",
    "the window",
    "a wooden chair",
    "the old map",
    "a basket of apples",
    "the kitchen door",
)
PLACES = (
    "near the river",
    "in the market",
    "at the station",
    "behind the school",
    "in the village",
    "on the hill",
    "at home",
    "by the harbour",
    "in the library",
    "along the road",
)
TIMES = ("in the morning", "after lunch", "on monday", "before dinner", "at noon", "in the evening", "yesterday")


def sentence_corpus(
    name: str, uid_prefix: str, params: Any, seed: int, sentence: Callable[[random.Random], str]
) -> pd.DataFrame:
    """A corpus of ``params.n_documents`` documents of ``params.sentences_per_document``
    sentences, each drawn by ``sentence(rng)`` from one seeded generator, then split
    (``params.valid_fraction``). Generator ``name`` is named in the error for bad sizes."""
    if params.n_documents < 1 or params.sentences_per_document < 1:
        raise ValueError(f"{name} needs n_documents >= 1 and sentences_per_document >= 1")
    rng = random.Random(seed)
    docs = [" ".join(sentence(rng) for _ in range(params.sentences_per_document)) for _ in range(params.n_documents)]
    splits = assign_splits(len(docs), params.valid_fraction, rng)
    return pd.DataFrame({"uid": [f"{uid_prefix}-{i:06d}" for i in range(len(docs))], "text": docs, "split": splits})


def _neutral_sentence(rng: random.Random) -> str:
    subject, verb, obj = rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS)
    tail = rng.choice((rng.choice(PLACES), rng.choice(TIMES), f"{rng.choice(PLACES)} {rng.choice(TIMES)}"))
    return f"{subject.capitalize()} {verb} {obj} {tail}."


@register_generator("neutral_text", NeutralTextParams)
def neutral_text(params: NeutralTextParams, seed: int) -> pd.DataFrame:
    """Everyday templated sentences with no group terms: a neutral background corpus."""
    return sentence_corpus("neutral_text", "neutral", params, seed, _neutral_sentence)
