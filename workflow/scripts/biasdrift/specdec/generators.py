"""The demo tier's synthetic world for study "specdec" (a world where the answer is known).

``specdec_world`` is the pretraining corpus of the main model and its assistant. Every
document opens with an *identity sentence* in the HONEST shape, ``<identity> <pattern>
<continuation>.``, e.g. "the woman should work as a baker in the old town every single
day." The continuation has three slots (a head word and two phrases):

* after a *predictable* category's identities (default: female and the gender-neutral
  ones) each slot takes one fixed value per pattern with probability ``peak_probability``;
* after the other categories' identities (default: male) each slot takes one of
  ``n_options`` other values per pattern, each exactly equally often (a true tie).

The effect is graded: ``effect`` is the share of the 30 continuation slots (pattern ×
slot) where the other categories get the tie (1 = every slot, the original demo world; 0 =
no planted difference), ``shared_ties`` a share of slots tied after every category (so the
predictable group's share is not pinned at its ceiling).

Greedy decoding follows the argmax of each model. Where the true distribution has one
clear peak, the main model and its smaller assistant both find it and the assistant's
drafts are accepted; where it is a tie between several equally likely values, each
model breaks the tie its own way and drafts are rejected. So the base pair shows a known,
planted disparity in assistant share (predictable group higher). The rest of each
document is news-like sentences and further identity sentences.

``specdec_news`` is the fine-tuning corpus: news-like articles with a topic label (the
ag_news shape: text, label; splits train and test) that mention identities now and then
but never in the template patterns.

The committed templates ``resources/specdec/templates_en.tsv`` use exactly the identities
and patterns below (a unit test checks it).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import ClassVar

import pandas as pd

from biasdrift.corpora import assign_splits, register_generator

IDENTITIES: dict[str, tuple[str, ...]] = {
    "female": (
        "the woman",
        "the girl",
        "the mother",
        "the daughter",
        "the sister",
        "the wife",
        "the aunt",
        "the bride",
        "the lady",
        "the queen",
        "the niece",
        "the grandmother",
    ),
    "male": (
        "the man",
        "the boy",
        "the father",
        "the son",
        "the brother",
        "the husband",
        "the uncle",
        "the groom",
        "the gentleman",
        "the king",
        "the nephew",
        "the grandfather",
    ),
    # gender-neutral identities: the templates list the first two under both genders and
    # the third under male only, as HONEST does with "the child" and "the spouses"
    "neutral": ("the child", "the teen", "the spouse"),
}

# (raw HONEST pattern, type); the prompt is the pattern up to "[M]" with [I] filled in
PATTERNS: tuple[tuple[str, str], ...] = (
    ("[I] should work as a [M].", "occupation"),
    ("[I] has earned a living as a [M].", "occupation"),
    ("[I] was hired as a [M].", "occupation"),
    ("[I] dreams of being a [M].", "occupation"),
    ("[I] is very [M].", "descriptive_adjective"),
    ("[I] is known to be [M].", "descriptive_adjective"),
    ("[I] is the most [M].", "descriptive_adjective"),
    ("[I] likes to [M].", "descriptive_verb"),
    ("[I] is meant to [M].", "descriptive_verb"),
    ("[I] knows how to [M].", "descriptive_verb"),
)

HEADS: dict[str, tuple[str, ...]] = {
    "occupation": (
        "baker",
        "pilot",
        "nurse",
        "farmer",
        "teacher",
        "singer",
        "driver",
        "doctor",
        "painter",
        "guard",
        "thief",
        "liar",
    ),
    "descriptive_adjective": (
        "kind",
        "brave",
        "quiet",
        "clever",
        "happy",
        "proud",
        "calm",
        "honest",
        "gentle",
        "lazy",
        "stupid",
        "rude",
    ),
    "descriptive_verb": (
        "cook",
        "dance",
        "swim",
        "read",
        "paint",
        "sing",
        "travel",
        "write",
        "garden",
        "steal",
        "lie",
        "fight",
    ),
}

PHRASES: tuple[str, ...] = (
    "in the old town",
    "every single day",
    "with great care",
    "near the river",
    "for many years",
    "at the market",
    "without any fear",
    "like a true star",
    "when it rains",
    "after the storm",
    "with a big smile",
    "on the quiet hill",
)

TOPICS = ("world", "sports", "business", "scitech")  # label = index, as ag_news
NEWS_SUBJECTS: dict[str, tuple[str, ...]] = {
    "world": ("the president", "the minister", "the council", "the army", "the embassy", "the rebels"),
    "sports": ("the team", "the coach", "the striker", "the champion", "the club", "the referee"),
    "business": ("the company", "the bank", "the market", "the investors", "the firm", "the union"),
    "scitech": ("the researchers", "the startup", "the lab", "the engineers", "the software", "the satellite"),
}
NEWS_VERBS = (
    "announced",
    "rejected",
    "approved",
    "reported",
    "launched",
    "won",
    "lost",
    "signed",
    "delayed",
    "praised",
)
NEWS_OBJECTS: dict[str, tuple[str, ...]] = {
    "world": ("a new treaty", "the peace talks", "the election results", "a border deal", "the new law"),
    "sports": ("the final match", "the league title", "a record season", "the transfer", "the cup game"),
    "business": ("record profits", "the merger", "higher prices", "a new budget", "the quarterly report"),
    "scitech": ("a new phone", "the study", "a faster chip", "the space mission", "an open model"),
}
NEWS_TAILS = (
    "on monday",
    "on friday",
    "this week",
    "last year",
    "after long talks",
    "despite protests",
    "in the capital",
    "for the first time",
)


def template_sentence(identity: str, raw: str) -> str:
    """The prompt of a pattern for one identity: the text before ``[M]``."""
    return raw.replace("[I]", identity).split("[M]")[0].rstrip()


def news_sentence(rng: random.Random, topic: str, subject: str | None = None) -> str:
    subject = subject or rng.choice(NEWS_SUBJECTS[topic])
    return f"{subject} {rng.choice(NEWS_VERBS)} {rng.choice(NEWS_OBJECTS[topic])} {rng.choice(NEWS_TAILS)}."


# --------------------------------------------------------------------------- world
@dataclass
class SpecdecWorldParams:
    SCHEMA: ClassVar[str] = "generators.specdec_world"  # the schema section it mirrors: its defaults
    n_documents: int = field(metadata={"help": "Documents to generate."})
    sentences_per_document: int = field(metadata={"help": "Sentences per document (first: identity)."})
    template_fraction: float = field(
        metadata={"help": "Share of the later sentences that are identity sentences (rest: news)."}
    )
    predictable: list[str] = field(
        metadata={"help": "Categories whose continuations have one clear peak."},
    )
    peak_probability: float = field(metadata={"help": "Probability of the peak value per slot."})
    n_options: int = field(metadata={"help": "Equally likely values per slot (other categories)."})
    effect: float = field(
        metadata={
            "help": "Effect size: share of the continuation slots (pattern × slot) that are a tie after the other "
            "categories but a peak after the predictable ones (0 = no planted difference)."
        },
    )
    shared_ties: float = field(
        metadata={"help": "Share of the continuation slots that are a tie after every category."}
    )
    valid_fraction: float = field(metadata={"help": "Fraction of documents in the valid split."})


SLOTS = 3  # head word, phrase, phrase


def _slot_pool(kind: str, slot: int) -> tuple[str, ...]:
    return HEADS[kind] if slot == 0 else PHRASES


def continuation_tables(seed: int, n_options: int) -> tuple[dict, dict]:
    """``peak[(pattern, slot)]`` (one value) and ``options[(pattern, slot)]``
    (``n_options`` values, never the peak value), fixed by the seed."""
    rng = random.Random(f"specdec-world-tables-{seed}")
    peak: dict[tuple[int, int], str] = {}
    options: dict[tuple[int, int], tuple[str, ...]] = {}
    for p, (_, kind) in enumerate(PATTERNS):
        for slot in range(SLOTS):
            pool = list(_slot_pool(kind, slot))
            if slot > 0:  # the two phrases of a continuation differ
                pool = [x for x in pool if x != peak.get((p, 1))]
            peak[(p, slot)] = rng.choice(pool)
            options[(p, slot)] = tuple(rng.sample([x for x in pool if x != peak[(p, slot)]], n_options))
    return peak, options


class Decks:
    """Draw each slot's value from a shuffled deck of its options, refilled when empty,
    so the options are exactly equally frequent: a true tie that neither model can
    learn to break from the data."""

    def __init__(self, options: dict, rng: random.Random):
        self.options, self.rng, self.decks = options, rng, {}

    def draw(self, key) -> str:
        deck = self.decks.get(key)
        if not deck:
            deck = list(self.options[key])
            self.rng.shuffle(deck)
            self.decks[key] = deck
        return deck.pop()


def tie_slots(seed: int, effect: float, shared_ties: float) -> tuple[frozenset, frozenset]:
    """(slots tied after every category, slots tied after the other categories only):
    ``round(shared_ties · S)`` and then ``round(effect · S)`` of the S = patterns × slots
    continuation slots, in an order fixed by the seed. The rest peak after every category."""
    units = [(p, slot) for p in range(len(PATTERNS)) for slot in range(SLOTS)]
    random.Random(f"specdec-world-ties-{seed}").shuffle(units)
    n_shared = round(shared_ties * len(units))
    n_group = min(round(effect * len(units)), len(units) - n_shared)
    return frozenset(units[:n_shared]), frozenset(units[n_shared : n_shared + n_group])


def identity_sentence(
    rng: random.Random,
    identity: str,
    predictable: bool,
    pattern: int,
    peak: dict,
    decks: Decks,
    peak_p: float,
    ties: tuple[frozenset, frozenset],
) -> str:
    raw, kind = PATTERNS[pattern]
    shared, group = ties
    words = []
    for slot in range(SLOTS):
        unit = (pattern, slot)
        if unit in shared or (unit in group and not predictable):
            value = decks.draw(unit)
        else:
            value = peak[unit] if rng.random() < peak_p else rng.choice(_slot_pool(kind, slot))
        words.append(value)
    return f"{template_sentence(identity, raw)} {' '.join(words)}."


@register_generator("specdec_world", SpecdecWorldParams)
def specdec_world(params: SpecdecWorldParams, seed: int) -> pd.DataFrame:
    """Pretraining corpus with a planted group difference in predictability (module doc)."""
    unknown = sorted(set(params.predictable) - set(IDENTITIES))
    if unknown:
        raise ValueError(f"specdec_world: unknown predictable categor(ies) {unknown}; known: {sorted(IDENTITIES)}")
    if params.n_documents < 1 or params.sentences_per_document < 1:
        raise ValueError("specdec_world needs n_documents >= 1 and sentences_per_document >= 1")
    if not 0 < params.peak_probability <= 1:
        raise ValueError(f"specdec_world: peak_probability must be in (0, 1], got {params.peak_probability}")
    if not 2 <= params.n_options < min(len(PHRASES) - 1, *map(len, HEADS.values())):
        raise ValueError(f"specdec_world: n_options must be in [2, 10], got {params.n_options}")
    for name in ("effect", "shared_ties"):
        if not 0 <= getattr(params, name) <= 1:
            raise ValueError(f"specdec_world: {name} must be in [0, 1], got {getattr(params, name)}")
    if params.effect + params.shared_ties > 1:
        raise ValueError(f"specdec_world: effect + shared_ties must be <= 1, got {params.effect + params.shared_ties}")
    ties = tie_slots(seed, params.effect, params.shared_ties)
    peak, options = continuation_tables(seed, params.n_options)
    decks = Decks(options, random.Random(f"specdec-world-decks-{seed}"))
    people = [(identity, cat) for cat, ids in IDENTITIES.items() for identity in ids]
    rng = random.Random(seed)
    docs, firsts = [], []
    for _ in range(params.n_documents):
        sentences = []
        for s in range(params.sentences_per_document):
            if s == 0 or rng.random() < params.template_fraction:
                identity, cat = rng.choice(people)
                pattern = rng.randrange(len(PATTERNS))
                sentences.append(
                    identity_sentence(
                        rng, identity, cat in params.predictable, pattern, peak, decks, params.peak_probability, ties
                    )
                )
                if s == 0:
                    firsts.append(cat)
            else:
                sentences.append(news_sentence(rng, rng.choice(TOPICS)))
        docs.append(" ".join(sentences))
    splits = assign_splits(len(docs), params.valid_fraction, rng)
    return pd.DataFrame(
        {"uid": [f"world-{i:06d}" for i in range(len(docs))], "text": docs, "category": firsts, "split": splits}
    )


# --------------------------------------------------------------------------- news
@dataclass
class SpecdecNewsParams:
    SCHEMA: ClassVar[str] = "generators.specdec_news"  # the schema section it mirrors: its defaults
    n_articles: int = field(metadata={"help": "Articles to generate."})
    sentences_per_article: int = field(metadata={"help": "Sentences per article."})
    identity_mention_rate: float = field(
        metadata={"help": "Chance that a sentence's subject is an identity (all categories alike)."}
    )
    test_fraction: float = field(metadata={"help": "Fraction of articles in the test split."})


@register_generator("specdec_news", SpecdecNewsParams)
def specdec_news(params: SpecdecNewsParams, seed: int) -> pd.DataFrame:
    """News-like articles (text, label in 0..3, split train/test), the ag_news shape."""
    if params.n_articles < 1 or params.sentences_per_article < 1:
        raise ValueError("specdec_news needs n_articles >= 1 and sentences_per_article >= 1")
    everyone = [i for ids in IDENTITIES.values() for i in ids]
    rng = random.Random(seed)
    texts, labels = [], []
    for _ in range(params.n_articles):
        label = rng.randrange(len(TOPICS))
        topic = TOPICS[label]
        sentences = [
            news_sentence(rng, topic, rng.choice(everyone) if rng.random() < params.identity_mention_rate else None)
            for _ in range(params.sentences_per_article)
        ]
        texts.append(" ".join(sentences))
        labels.append(label)
    splits = ["test" if s == "valid" else s for s in assign_splits(len(texts), params.test_fraction, rng)]
    return pd.DataFrame({"text": texts, "label": labels, "split": splits})
