"""A seeded synthetic corpus in the TinyStories JSON schema, where the answer is known.

Each story is an opening, a setup that uses the record's three words (verb, noun,
adjective), optional feature segments in fixed narrative slots, and an ending. Every
feature has its own paraphrase templates whose marker vocabulary (``stories.MARKERS``)
appears in no other template, so the rule-based detector is exact on this corpus:
a story shows a feature if and only if the feature is in its ``features`` list.

``effect`` grades how much the instruction says about the story: with probability
``1 - effect`` a story's features are drawn anew, independent of the ones its instruction
(and its ``features`` list, the filters' key) names. At 0 a model cannot learn to write a
feature on request, and filtering by the list removes no more of it than chance.

Shard ``i`` is generated from ``random.Random(seed * 1000 + i)``, so shards are
independent of how many there are.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, ClassVar

from biasdrift.tinystories.stories import FEATURES

SOURCE = "synthetic-v1"

NAMES = (
    "Lily", "Ben", "Mia", "Tom", "Sue", "Max", "Anna", "Sam", "Lucy", "Jack",
    "Ella", "Tim", "Zoe", "Leo", "Amy", "Finn", "Rose", "Jake", "Kim", "Noah",
)  # fmt: skip
KINDS = ("girl", "boy", "cat", "dog", "bunny", "bird", "bear", "duck")
NOUNS = (
    "ball", "box", "hat", "kite", "cup", "shoe", "book", "car", "boat", "doll",
    "tree", "flower", "cake", "bike", "drum", "sock", "coat", "bell", "jar", "rock",
    "leaf", "shell", "stick", "spoon", "chair", "bag", "toy", "train", "block", "brush",
    "clock", "lamp", "pot", "rug", "fence", "gate", "nest", "pond", "bench", "swing",
    "tent", "wagon", "button", "ribbon", "apple", "pear", "bread", "cookie", "pillow", "basket",
    "bucket", "scarf", "mitten", "crayon", "puzzle", "sled", "feather", "pebble", "cloud", "window",
)  # fmt: skip
VERBS = (
    "find", "catch", "carry", "paint", "build", "clean", "fix", "open", "hold", "throw",
    "push", "pull", "wash", "draw", "bake", "hide", "kick", "lift", "fold", "pick",
    "hug", "dig", "fill", "wrap", "color", "count", "stack", "roll", "pat", "shake",
    "water", "plant", "watch", "follow", "climb", "ride", "bring", "keep", "show", "share",
)  # fmt: skip
ADJECTIVES = (
    "big", "small", "red", "blue", "green", "soft", "shiny", "round", "tall", "little",
    "happy", "bright", "warm", "fluffy", "yellow", "pink", "tiny", "huge", "clean", "new",
    "old", "funny", "pretty", "smooth", "sweet", "fast", "slow", "loud", "quiet", "brave",
    "kind", "silly", "cold", "sunny", "purple", "gentle", "strong", "wet", "dry", "golden",
)  # fmt: skip
PLACES = (
    "to the park", "to the garden", "to the beach", "to the forest", "to the farm",
    "to the lake", "to the hill", "to the market", "to the school", "to the zoo",
    "to the river", "to the yard", "to the field", "to the barn", "to the shop",
)  # fmt: skip
# only ever used inside Twist and Foreshadowing segments (their marker vocabulary)
TWIST_THINGS = ("dragon", "fairy", "robot", "wizard", "unicorn", "giant", "mermaid", "ghost")
KEEP_ITEMS = ("rope", "torch", "whistle", "map", "umbrella", "ladder", "net", "magnet")
MORALS = (
    "sharing makes everyone glad",
    "it is good to help others",
    "being honest is important",
    "friends should be kind to each other",
    "trying again helps you grow",
    "it is nice to say thank you",
)

OPENINGS = (
    "Once upon a time, there was a {kadj} {kind} named {name}.",
    "{name} was a little {kind} who loved to play.",
    "There once was a {kadj} {kind} called {name}.",
    "One sunny morning, a {kind} named {name} woke up early.",
)
PLANTS = (
    "Before leaving, {name} put a {item} in a bag, just in case.",
    "{name} packed a {item}, just in case.",
    "{name} took a {item} along, just in case.",
    "Mom gave {name} a {item} to keep, just in case.",
    "{name} found an old {item} and kept it, just in case.",
)
SETUPS = (
    "One day, {name} went {place} to {verb} a {adj} {noun}.",
    "{name} went {place} and wanted to {verb} the {adj} {noun}.",
    "At {place_bare}, {name} tried to {verb} a {adj} {noun}.",
    "{name} saw a {adj} {noun} {place_at} and decided to {verb} it.",
)
DIALOGUES = (
    '"Look at this {adj} {noun}!" said {name}.',
    '"Can I {verb} the {noun}?" asked {name}.',
    '"I like this {noun} so much," {name} whispered.',
    '"Come here, everyone!" shouted {name}.',
    '"What a {adj} {noun}," {name} said with a smile.',
    '"Is it mine now?" {name} asked.',
    '"Yes, you can play," replied {friend}.',
)
CONFLICTS = (
    "{friend} wanted the {noun} too, and the two of them argued about it.",
    "{name} and {friend} had a fight over the {noun}.",
    "{friend} would not share the {noun}, and they began to quarrel.",
    "{friend} grabbed the {noun}, and {name} and {friend} began to argue.",
    "{name} and {friend} fought over who could {verb} the {noun}.",
)
TWISTS = (
    "But the {noun} was not a {noun} at all. It was really a {thing}!",
    "Then came a big surprise: the {noun} turned out to be a {thing}.",
    "To everyone's surprise, the {noun} had been a {thing} all along.",
    "Suddenly the {noun} began to move. It was a {thing} in disguise!",
    "Nobody expected it, but the {noun} was a {thing} all along.",
    "The {noun} turned out to be a sleepy little {thing}.",
)
PAYOFFS = (
    "Good thing {name} had the {item}, because it helped a lot.",
    "{name} remembered the {item} in the bag and used it.",
    "{name} was glad to have the {item} right then.",
    "It was a good thing {name} had brought the {item}.",
)
MORAL_LINES = (
    "{name} learned that {moral}.",
    "That day, {name} learned that {moral}.",
    "The lesson was that {moral}.",
    "From then on, {name} knew that {moral}.",
)
HAPPY_ENDINGS = (
    "{name} smiled and went home with a big grin.",
    "They played together until it was time for dinner.",
    "{name} hugged Mom and felt warm and glad.",
    "At the end of the day, {name} went to bed with a smile.",
    "Everyone laughed and had lots of fun.",
)
BAD_ENDINGS = (
    "In the end, the {noun} was lost forever, and {name} cried.",
    "Sadly, the {noun} broke into pieces, and {name} went home.",
    "{name} never again saw the {noun}, and {name} felt sad.",
    "The {noun} fell into the water, and {name} was sad all day.",
)
PROMPT_PHRASES = {
    "Dialogue": "the story should contain at least one dialogue",
    "BadEnding": "the story has a bad ending",
    "MoralValue": "the story has a moral value",
    "Foreshadowing": "the narrative uses foreshadowing or setup and payoff",
    "Twist": "something unexpected happens / there is a plot twist",
    "Conflict": "the story has some form of conflict in it",
}
FEATURE_TEMPLATES = {
    "Dialogue": DIALOGUES,
    "Conflict": CONFLICTS,
    "Twist": TWISTS,
    "Foreshadowing": PLANTS + PAYOFFS,
    "MoralValue": MORAL_LINES,
    "BadEnding": BAD_ENDINGS,
}
NEUTRAL_TEMPLATES = OPENINGS + SETUPS + HAPPY_ENDINGS


@dataclass(kw_only=True)
class SyntheticParams:
    """Parameters of the synthetic corpus (schema: ``studies.tinystories.corpus.synthetic``)."""

    SCHEMA: ClassVar[str] = "studies.tinystories.corpus.synthetic"  # the schema section it mirrors: its defaults

    n_shards: int = field(metadata={"help": "JSON shards data00.json ... (shard 0 is the test split)."})
    stories_per_shard: int = field(metadata={"help": "Records per shard."})
    seed: int = field(metadata={"help": "Generator seed (shard i uses seed * 1000 + i)."})
    p_dialogue: float = field(metadata={"help": "P(Dialogue)."})
    p_conflict: float = field(metadata={"help": "P(Conflict)."})
    p_twist: float = field(metadata={"help": "P(Twist)."})
    p_foreshadowing: float = field(metadata={"help": "P(Foreshadowing)."})
    p_moralvalue: float = field(metadata={"help": "P(MoralValue)."})
    p_badending: float = field(metadata={"help": "P(BadEnding)."})
    max_features: int = field(metadata={"help": "At most this many features per story."})
    edge_cases: bool = field(metadata={"help": "Add the edge-case records (see edge_records)."})
    effect: float = field(
        metadata={
            "help": "Effect size: the chance that a story has the features its instruction asks for (1: always); "
            "otherwise its features are drawn anew, independent of the request (0: the request says nothing)."
        },
    )

    def __post_init__(self) -> None:
        if self.n_shards < 2:
            raise ValueError("n_shards must be >= 2 (shard 0 is the test split, the rest train)")
        if self.stories_per_shard < 1:
            raise ValueError("stories_per_shard must be >= 1")
        if not 0 <= self.effect <= 1:
            raise ValueError(f"effect must be in [0, 1], got {self.effect}")
        for name in FEATURES:
            p = self.probability(name)
            if not 0 <= p <= 1:
                raise ValueError(f"p_{name.lower()} must be in [0, 1], got {p}")

    def probability(self, feature: str) -> float:
        return getattr(self, f"p_{feature.lower()}")


def _prompt(words: list[str], features: list[str]) -> str:
    verb, noun, adj = words
    text = (
        "Write a short story (3-5 paragraphs) which only uses very simple words that a 3 year old child "
        f'would understand. The story should use the verb "{verb}", the noun "{noun}" and the adjective "{adj}".'
    )
    if features:
        text += " The story has the following features: " + ", ".join(PROMPT_PHRASES[f] for f in features) + "."
    return text + " Remember to only use simple words!\n\nPossible story:"


def make_record(rng: random.Random, features: list[str], requested: list[str] | None = None) -> dict[str, Any]:
    """One story with exactly ``features`` (canonical order of FEATURES), whose
    instruction asks for ``requested`` (default: ``features``)."""
    requested = features if requested is None else requested
    name, friend = rng.sample(NAMES, 2)
    verb, noun, adj = rng.choice(VERBS), rng.choice(NOUNS), rng.choice(ADJECTIVES)
    place = rng.choice(PLACES)
    slots = {
        "name": name,
        "friend": friend,
        "kind": rng.choice(KINDS),
        "kadj": rng.choice(ADJECTIVES),
        "verb": verb,
        "noun": noun,
        "adj": adj,
        "place": place,
        "place_bare": place.removeprefix("to "),
        "place_at": place.replace("to the", "at the"),
        "item": rng.choice(KEEP_ITEMS),
        "thing": rng.choice(TWIST_THINGS),
        "moral": rng.choice(MORALS),
    }
    has = set(features)
    first = [rng.choice(OPENINGS)]
    if "Foreshadowing" in has:
        first.append(rng.choice(PLANTS))
    first.append(rng.choice(SETUPS))
    middle = []
    if "Dialogue" in has:
        middle.append(rng.choice(DIALOGUES))
    if "Conflict" in has:
        middle.append(rng.choice(CONFLICTS))
    if "Twist" in has:
        middle.append(rng.choice(TWISTS))
    if "Foreshadowing" in has:
        middle.append(rng.choice(PAYOFFS))
    last = []
    if "MoralValue" in has:
        last.append(rng.choice(MORAL_LINES))
    last.append(rng.choice(BAD_ENDINGS if "BadEnding" in has else HAPPY_ENDINGS))
    paragraphs = [" ".join(t.format(**slots) for t in part) for part in (first, middle, last) if part]
    story = "\n\n" + "\n".join(paragraphs)
    summary = f"{name} goes {place} and finds a {noun}."
    words = [verb, noun, adj]
    return {
        "story": story,
        "instruction": {"prompt:": _prompt(words, requested), "words": words, "features": requested},
        "summary": summary,
        "source": SOURCE,
    }


def sample_features(rng: random.Random, params: SyntheticParams) -> list[str]:
    chosen = [f for f in FEATURES if rng.random() < params.probability(f)]
    if len(chosen) > params.max_features:
        keep = set(rng.sample(chosen, params.max_features))
        chosen = [f for f in chosen if f in keep]
    return chosen


def edge_records(rng: random.Random) -> list[dict[str, Any]]:
    """Records that exercise the pipeline's edge cases: every sentence quoted (no
    Sentence can be picked: skipped and counted), a ``sentence`` field already present,
    and an empty feature list."""
    quoted = make_record(rng, ["Dialogue"])
    quoted["story"] = '"Hi there!" said Ben. "Hello!" said Lily. "Let us play!" Ben shouted.'
    given = make_record(rng, [])
    given["sentence"] = "This sentence was given in the record"
    empty = make_record(rng, [])
    return [quoted, given, empty]


def generate_shard(params: SyntheticParams, index: int) -> list[dict[str, Any]]:
    rng = random.Random(params.seed * 1000 + index)
    # a generator of its own: at effect 1 the shards are drawn exactly as without it
    unheard = random.Random(f"tinystories-effect-{params.seed}-{index}")
    records = []
    for _ in range(params.stories_per_shard):
        requested = sample_features(rng, params)
        heard = params.effect == 1 or unheard.random() < params.effect
        shown = requested if heard else sample_features(unheard, params)
        records.append(make_record(rng, shown, requested))
    if params.edge_cases:
        extra = edge_records(rng)
        for k, record in enumerate(extra):  # spread over the shard, replacing records
            records[(k + 1) * len(records) // (len(extra) + 1)] = record
    return records
