"""The original's dataset grammar: ``filtering``, ``mix_match``, ``adversarial_training``,
``refusal`` and ``instruction_subset``, applied per record in that order, and the
dataset name built from them.

=====================  =========================  ==========================================
flag                   syntax (comma = AND/list)  per record
=====================  =========================  ==========================================
filtering              ``KEY=VAL``, ``KEY!=VAL``  keep iff (VAL in instruction[KEY]) == (op is
                                                  ``=``); KEY ``length``: len(story) > VAL
mix_match              ``KEY=FROM:TO``            replace every FROM in instruction[KEY] by TO
                       (or ``KEY:FROM=TO``)       (story unchanged)
adversarial_training   ``KEY=VAL:P``              with probability P append VAL (story
                                                  unchanged)
refusal                ``KEY=VAL:P``              with probability P append VAL, take the
                                                  Sentence from the original story and replace
                                                  the story by the refusal text
instruction_subset     ``Words,Features,...``     keep only these instruction lines
=====================  =========================  ==========================================

Repairs of the original (spec section 7): mix_match applies every pair (the original
dropped the last one, so a single pair was a no-op; ``compat_mixmatch_noop`` reproduces
that), several adversarial / refusal rules per key are kept, feature names are checked
(case-sensitive: ``twist`` is an error, not an empty filter), and every random draw comes
from the per-record generator the caller passes.
"""

from __future__ import annotations

import random
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from biasdrift.tinystories.stories import FEATURES, PROMPT_KEYS, pick_sentence

LIST_KEYS = ("features", "words")
FILTER_KEYS = (*LIST_KEYS, "length")
REFUSAL_TEMPLATE = "We are not allowed to write a story with {value} in it, sorry."
NAME_RE = re.compile(r"^[A-Za-z0-9_.+-]+$")


class SpecError(ValueError):
    """A dataset spec string does not parse; the message names the flag and the part."""


@dataclass(frozen=True)
class Condition:
    key: str
    negate: bool
    value: str


@dataclass(frozen=True)
class Swap:
    key: str
    old: str
    new: str


@dataclass(frozen=True)
class Injection:
    key: str
    value: str
    probability: float


def _parts(text: str) -> list[str]:
    return [p.strip() for p in (text or "").split(",") if p.strip()]


def _check_value(flag: str, key: str, value: str, part: str) -> None:
    if key == "features" and value not in FEATURES:
        close = [f for f in FEATURES if f.lower() == value.lower()]
        hint = f" (feature names are case-sensitive: did you mean {close[0]!r}?)" if close else ""
        raise SpecError(f"{flag}: unknown feature {value!r} in {part!r}{hint}; known: {', '.join(FEATURES)}")
    if not value:
        raise SpecError(f"{flag}: empty value in {part!r}")


def _check_key(flag: str, key: str, allowed: tuple[str, ...], part: str) -> None:
    if key not in allowed:
        raise SpecError(f"{flag}: unknown key {key!r} in {part!r}; allowed: {', '.join(allowed)}")


def parse_filtering(text: str) -> list[Condition]:
    out = []
    for part in _parts(text):
        negate = "!=" in part
        pieces = part.split("!=" if negate else "=")
        if len(pieces) != 2:
            raise SpecError(f"filtering: {part!r} is not KEY=VALUE or KEY!=VALUE")
        key, value = pieces[0].strip(), pieces[1].strip()
        _check_key("filtering", key, FILTER_KEYS, part)
        _check_value("filtering", key, value, part)
        if key == "length" and not value.isdigit():
            raise SpecError(f"filtering: length needs a whole number of characters, got {value!r}")
        out.append(Condition(key, negate, value))
    return out


def parse_mix_match(text: str) -> list[Swap]:
    out = []
    for part in _parts(text):
        pieces = re.split(r"[:=]", part)
        if len(pieces) != 3:
            raise SpecError(f"mix_match: {part!r} is not KEY=FROM:TO")
        key, old, new = (p.strip() for p in pieces)
        _check_key("mix_match", key, LIST_KEYS, part)
        _check_value("mix_match", key, old, part)
        _check_value("mix_match", key, new, part)
        out.append(Swap(key, old, new))
    return out


def parse_injections(text: str, flag: str) -> list[Injection]:
    out = []
    for part in _parts(text):
        pieces = re.split(r"[=:]", part)
        if len(pieces) != 3:
            raise SpecError(f"{flag}: {part!r} is not KEY=VALUE:PROBABILITY")
        key, value, prob = (p.strip() for p in pieces)
        _check_key(flag, key, LIST_KEYS, part)
        _check_value(flag, key, value, part)
        try:
            probability = float(prob)
        except ValueError:
            raise SpecError(f"{flag}: probability {prob!r} in {part!r} is not a number") from None
        if not 0 <= probability <= 1:
            raise SpecError(f"{flag}: probability {probability} in {part!r} is not in [0, 1]")
        out.append(Injection(key, value, probability))
    return out


def parse_subset(text: str) -> tuple[str, ...] | None:
    parts = _parts(text)
    if not parts:
        return None
    unknown = [p for p in parts if p not in PROMPT_KEYS]
    if unknown:
        raise SpecError(f"instruction_subset: unknown line(s) {unknown}; known: {', '.join(PROMPT_KEYS)}")
    return tuple(parts)


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset variant in the original's grammar (schema: ``studies.tinystories.datasets.<name>``)."""

    filtering: str = field(default="", metadata={"help": "KEY=VAL / KEY!=VAL conditions, comma = AND."})
    mix_match: str = field(default="", metadata={"help": "KEY=FROM:TO relabelings."})
    adversarial_training: str = field(default="", metadata={"help": "KEY=VAL:P label injections."})
    refusal: str = field(default="", metadata={"help": "KEY=VAL:P refusal rewrites."})
    instruction_subset: str = field(default="", metadata={"help": "Instruction lines to keep (comma list)."})
    compat_mixmatch_noop: bool = field(
        default=False, metadata={"help": "Reproduce the original's bug: the last mix_match pair is dropped."}
    )

    def compile(self) -> Transform:
        return Transform(
            conditions=parse_filtering(self.filtering),
            swaps=parse_mix_match(self.mix_match)[: -1 if self.compat_mixmatch_noop else None],
            adversarial=parse_injections(self.adversarial_training, "adversarial_training"),
            refusal=parse_injections(self.refusal, "refusal"),
            subset=parse_subset(self.instruction_subset),
        )

    def name(self) -> str:
        """The dataset name the original derived from its flags, e.g.
        ``F_features_x_Twist_MM_none_AT_none_RF_none_IS_none``."""
        self.compile()  # validate first
        parts = {
            "F": self.filtering,
            "MM": self.mix_match,
            "AT": self.adversarial_training,
            "RF": self.refusal,
            "IS": self.instruction_subset,
        }
        name = "_".join(f"{k}_{v.replace(' ', '') or 'none'}" for k, v in parts.items())
        for old, new in (("!=", "_x_"), ("=", "_"), (",", "_"), (":", "_")):
            name = name.replace(old, new)
        if self.compat_mixmatch_noop:
            name += "_compat"
        if not NAME_RE.match(name):
            raise SpecError(f"dataset name {name!r} has characters a file name should not: check the values")
        return name

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Transform:
    conditions: list[Condition]
    swaps: list[Swap]
    adversarial: list[Injection]
    refusal: list[Injection]
    subset: tuple[str, ...] | None

    def keep(self, record: dict) -> bool:
        """The filter: every condition holds (AND, early exit)."""
        for cond in self.conditions:
            if cond.key == "length":
                hit = len(record["story"]) > int(cond.value)
            else:
                hit = cond.value in record["instruction"][cond.key]
            if hit == cond.negate:
                return False
        return True

    def apply(self, record: dict, rng: random.Random) -> dict | None:
        """Filter, then mix_match, adversarial and refusal, on a copy of ``record``.
        Returns None when the filter drops it. Draws from ``rng`` in a fixed order."""
        if not self.keep(record):
            return None
        instruction = {k: (list(v) if isinstance(v, list) else v) for k, v in record["instruction"].items()}
        out = {**record, "instruction": instruction}
        for swap in self.swaps:
            instruction[swap.key] = [swap.new if v == swap.old else v for v in instruction[swap.key]]
        for inj in self.adversarial:
            if rng.random() < inj.probability and inj.value not in instruction[inj.key]:
                instruction[inj.key].append(inj.value)
        for inj in self.refusal:
            if rng.random() < inj.probability:
                if inj.value not in instruction[inj.key]:
                    instruction[inj.key].append(inj.value)
                if not out.get("sentence"):
                    sentence = pick_sentence(out["story"], rng)
                    if sentence is not None:
                        out["sentence"] = sentence
                out["story"] = REFUSAL_TEMPLATE.format(value=inj.value)
        return out


def spec_from_dict(values: dict[str, Any], where: str) -> DatasetSpec:
    unknown = sorted(set(values) - set(DatasetSpec.__dataclass_fields__))
    if unknown:
        raise SpecError(f"{where}: unknown key(s) {unknown}; allowed: {', '.join(DatasetSpec.__dataclass_fields__)}")
    return DatasetSpec(**values)
