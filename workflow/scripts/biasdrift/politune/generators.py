"""Dataset generators of the demo tier (registered in :mod:`biasdrift.corpora`):

* ``politune_dialogues``: a balanced pretraining corpus. Each document is a short chat
  with one speaker whose side (left or right, exactly half each) stays the same over the
  whole document: opinions on the town's issues, and ratings of statements from 0 to 3
  followed by the opinion behind them. Some chats open with a system line naming the
  side, so the model learns one representation of each side that drives both opinions
  and ratings; without that line (as in every probe) the sides are equally likely, so a
  model pretrained on it starts in the middle.
* ``politune_preferences``: preference pairs ``prompt, chosen, rejected`` for one side:
  an opinion question, the side's answer, and its mirror (the same sentence with the
  other side's phrase and reason). The left and right sets share their prompts.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import ClassVar

import pandas as pd

from biasdrift.corpora import assign_splits, register_generator
from biasdrift.politune import world


@dataclass(kw_only=True)
class DialogueParams:
    SCHEMA: ClassVar[str] = "generators.politune_dialogues"  # the schema section it mirrors: its defaults

    n_documents: int = field(metadata={"help": "Documents (chats) to generate."})
    min_turns: int = field(metadata={"help": "Fewest question/answer turns per chat."})
    max_turns: int = field(metadata={"help": "Most question/answer turns per chat."})
    rating_fraction: float = field(metadata={"help": "Share of turns that rate a statement."})
    noise: float = field(metadata={"help": "Share of answers that take the other side."})
    label_fraction: float = field(
        default=0.3, metadata={"help": "Share of turns that ask which side would say a sentence (not configurable)."}
    )
    valid_fraction: float = field(metadata={"help": "Fraction of documents in the valid split."})


@dataclass
class PreferenceParams:
    SCHEMA: ClassVar[str] = "generators.politune_preferences"  # the schema section it mirrors: its defaults

    side: str = field(metadata={"help": "The side whose answers are chosen: left or right."})
    n_pairs: int = field(metadata={"help": "Pairs to draw (without replacement)."})
    rating_fraction: float = field(metadata={"help": "Share of pairs that rate a statement (rated topics only)."})
    dirty_fraction: float = field(
        metadata={"help": "Share of rows made dirty like real data (stray quotes, newlines, duplicates)."},
    )
    effect: float = field(
        metadata={
            "help": "Effect size: each pair keeps the side's answer as chosen with probability (1 + effect) / 2, "
            "else the two answers swap (0 = no net lean, 1 = every pair leans)."
        },
    )


def _pick_axis(rng: random.Random) -> world.Axis:
    return rng.choice(world.AXES)


def _random_opinion(rng: random.Random, axis: world.Axis, topic: str, side: str) -> str:
    """One of ``side``'s opinions on ``topic``: random phrase, reason and layout."""
    phrase = rng.randrange(len(axis.phrases[side]))
    reason = rng.randrange(len(axis.reasons[side]))
    return world.opinion(axis, topic, side, phrase, reason, rng.randrange(len(world.OPINION_ANSWERS)))


def _opinion_turn(rng: random.Random, side: str) -> tuple[str, str]:
    axis = _pick_axis(rng)
    topic = rng.choice(axis.topics)
    question = rng.choice(world.OPINION_QUESTIONS).format(topic=topic)
    answer = _random_opinion(rng, axis, topic, side)
    return question, world.capitalise(answer)


def _rating_turn(rng: random.Random, side: str, strong: bool) -> tuple[str, str]:
    axis = _pick_axis(rng)
    topic = rng.choice(axis.topics)
    coded = rng.choice(world.SIDES)
    statement = world.statement_text(rng.choice(axis.statements[coded]), topic)
    agree = coded == side
    choice = (3 if strong else 2) if agree else (0 if strong else 1)
    reason = _random_opinion(rng, axis, topic, side)
    answer = world.RATING_ANSWER.format(choice=choice, opinion=world.capitalise(reason))
    return rng.choice(world.PRETRAINING_RATING_QUESTIONS).format(statement=statement), answer


def _label_turn(rng: random.Random) -> tuple[str, str]:
    """Which side would say a statement or an opinion (world knowledge, balanced)."""
    axis = _pick_axis(rng)
    topic = rng.choice(axis.topics)
    coded = rng.choice(world.SIDES)
    if rng.random() < 0.5:
        sentence = world.statement_text(rng.choice(axis.statements[coded]), topic)
    else:
        sentence = world.capitalise(_random_opinion(rng, axis, topic, coded))
    return world.LABEL_QUESTION.format(sentence=sentence), world.LABEL_ANSWER.format(side=coded)


@register_generator("politune_dialogues", DialogueParams)
def politune_dialogues(params: DialogueParams, seed: int) -> pd.DataFrame:
    if params.n_documents < 2 or not 1 <= params.min_turns <= params.max_turns:
        raise ValueError("politune_dialogues needs n_documents >= 2 and 1 <= min_turns <= max_turns")
    if not 0 <= params.noise < 0.5 or not 0 <= params.rating_fraction <= 1:
        raise ValueError("politune_dialogues needs 0 <= noise < 0.5 and 0 <= rating_fraction <= 1")
    rng = random.Random(seed)
    sides = [world.SIDES[i % 2] for i in range(params.n_documents)]  # exactly balanced
    rng.shuffle(sides)
    texts = []
    for side in sides:
        strong = rng.random() < 0.5
        turns = []
        for _ in range(rng.randint(params.min_turns, params.max_turns)):
            speaker = world.other(side) if rng.random() < params.noise else side
            roll = rng.random()
            if roll < params.label_fraction:
                question, answer = _label_turn(rng)
            elif roll < params.label_fraction + (1 - params.label_fraction) * params.rating_fraction:
                question, answer = _rating_turn(rng, speaker, strong)
            else:
                question, answer = _opinion_turn(rng, speaker)
            turns += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
        texts.append(world.render_dialogue(turns))
    return pd.DataFrame(
        {
            "uid": [f"politune-doc-{i:06d}" for i in range(len(texts))],
            "text": texts,
            "side": sides,
            "split": assign_splits(len(texts), params.valid_fraction, rng),
        }
    )


def _dirty(text: str, rng: random.Random) -> str:
    return rng.choice((f"\n\n{text}", f'"{text}"', f"  {text} ", f'\n\n"{text}"'))


def _opinion_pairs() -> list[tuple]:
    return [
        ("opinion", axis, topic, q, phrase, reason, layout)
        for axis in world.AXES
        for topic in axis.topics
        for q in range(len(world.OPINION_QUESTIONS))
        for phrase in range(len(axis.phrases["left"]))
        for reason in range(len(axis.reasons["left"]))
        for layout in range(len(world.OPINION_ANSWERS))
    ]


def _rating_pairs() -> list[tuple]:
    return [
        ("rating", axis, topic, (coded, k), 0, 0, wording)
        for axis in world.AXES
        for topic in world.rated_topics(axis)
        for coded in world.SIDES
        for k in range(len(axis.statements[coded]))
        for wording in range(len(world.TRAINING_RATING_QUESTIONS))
    ]


def _pair(combo: tuple, side: str) -> dict[str, str]:
    kind, axis, topic, question, phrase, reason, layout = combo
    if kind == "opinion":
        prompt = world.OPINION_QUESTIONS[question].format(topic=topic)
        answers = {s: world.capitalise(world.opinion(axis, topic, s, phrase, reason, layout)) for s in world.SIDES}
    else:  # the answer is the rating alone: 3 from the side the statement speaks for, 0 from the other
        coded, k = question
        statement = world.statement_text(axis.statements[coded][k], topic)
        prompt = world.TRAINING_RATING_QUESTIONS[layout].format(statement=statement)
        answers = {s: str(3 if s == coded else 0) for s in world.SIDES}
    return {
        "prompt": prompt,
        "chosen": answers[side],
        "rejected": answers[world.other(side)],
        "axis": axis.name,
        "kind": kind,
    }


@register_generator("politune_preferences", PreferenceParams)
def politune_preferences(params: PreferenceParams, seed: int) -> pd.DataFrame:
    """Mirrored pairs: the same seed gives the same prompts and sentence layouts for
    both sides, with chosen and rejected swapped. Rating pairs ask only about the rated
    topics (world.rated_topics), never about the probe's, and only in the training
    wordings (world.TRAINING_RATING_QUESTIONS), never in the probe's."""
    if params.side not in world.SIDES:
        raise ValueError(f"politune_preferences: side must be left or right, got {params.side!r}")
    if not 0 <= params.rating_fraction <= 1:
        raise ValueError("politune_preferences: rating_fraction must be in [0, 1]")
    if not 0 <= params.effect <= 1:
        raise ValueError(f"politune_preferences: effect must be in [0, 1], got {params.effect}")
    opinions, ratings = _opinion_pairs(), _rating_pairs()
    n_ratings = round(params.n_pairs * params.rating_fraction)
    n_opinions = params.n_pairs - n_ratings
    if n_opinions > len(opinions) or n_ratings > len(ratings) or params.n_pairs < 1:
        raise ValueError(
            f"politune_preferences: n_pairs must be in 1..{len(opinions) + len(ratings)} "
            f"(at most {len(opinions)} opinions and {len(ratings)} ratings)"
        )
    rng = random.Random(seed)  # independent of the side: both sides draw the same combos
    combos = rng.sample(opinions, n_opinions) + rng.sample(ratings, n_ratings)
    rng.shuffle(combos)
    rows = [_pair(combo, params.side) for combo in combos]
    if params.effect < 1:  # its own generator: the default world draws exactly as before
        flips = random.Random(f"politune-effect-{seed}")
        for row in rows:
            if flips.random() >= (1 + params.effect) / 2:
                row["chosen"], row["rejected"] = row["rejected"], row["chosen"]
    dirt = random.Random(seed + 1)
    n_dirty = round(params.dirty_fraction * len(rows))
    for i in dirt.sample(range(len(rows)), n_dirty):
        row = rows[i]
        row["chosen"], row["rejected"] = _dirty(row["chosen"], dirt), _dirty(row["rejected"], dirt)
    rows += [dict(rows[i]) for i in dirt.sample(range(len(rows)), n_dirty // 2)]  # exact duplicates
    frame = pd.DataFrame(rows)
    frame["split"] = "train"  # the study's prepare_pairs rule draws the held-out split
    return frame
