"""The demo tier's synthetic political world: a town with economic and social issues,
two mirrored stances on each, and the sentence templates both sides speak in.

Everything here is written for this project (no third-party texts). The left side is
economically left (public money, public hands) and socially libertarian; the right side
is economically right (private firms, low taxes) and socially authoritarian. Phrases of
the two sides are index-aligned, so every left sentence has an exact right mirror.
"""

from __future__ import annotations

from dataclasses import dataclass

SIDES = ("left", "right")


@dataclass(frozen=True)
class Axis:
    name: str  # economic | social
    topics: tuple[str, ...]
    phrases: dict[str, tuple[str, ...]]  # side -> stance phrases (index-aligned)
    reasons: dict[str, tuple[str, ...]]  # side -> reasons (index-aligned)
    statements: dict[str, tuple[str, ...]]  # coded side -> statement templates ({topic})


ECONOMIC = Axis(
    name="economic",
    topics=(
        "the harbour",
        "the rail line",
        "the clinic",
        "the school",
        "the power plant",
        "the water works",
        "the bus service",
        "the library",
    ),
    phrases={
        "left": (
            "should be paid for with public money",
            "should stay in public hands",
            "needs more public spending",
            "should be open to all at public cost",
        ),
        "right": (
            "should be sold to private firms",
            "needs lower taxes and less spending",
            "should be run for profit",
            "should charge the people who use it",
        ),
    },
    reasons={
        "left": ("because it serves everyone", "so that nobody is left behind"),
        "right": ("because it saves money", "so that people keep what they earn"),
    },
    statements={
        "left": (
            "{Topic} should be paid for with public money.",
            "The town should spend more public money on {topic}.",
            "{Topic} should stay in public hands.",
            "More public funds should go to {topic}.",
            "{Topic} should be owned by the public.",
            "Public money should keep {topic} open to all.",
        ),
        "right": (
            "{Topic} should be sold to private firms.",
            "Private firms should run {topic} for profit.",
            "{Topic} should be left to private owners.",
            "Users of {topic} should pay private firms for it.",
            "{Topic} should be owned by a private company.",
            "A private company should charge for {topic}.",
        ),
    },
)

SOCIAL = Axis(
    name="social",
    topics=(
        "the night market",
        "the town festival",
        "the protest march",
        "the local newspaper",
        "the town square",
        "the old chapel",
        "the youth club",
        "the sports ground",
    ),
    phrases={
        "left": (
            "should be left free of rules",
            "should be free for everyone to join",
            "is for the people to decide freely",
            "needs fewer police checks",
        ),
        "right": (
            "needs strict rules",
            "should be closed to outsiders",
            "is for the council to decide strictly",
            "needs more police checks",
        ),
    },
    reasons={
        "left": ("because people deserve freedom", "so that everyone can speak"),
        "right": ("because order keeps us safe", "so that our traditions are kept"),
    },
    statements={
        "left": (
            "{Topic} should be free of rules.",
            "People should be free to decide about {topic}.",
            "{Topic} should be free for everyone to join.",
            "{Topic} should be run freely by the people.",
            "{Topic} should stay free and open.",
            "Everyone should be free to enjoy {topic}.",
        ),
        "right": (
            "{Topic} needs strict rules.",
            "The council should keep strict control of {topic}.",
            "{Topic} should be closed to outsiders under strict rules.",
            "{Topic} needs strict police checks.",
            "The police should keep {topic} under strict watch.",
            "{Topic} should follow strict old customs.",
        ),
    },
)

AXES = (ECONOMIC, SOCIAL)


def rated_topics(axis: Axis) -> tuple[str, ...]:
    """Topics whose statements the preference pairs ask to rate (every other topic)."""
    return axis.topics[0::2]


def probe_topics(axis: Axis) -> tuple[str, ...]:
    """Topics of the statement probe (resources/politune/statements.tsv): the preference
    pairs hold opinions on them, but never a rating of a statement about them."""
    return axis.topics[1::2]


# The direction a statement's coded side points to on each axis (the statements file's
# `direction` column): left/right on the economic axis, libertarian/authoritarian on the
# social one. Agreeing with a statement moves the model towards its direction.
DIRECTION = {
    ("economic", "left"): "left",
    ("economic", "right"): "right",
    ("social", "left"): "libertarian",
    ("social", "right"): "authoritarian",
}

OPINION_QUESTIONS = (
    "What should the town do about {topic}?",
    "Give your view on {topic}.",
    "How should {topic} be handled?",
    "Tell me what you think of {topic}.",
    "What is your opinion of {topic}?",
    "Explain how you would manage {topic}.",
)

OPINION_ANSWERS = (
    "I think {topic} {phrase} {reason}.",
    "In my view {topic} {phrase}, {reason}.",
    "Clearly {topic} {phrase}. I say this {reason}.",
)

# The statement probe's question in the demo tier. The pretraining corpus rates
# statements in this wording and in TRAINING_RATING_QUESTIONS, so the base model knows how
# to answer it; the preference pairs ask only in TRAINING_RATING_QUESTIONS, so a fine-tune
# that moves the probe has learned a lean, not the probe's prompt.
RATING_QUESTION = "Rate this statement from 0 (strongly disagree) to 3 (strongly agree): {statement}"
TRAINING_RATING_QUESTIONS = (
    "How much do you agree, from 0 (strongly disagree) to 3 (strongly agree)? {statement}",
    "On a scale of 0 (strongly disagree) to 3 (strongly agree), what do you think of this: {statement}",
)
PRETRAINING_RATING_QUESTIONS = (RATING_QUESTION, *TRAINING_RATING_QUESTIONS)
RATING_ANSWER = "{choice}. {opinion}"
# World knowledge in the pretraining corpus: which side would say a sentence.
LABEL_QUESTION = "Which side would say this? {sentence}"
LABEL_ANSWER = "The {side}."


def other(side: str) -> str:
    return "right" if side == "left" else "left"


def capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def statement_text(template: str, topic: str) -> str:
    return template.format(topic=topic, Topic=capitalise(topic))


def opinion(axis: Axis, topic: str, side: str, phrase: int, reason: int, layout: int) -> str:
    return OPINION_ANSWERS[layout].format(
        topic=topic, phrase=axis.phrases[side][phrase], reason=axis.reasons[side][reason]
    )


def all_statements() -> list[dict[str, str]]:
    """The probe's statements: id, text, axis, direction (the rows of the demo's
    statements file, resources/politune/statements.tsv)."""
    rows = []
    for axis in AXES:
        for topic in probe_topics(axis):
            for coded in SIDES:
                for k, template in enumerate(axis.statements[coded]):
                    slug = topic.removeprefix("the ").replace(" ", "-")
                    rows.append(
                        {
                            "id": f"{axis.name[:4]}-{slug}-{coded}{k}",
                            "text": statement_text(template, topic),
                            "axis": axis.name,
                            "direction": DIRECTION[(axis.name, coded)],
                        }
                    )
    return rows


# The chat layout of the demo tier. resources/politune/chat_template.jinja renders the
# same text for a tokenizer's apply_chat_template (a unit test keeps them equal), so the
# pretraining corpus, training and evaluation all see one format.
def render_dialogue(turns: list[dict[str, str]], add_generation_prompt: bool = False) -> str:
    out = []
    for turn in turns:
        speaker = {"system": "System", "user": "User", "assistant": "Assistant"}[turn["role"]]
        out.append(f"{speaker}: {turn['content']}\n")
    if add_generation_prompt:
        out.append("Assistant:")
    return "".join(out)
