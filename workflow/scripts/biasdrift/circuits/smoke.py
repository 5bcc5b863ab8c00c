"""Smoke-tier dataset fixtures of study circuits (biasdrift.smoke): files in the format
of the hub datasets ``config/paper/circuits.yaml`` names.

``tiny_shakespeare.parquet`` stands for ``karpathy/tiny_shakespeare`` at the pinned
revision (54795dd, parquet only). On the hub the dataset is three files,
``data/{train,validation,test}-00000-of-00001.parquet``, each holding ONE row with one
string column ``text``: the whole split as a single text of play lines ("SPEAKER:" on a
line of its own, the speech on the following lines, a blank line between speeches).
``load_dataset`` + ``prepare_dataset`` turn that into one row per split with a ``split``
column; the fixture is that table (one ``text`` row per split, ``split`` naming it), with
generated play-like lines (no Shakespeare text is copied). Imports of pandas stay inside
the builder: this module is imported at parse time.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from biasdrift.smoke.fixtures import register_dataset_fixture

SHAKESPEARE_SPLITS = {"train": 40, "validation": 6, "test": 6}  # speeches per split
SPEAKERS = ("FIRST CITIZEN", "MENENIUS", "CORIOLANUS", "LADY ANNE", "GLOUCESTER", "KING RICHARD", "NURSE", "ROMEO")
OPENINGS = ("Good my lord,", "Nay, but hear me:", "Come, come,", "O gentle friend,", "What say you?", "Peace, I pray,")
CLAUSES = (
    "the night is long and the tide runs fast",
    "I will not stay to hear the bell again",
    "there is no honour in a borrowed crown",
    "speak softly, for the walls have ears tonight",
    "the king is gone and left us to our fears",
    "let the wind bear witness to my oath",
    "my heart is heavy as the castle stone",
    "we shall meet again before the morning",
)


def shakespeare_text(n_speeches: int, rng: random.Random) -> str:
    """One split's text in the hub's layout: speeches of 1-3 lines under a speaker line."""
    speeches = []
    for _ in range(n_speeches):
        lines = [f"{rng.choice(OPENINGS)} {rng.choice(CLAUSES)}."]
        lines += [rng.choice(CLAUSES).capitalize() + rng.choice((".", ";", "!", "?")) for _ in range(rng.randint(0, 2))]
        speeches.append(f"{rng.choice(SPEAKERS).title()}:\n" + "\n".join(lines))
    return "\n\n".join(speeches) + "\n"


@register_dataset_fixture("tiny_shakespeare.parquet", "karpathy/tiny_shakespeare")
def tiny_shakespeare(out_path: Path, seed: int) -> dict[str, Any]:
    import pandas as pd

    rng = random.Random(seed)
    frame = pd.DataFrame(
        {
            "text": [shakespeare_text(n, rng) for n in SHAKESPEARE_SPLITS.values()],
            "split": list(SHAKESPEARE_SPLITS),
        }
    )
    frame.to_parquet(out_path, index=False)
    lines = {split: text.count("\n") for split, text in zip(frame.split, frame.text, strict=True)}
    return {"rows": len(frame), "splits": list(SHAKESPEARE_SPLITS), "lines": lines}
