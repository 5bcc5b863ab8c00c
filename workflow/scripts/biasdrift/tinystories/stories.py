"""TinyStories records: the JSON schema, rendering a record into training text, and the
rule-based feature detector.

A record (one element of a ``dataNN.json`` array) is::

    {"story": str, "summary": str, "source": str,
     "instruction": {"prompt:": str, "words": [verb, noun, adjective], "features": [...]},
     "sentence": str (optional)}

``render`` turns it into the text the model is trained on: four instruction lines
(``Words``, ``Features``, ``Summary``, ``Sentence``) in a per-example random order, then
``Story: <story>``. Unlike the original, all randomness comes from the ``random.Random``
passed in (seeded per example by the caller), the Sentence is never empty, and feature
names keep their canonical spelling (the original's ``str.capitalize`` wrote
``Badending``).
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from typing import Any

FEATURES = ("Dialogue", "Conflict", "Twist", "Foreshadowing", "MoralValue", "BadEnding")
PROMPT_KEYS = ("Words", "Features", "Summary", "Sentence")
STORY_PREFIX = "Story:"
# where a sampled continuation stops being the story: the next example's prompt lines
NEXT_PROMPT_RE = re.compile(r"\n\s*(?:Words|Features|Summary|Sentence|Story):")
SENTENCE_SPLIT_RE = re.compile(r"[.!?]")


class RecordError(ValueError):
    """A record does not follow the TinyStories schema; the message says where."""


def check_record(record: Any, where: str) -> None:
    """Raise :class:`RecordError` unless ``record`` has the fields the pipeline uses."""
    if not isinstance(record, dict):
        raise RecordError(f"{where}: a record must be a JSON object, got {type(record).__name__}")
    if not isinstance(record.get("story"), str):
        raise RecordError(f"{where}: missing or non-string 'story'")
    instruction = record.get("instruction")
    if not isinstance(instruction, dict):
        raise RecordError(f"{where}: missing 'instruction' object")
    for key in ("words", "features"):
        value = instruction.get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise RecordError(f"{where}: instruction.{key} must be a list of strings")
    unknown = sorted(set(instruction["features"]) - set(FEATURES))
    if unknown:
        raise RecordError(f"{where}: unknown feature(s) {unknown}; known: {', '.join(FEATURES)}")


def story_sentences(story: str) -> list[str]:
    """Sentences eligible for the ``Sentence`` line: split on ``.!?``, drop segments that
    contain a double quote, strip, remove newlines, and drop empty ones (the original
    kept the empty tail after the last period)."""
    out = []
    for segment in SENTENCE_SPLIT_RE.split(story):
        if '"' in segment:
            continue
        segment = segment.strip().replace("\n", "")
        if segment:
            out.append(segment)
    return out


def pick_sentence(story: str, rng: random.Random) -> str | None:
    """A uniformly chosen eligible sentence, or None when there is none (the example is
    then skipped and counted)."""
    sentences = story_sentences(story)
    return rng.choice(sentences) if sentences else None


def instruction_lines(
    record: dict, rng: random.Random, subset: Sequence[str] | None = None
) -> list[tuple[str, str]] | None:
    """The shuffled ``(key, value)`` instruction lines of ``record`` (None: no Sentence)."""
    instruction = record["instruction"]
    sentence = record.get("sentence")
    if not sentence:
        sentence = pick_sentence(record["story"], rng)
        if sentence is None:
            return None
    lines = [
        ("Words", ", ".join(instruction["words"])),
        ("Features", ", ".join(instruction["features"])),
        ("Summary", record.get("summary", "").strip().replace("\n", "")),
        ("Sentence", sentence.strip().replace("\n", "")),
    ]
    if subset is not None:
        lines = [line for line in lines if line[0] in subset]
    rng.shuffle(lines)
    return lines


def render(record: dict, rng: random.Random, subset: Sequence[str] | None = None) -> str | None:
    """Training text of one record: instruction lines, then ``Story: <story>``."""
    lines = instruction_lines(record, rng, subset)
    if lines is None:
        return None
    return "".join(f"{key}: {value}\n" for key, value in lines) + f"{STORY_PREFIX} {record['story'].strip()}"


def render_prompt(record: dict, rng: random.Random, subset: Sequence[str] | None = None) -> str | None:
    """The rendered text up to and including ``Story:``: what a model continues with a
    story (no trailing space: SentencePiece would drop it anyway)."""
    lines = instruction_lines(record, rng, subset)
    if lines is None:
        return None
    return "".join(f"{key}: {value}\n" for key, value in lines) + STORY_PREFIX


def cut_story(continuation: str) -> str:
    """The story part of a sampled continuation: up to the next example's prompt."""
    match = NEXT_PROMPT_RE.search(continuation)
    return (continuation[: match.start()] if match else continuation).strip()


# --------------------------------------------------------------------------- detector
# Feature-exclusive marker vocabulary of the synthetic corpus (biasdrift.tinystories.
# synthetic uses exactly these words in each feature's templates and nowhere else).
MARKERS: dict[str, tuple[re.Pattern, ...]] = {
    "Dialogue": (re.compile(r'"[^"\n]+"'), re.compile(r"\b(?:said|asked|shouted|whispered|replied)\b")),
    "Conflict": (re.compile(r"\b(?:argued|argue|quarrel|fight|fought|would not share)\b"),),
    "Twist": (re.compile(r"\b(?:really|surprise|turned out|all along|in disguise|nobody expected)\b"),),
    # Foreshadowing needs both the plant and the payoff
    "Foreshadowing": (
        re.compile(r"\bjust in case\b"),
        re.compile(r"\b(?:good thing|remembered the|glad to have)\b"),
    ),
    "MoralValue": (re.compile(r"\b(?:learned that|lesson|knew that)\b"),),
    "BadEnding": (re.compile(r"\b(?:sad|sadly|cried|forever|never again)\b"),),
}


def detect(story: str) -> dict[str, bool]:
    """Which features ``story`` shows, by the marker rules (all patterns of a feature
    must match). Exact on the synthetic corpus; only a rough guide on real stories."""
    lowered = story.lower()
    return {name: all(p.search(lowered) for p in patterns) for name, patterns in MARKERS.items()}


def detect_many(stories: Iterable[str]) -> list[dict[str, bool]]:
    return [detect(s) for s in stories]


def marker_span(story: str, feature: str) -> tuple[int, int] | None:
    """Character span of the sentence holding ``feature``'s (first) marker in ``story``
    (for Foreshadowing: the payoff), or None."""
    lowered = story.lower()
    match = MARKERS[feature][-1].search(lowered)
    if match is None:
        return None
    start = max(lowered.rfind(c, 0, match.start()) for c in ".!?\n") + 1
    ends = [i for i in (lowered.find(c, match.end()) for c in ".!?") if i >= 0]
    end = (min(ends) + 1) if ends else len(story)
    while start < end and story[start] == " ":
        start += 1
    return start, end
