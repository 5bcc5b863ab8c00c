"""The synthetic world of the demo tier: a group word is a cheap shortcut for the label
in one biased cell, so the answer (which training examples hurt worst-group accuracy)
is known.

``label_noise`` (0 by default, as in the spec's linear world) makes the core word
disagree with the label now and then: a flexible model then cannot simply memorise the
core words, and the group word's prior decides the minority cell, as the L2 penalty
does for the linear model.

Every example is one group word, one *core* word drawn from the label's list, and a few
filler words, in random order. The core word alone determines the label, but each core
word is rare; the group word is frequent. In the biased group the majority label
outnumbers the other label ``majority : minority`` (300 : 30 by default), so a model
that leans on the group word misclassifies the minority cell, and removing majority-cell
examples of the biased group is the repair D3M should find (spec section 9.2). ``effect``
grades the skew: at 0 the biased group is balanced (300 : 300), a world with nothing to
repair.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import ClassVar

import pandas as pd

from biasdrift.corpora import register_generator

CONSONANTS = "bdfgklmnprstvz"
VOWELS = "aeiou"


def pseudo_words(n: int, rng: random.Random, taken: set[str], syllables: int = 3) -> list[str]:
    """``n`` distinct lower-case pseudo-words (consonant-vowel syllables) not in
    ``taken``: whole words for a WordPiece tokenizer, no sub-word overlap by accident."""
    words: list[str] = []
    while len(words) < n:
        word = "".join(rng.choice(CONSONANTS) + rng.choice(VOWELS) for _ in range(syllables))
        if word not in taken:
            taken.add(word)
            words.append(word)
    return words


@dataclass(kw_only=True)
class SyntheticParams:
    SCHEMA: ClassVar[str] = "generators.d3m_synthetic"  # the schema section it mirrors: its defaults

    groups: list[str] = field(metadata={"help": "Group names."})
    biased_group: str = field(metadata={"help": "The group whose label balance is skewed."})
    majority_label: int = field(metadata={"help": "The over-represented label in the biased group."})
    n_majority: int = field(metadata={"help": "Train rows of (biased group, majority label)."})
    n_minority: int = field(metadata={"help": "Train rows of (biased group, other label)."})
    n_other: int = field(metadata={"help": "Train rows of every other (group, label) cell."})
    val_per_cell: int = field(metadata={"help": "Validation rows per cell."})
    test_per_cell: int = field(metadata={"help": "Test rows per cell."})
    n_core: int = field(metadata={"help": "Core words per label (each decides the label)."})
    n_filler: int = field(metadata={"help": "Filler words (no signal)."})
    fillers_per_example: int = field(metadata={"help": "Filler words per example."})
    label_noise: float = field(
        metadata={"help": "Probability that an example's core word comes from the other label's list."}
    )
    vocab_seed: int | None = field(
        metadata={
            "help": "Seed of the world's words (None: the dataset's seed). Worlds of a sweep share it, so one "
            "tokenizer and pretrained model know every world's words while the rows differ."
        },
    )
    effect: float = field(
        metadata={
            "help": "Effect size: the biased group's other-label train rows go from n_majority (0: the group is "
            "balanced, its word no shortcut) to n_minority (1, as given)."
        },
    )


def cell_name(group: str, label: int) -> str:
    """The (group, label) cell id used everywhere in the study."""
    return f"{group}|{int(label)}"


def vocabulary(params: SyntheticParams, seed: int) -> dict[str, object]:
    """The world's words: one per group, ``n_core`` per label, ``n_filler`` fillers."""
    rng = random.Random(f"d3m-vocab-{seed}")
    taken: set[str] = set()
    return {
        "group": dict(zip(params.groups, pseudo_words(len(params.groups), rng, taken), strict=True)),
        "core": {label: pseudo_words(params.n_core, rng, taken) for label in (0, 1)},
        "filler": pseudo_words(params.n_filler, rng, taken),
    }


def minority_rows(params: SyntheticParams) -> int:
    """Train rows of (biased group, other label) at the world's effect size."""
    return round(params.n_majority - params.effect * (params.n_majority - params.n_minority))


def cell_counts(params: SyntheticParams) -> dict[str, dict[str, int]]:
    """Rows per split and cell."""
    train = {}
    for group in params.groups:
        for label in (0, 1):
            if group == params.biased_group:
                n = params.n_majority if label == params.majority_label else minority_rows(params)
            else:
                n = params.n_other
            train[cell_name(group, label)] = n
    cells = list(train)
    return {
        "train": train,
        "val": dict.fromkeys(cells, params.val_per_cell),
        "test": dict.fromkeys(cells, params.test_per_cell),
    }


def check_params(params: SyntheticParams) -> None:
    if len(set(params.groups)) != len(params.groups) or len(params.groups) < 2:
        raise ValueError(f"d3m_synthetic: groups must be at least two distinct names, got {params.groups}")
    if params.biased_group not in params.groups:
        raise ValueError(f"d3m_synthetic: biased_group {params.biased_group!r} is not one of {params.groups}")
    if params.majority_label not in (0, 1):
        raise ValueError(f"d3m_synthetic: majority_label must be 0 or 1, got {params.majority_label}")
    counts = (params.n_majority, params.n_minority, params.n_other, params.val_per_cell, params.test_per_cell)
    if min(counts) < 1:
        raise ValueError("d3m_synthetic: every cell count must be at least 1 (an empty cell has no accuracy)")
    if params.n_core < 1 or params.n_filler < params.fillers_per_example or params.fillers_per_example < 0:
        raise ValueError("d3m_synthetic: need n_core >= 1 and n_filler >= fillers_per_example >= 0")
    if not 0 <= params.effect <= 1:
        raise ValueError(f"d3m_synthetic: effect must be in [0, 1], got {params.effect}")
    if not 0 <= params.label_noise < 0.5:
        raise ValueError(f"d3m_synthetic: label_noise must be in [0, 0.5), got {params.label_noise}")


@register_generator("d3m_synthetic", SyntheticParams)
def d3m_synthetic(params: SyntheticParams, seed: int) -> pd.DataFrame:
    """Rows ``uid, text, label, group, cell, split`` (splits train / val / test) and
    ``mislabeled`` (the core word comes from the other label's list: the known answer
    to "which examples are noise")."""
    check_params(params)
    words = vocabulary(params, seed if params.vocab_seed is None else params.vocab_seed)
    rng = random.Random(f"d3m-rows-{seed}")
    rows, seen = [], set()
    for split, cells in cell_counts(params).items():
        for cell, n in cells.items():
            group, label = cell.rsplit("|", 1)
            for i in range(n):
                text = None
                while text is None or text in seen:  # every text once: splits stay disjoint
                    core = int(label) if rng.random() >= params.label_noise else 1 - int(label)
                    tokens = [words["group"][group], rng.choice(words["core"][core])]
                    tokens += rng.sample(words["filler"], params.fillers_per_example)
                    rng.shuffle(tokens)
                    text = " ".join(tokens)
                seen.add(text)
                rows.append(
                    {
                        "uid": f"synth-{split}-{group}{label}-{i:05d}",
                        "text": text,
                        "label": int(label),
                        "group": group,
                        "cell": cell,
                        "split": split,
                        "mislabeled": core != int(label),
                    }
                )
    return pd.DataFrame(rows)
