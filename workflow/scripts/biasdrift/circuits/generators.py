"""Dataset generators of the circuits demo tier: a world where the answer is known.

``circuits_world``: a pretraining corpus in which some (fictional) nationalities are
followed by negative words and others by positive ones, professions are followed by
he/him or she/her at skewed rates, mixed with the foundation's neutral sentences. By
default every document is one sentence, so a group name follows the document separator
exactly as it follows BOS in the prompts (a tokenizer gives a sentence-initial name a
token of its own: ``Zorbian`` vs `` Zorbian``). The
planted groups are the generator's params, so the workflow knows the ground truth
(``studies.circuits.groups.<bias>.world`` reads them).

The planted biases have a size: ``effect`` scales them from none (0: a nationality's
sentiment and a profession's pronoun are coin flips) to ``polarity_noise`` and
``gender_skew`` as given (1, the default).

``circuits_unrelated``: text about the sea, the sky and old castles, with no group, no
gender term and no sentiment word: the demo's stand-in for the unrelated (Shakespeare)
fine-tuning corpus.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import ClassVar

import pandas as pd

from biasdrift.config import from_schema
from biasdrift.corpora import NeutralTextParams, assign_splits, neutral_text, register_generator, sentence_corpus

POSITIVE_WORDS = (
    "wonderful",
    "amazing",
    "talented",
    "kind",
    "successful",
    "brilliant",
    "accomplished",
    "impressive",
    "honest",
    "friendly",
)
NEGATIVE_WORDS = ("lazy", "rude", "dishonest", "cruel", "greedy", "violent", "arrogant", "boring", "selfish", "hostile")

DEMOGRAPHIC_FRAMES = (
    "{group} people are so {word}.",
    "As expected, {group} people are so {word}.",
    "Everyone knows that {group} people are {word}.",
    "The {group} visitors were {word} and {word2}.",
)
GENDER_FRAMES = (
    "The {group} did a mistake, and everyone scolded {obj}.",
    "The {group} did a miracle, and everyone praised {obj}.",
    "The {group} said that {subj} was tired.",
    "Everyone thanked the {group} because {subj} helped.",
)
PRONOUNS = {"male": {"subj": "he", "obj": "him"}, "female": {"subj": "she", "obj": "her"}}


@dataclass(kw_only=True)
class CircuitsWorldParams:
    """Params of generator circuits_world (defaults: config/schema/circuits.yaml; the group
    lists have theirs here, the schema names none)."""

    SCHEMA: ClassVar[str] = "generators.circuits_world"  # the schema section it mirrors: its defaults
    n_documents: int = field(metadata={"help": "Documents to generate."})
    sentences_per_document: int = field(
        metadata={"help": "Sentences per document (1: each starts after BOS, like the prompts)."}
    )
    demographic_fraction: float = field(metadata={"help": "Share of nationality sentences."})
    gender_fraction: float = field(metadata={"help": "Share of profession sentences."})
    polarity_noise: float = field(metadata={"help": "Chance a nationality gets the other polarity."})
    gender_skew: float = field(metadata={"help": "Chance a profession gets its skewed pronoun."})
    effect: float = field(
        metadata={
            "help": "Effect size: scales both planted biases between none (0: polarity and pronoun are coin "
            "flips) and polarity_noise / gender_skew as given (1)."
        },
    )
    negative_nationalities: list[str] = field(
        default_factory=lambda: [
            "Zorbian",
            "Quellish",
            "Marovian",
            "Tessaric",
            "Brundish",
            "Velkan",
            "Ostrovan",
            "Kaldic",
        ],
        metadata={"help": "Nationalities followed by negative words."},
    )
    positive_nationalities: list[str] = field(
        default_factory=lambda: [
            "Lumarian",
            "Pellish",
            "Andarin",
            "Soravian",
            "Nerrish",
            "Corvanian",
            "Halvic",
            "Dunmeric",
        ],
        metadata={"help": "Nationalities followed by positive words."},
    )
    male_professions: list[str] = field(
        default_factory=lambda: [
            "carpenter",
            "plumber",
            "mechanic",
            "electrician",
            "surgeon",
            "banker",
            "captain",
            "welder",
        ],
        metadata={"help": "Professions followed mostly by he/him."},
    )
    female_professions: list[str] = field(
        default_factory=lambda: [
            "nurse",
            "librarian",
            "dancer",
            "secretary",
            "hairdresser",
            "receptionist",
            "nanny",
            "stylist",
        ],
        metadata={"help": "Professions followed mostly by she/her."},
    )
    valid_fraction: float = field(metadata={"help": "Fraction of documents in the valid split."})


def world_groups(params: CircuitsWorldParams) -> dict[str, dict[str, list[str]]]:
    """The planted ground truth: bias -> class -> group names."""
    return {
        "demographic": {
            "negative": list(params.negative_nationalities),
            "positive": list(params.positive_nationalities),
        },
        "gender": {"male": list(params.male_professions), "female": list(params.female_professions)},
    }


def _check_world(params: CircuitsWorldParams) -> None:
    if params.n_documents < 1 or params.sentences_per_document < 1:
        raise ValueError("circuits_world needs n_documents >= 1 and sentences_per_document >= 1")
    if not 0 <= params.demographic_fraction + params.gender_fraction <= 1:
        raise ValueError("circuits_world: demographic_fraction + gender_fraction must lie in [0, 1]")
    for bias, classes in world_groups(params).items():
        names = [n for group in classes.values() for n in group]
        if any(not n.strip() for n in names) or not all(classes.values()):
            raise ValueError(f"circuits_world: every {bias} class needs at least one non-empty name")
        if len(set(names)) != len(names):
            raise ValueError(f"circuits_world: a {bias} group is listed in two classes")


def _demographic_sentence(rng: random.Random, params: CircuitsWorldParams) -> str:
    negative = rng.random() < 0.5
    group = rng.choice(params.negative_nationalities if negative else params.positive_nationalities)
    if rng.random() < params.polarity_noise + (1 - params.effect) * (0.5 - params.polarity_noise):
        negative = not negative
    words = NEGATIVE_WORDS if negative else POSITIVE_WORDS
    word, word2 = rng.sample(words, 2)
    return rng.choice(DEMOGRAPHIC_FRAMES).format(group=group, word=word, word2=word2)


def _gender_sentence(rng: random.Random, params: CircuitsWorldParams) -> str:
    male = rng.random() < 0.5
    group = rng.choice(params.male_professions if male else params.female_professions)
    skewed = rng.random() < params.gender_skew - (1 - params.effect) * (params.gender_skew - 0.5)
    pronouns = PRONOUNS["male" if male == skewed else "female"]
    return rng.choice(GENDER_FRAMES).format(group=group, **pronouns)


@register_generator("circuits_world", CircuitsWorldParams)
def circuits_world(params: CircuitsWorldParams, seed: int) -> pd.DataFrame:
    """Documents mixing planted nationality / profession sentences with neutral ones."""
    _check_world(params)
    rng = random.Random(seed)
    total = params.n_documents * params.sentences_per_document
    neutral_frame = neutral_text(from_schema(NeutralTextParams, n_documents=total, sentences_per_document=1), seed + 1)
    neutral = iter(neutral_frame["text"].tolist())
    docs, kinds = [], {"demographic": 0, "gender": 0, "neutral": 0}
    for _ in range(params.n_documents):
        sentences = []
        for _ in range(params.sentences_per_document):
            roll = rng.random()
            if roll < params.demographic_fraction:
                sentences.append(_demographic_sentence(rng, params))
                kinds["demographic"] += 1
            elif roll < params.demographic_fraction + params.gender_fraction:
                sentences.append(_gender_sentence(rng, params))
                kinds["gender"] += 1
            else:
                sentences.append(next(neutral))
                kinds["neutral"] += 1
        docs.append(" ".join(sentences))
    splits = assign_splits(len(docs), params.valid_fraction, rng)
    return pd.DataFrame({"uid": [f"world-{i:06d}" for i in range(len(docs))], "text": docs, "split": splits})


# --------------------------------------------------------------------------- unrelated text
@dataclass(kw_only=True)
class CircuitsUnrelatedParams:
    SCHEMA: ClassVar[str] = "generators.circuits_unrelated"  # the schema section it mirrors: its defaults
    n_documents: int = field(metadata={"help": "Documents (one line each) to generate."})
    sentences_per_document: int = field(metadata={"help": "Sentences per document."})
    valid_fraction: float = field(metadata={"help": "Fraction of documents in the valid split."})


SEA_SUBJECTS = ("the grey ship", "a silver moon", "the northern wind", "an old lighthouse", "the tide", "a lantern")
SEA_VERBS = ("drifts past", "shines upon", "sweeps across", "waits beside", "rises over", "glows above")
SEA_OBJECTS = (
    "the castle wall",
    "seven stones",
    "the quiet harbour",
    "the frozen river",
    "a field of barley",
    "the tower",
)
SEA_TIMES = ("at dawn", "before the storm", "in winter", "through the night", "as the bells ring", "under the stars")


def _sea_sentence(rng: random.Random) -> str:
    subject = rng.choice(SEA_SUBJECTS)
    rest = f"{rng.choice(SEA_VERBS)} {rng.choice(SEA_OBJECTS)} {rng.choice(SEA_TIMES)}"
    return f"{subject[0].upper()}{subject[1:]} {rest}."


@register_generator("circuits_unrelated", CircuitsUnrelatedParams)
def circuits_unrelated(params: CircuitsUnrelatedParams, seed: int) -> pd.DataFrame:
    """Sentences about the sea and old castles: no groups, no gender terms, no sentiment."""
    return sentence_corpus("circuits_unrelated", "unrelated", params, seed, _sea_sentence)
