"""Smoke-tier dataset fixtures of study d3m, in the formats of the hub datasets that
config/paper/d3m.yaml names, as :func:`biasdrift.data.load_hub_dataset` hands them on
(every split's rows with the hub's columns, dtypes and nesting, plus ``split`` holding
the hub's split names):

* ``toxigen-train.parquet``: ``toxigen/toxigen-data``, config ``train`` (split train):
  prompt, generation, generation_method (ALICE / top-k), group, prompt_label (int64),
  roberta_prediction (float64);
* ``toxigen-annotated.parquet``: config ``annotated`` (splits train and test): text,
  target_group, factual?, ingroup_effect, lewd, framing, predicted_group, stereotyping,
  intent, toxicity_ai, toxicity_human (float64 means of three 1-5 ratings),
  predicted_author, actual_method;
* ``hatexplain.parquet``: ``Hate-speech-CNERG/hatexplain`` at ``refs/convert/parquet``
  (splits train, validation, test): id, annotators {label (ClassLabel hatespeech /
  normal / offensive), annotator_id (int32), target (lists of strings)}, rationales
  (lists of int32 per annotator), post_tokens; built as a ``datasets.Dataset`` with
  those features and converted with ``to_pandas`` like a hub load.

The texts are neutral template sentences (a group word and a filler): the fixtures test
formats and sizes, not what a classifier learns. Imports of pandas / datasets stay
inside the builders (this module is imported at parse time).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from biasdrift.smoke.fixtures import CORPUS_TEXTS, register_dataset_fixture

TOXIGEN_GROUPS = (
    "asian",
    "black",
    "chinese",
    "jewish",
    "latino",
    "lgbtq",
    "mental_dis",
    "mexican",
    "middle_east",
    "muslim",
    "native_american",
    "physical_dis",
    "women",
)
TOXIGEN_METHODS = ("ALICE", "top-k")
TOXIGEN_ROWS_PER_CELL_AND_METHOD = 3  # 6 per (group, label): 4 train + 1 val, one spare
HATEXPLAIN_GROUPS = ("African", "Islam", "Women", "Refugee")
HATEXPLAIN_POSTS = {"train": 4, "validation": 1, "test": 1}  # per (group, label)
HATEXPLAIN_LABELS = ("hatespeech", "normal", "offensive")
PLACES = ("park", "library", "market", "school", "station", "museum", "garden", "harbor")
ACTIVITIES = ("cooking", "reading", "running", "painting", "singing", "sailing", "farming", "teaching")


def _phrase(group: str, i: int) -> str:
    words = group.replace("_", " ")
    return f"the {words} neighbours were {ACTIVITIES[i % 8]} near the {PLACES[(i // 8) % 8]} on day {i}"


def _texts() -> list[str]:
    """Every fixture text (for the fixture tokenizers' corpus)."""
    groups = [*TOXIGEN_GROUPS, *(g.lower() for g in HATEXPLAIN_GROUPS)]
    return [_phrase(g, i) for g in groups for i in range(64)]


CORPUS_TEXTS.append(_texts)


def _toxigen_prompt(group: str, label: int) -> str:
    kind = "hateful" if label else "neutral"
    return "\n".join(f"- a {kind} prompt line {j} about {group.replace('_', ' ')}" for j in range(3)) + "\n-"


@register_dataset_fixture("toxigen-train.parquet", "toxigen/toxigen-data")
def toxigen_train(out_path: Path, seed: int) -> dict[str, Any]:
    import pandas as pd

    rng = random.Random(seed)
    rows, i = [], 0
    for group in TOXIGEN_GROUPS:
        for label in (0, 1):
            for method in TOXIGEN_METHODS:
                for _ in range(TOXIGEN_ROWS_PER_CELL_AND_METHOD):
                    rows.append(
                        {
                            "prompt": _toxigen_prompt(group, label),
                            "generation": _phrase(group, i),
                            "generation_method": method,
                            "group": group,
                            "prompt_label": label,
                            "roberta_prediction": round(rng.random(), 4),
                        }
                    )
                    i += 1
    # the hub's train config repeats generations (the preparer keeps one of each)
    rows.append({**rows[0], "roberta_prediction": 0.5})
    frame = pd.DataFrame(rows).astype({"prompt_label": "int64", "roberta_prediction": "float64"})
    frame["split"] = "train"
    frame.to_parquet(out_path, index=False)
    return {"rows": len(frame), "splits": {"train": len(frame)}}


ANNOTATED_STRINGS = {
    "factual?": ("opinion", "neither factual nor opinion", "disagreement"),
    "ingroup_effect": ("doesn't use in-group language",),
    "lewd": ("doesn't contain lewd content",),
    "framing": ("", "moral", "solution", "disagreement"),
    "stereotyping": ("doesn't use positive stereotyping", "uses positive stereotyping"),
    "predicted_author": ("human", "ai"),
    "actual_method": ("topk", "cbs"),
}


@register_dataset_fixture("toxigen-annotated.parquet", "toxigen/toxigen-data")
def toxigen_annotated(out_path: Path, seed: int) -> dict[str, Any]:
    """Config ``annotated``: two train rows per group (one rated benign, one toxic:
    toxicity_human <= 2 or > 2) and one test row per group."""
    import pandas as pd

    rng = random.Random(seed)
    benign, toxic = 1.0 + 1 / 3, 4.0 + 2 / 3  # means of three ratings; label = toxicity_human > 2
    rows, i = [], 1000  # texts disjoint from the train config's generations
    for split in ("train", "test"):
        for g, group in enumerate(TOXIGEN_GROUPS):
            for toxicity in (benign, toxic) if split == "train" else ((benign, toxic)[g % 2],):
                rows.append(
                    {
                        "text": _phrase(group, i),
                        "target_group": group,
                        **{column: rng.choice(values) for column, values in ANNOTATED_STRINGS.items()},
                        "predicted_group": f"the text directly references {group}",
                        "intent": round(toxicity + rng.choice((-1 / 3, 0.0)), 6),
                        "toxicity_ai": round(rng.uniform(1, 5), 6),
                        "toxicity_human": toxicity,
                        "split": split,
                    }
                )
                i += 1
    columns = ["text", "target_group", "factual?", "ingroup_effect", "lewd", "framing", "predicted_group"]
    columns += ["stereotyping", "intent", "toxicity_ai", "toxicity_human", "predicted_author", "actual_method"]
    frame = pd.DataFrame(rows)[[*columns, "split"]]
    frame.to_parquet(out_path, index=False)
    return {"rows": len(frame), "splits": frame["split"].value_counts().sort_index().to_dict()}


def _post(pid: str, number: int, tokens: list[str], labels: list[str], targets: list[list[str]]) -> dict[str, Any]:
    """One HateExplain post: three annotators; a rationale (a 0/1 mask over the tokens)
    from each annotator whose label is not normal, as in the hub data."""
    rationales = [[int(j % 3 == 0) for j in range(len(tokens))] for label in labels if label != "normal"]
    return {
        "id": pid,
        "annotators": {
            "label": [HATEXPLAIN_LABELS.index(label) for label in labels],
            "annotator_id": [200 + 3 * (number % 20) + k for k in range(3)],
            "target": targets,
        },
        "rationales": rationales,
        "post_tokens": tokens,
    }


@register_dataset_fixture("hatexplain.parquet", "Hate-speech-CNERG/hatexplain")
def hatexplain(out_path: Path, seed: int) -> dict[str, Any]:
    import datasets
    import pandas as pd

    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "annotators": datasets.Sequence(
                {
                    "label": datasets.ClassLabel(names=list(HATEXPLAIN_LABELS)),
                    "annotator_id": datasets.Value("int32"),
                    "target": datasets.Sequence(datasets.Value("string")),
                }
            ),
            "rationales": datasets.Sequence(datasets.Sequence(datasets.Value("int32"))),
            "post_tokens": datasets.Sequence(datasets.Value("string")),
        }
    )
    rng = random.Random(seed)
    frames, n = [], 0
    for split, per_cell in HATEXPLAIN_POSTS.items():
        posts = []
        for group in HATEXPLAIN_GROUPS:
            for hateful in (True, False):
                for _ in range(per_cell):
                    n += 1
                    tokens = ["<user>", *_phrase(group.lower(), n).split()]
                    labels = [rng.choice(("hatespeech", "offensive"))] * 2 + ["normal"] if hateful else ["normal"] * 3
                    targets = [[group], [group, "Other"] if n % 2 else [group], ["None"]]
                    posts.append(
                        _post(f"{1_100_000_000 + n}_{'gab' if n % 3 else 'twitter'}", n, tokens, labels, targets)
                    )
        if split == "train":  # posts the preparation drops: no majority label, no kept group
            posts.append(
                _post("1199999001_gab", 1, ["<user>", "no", "majority"], list(HATEXPLAIN_LABELS), [["Women"]] * 3)
            )
            posts.append(
                _post("1199999002_twitter", 2, ["other", "target"], ["normal"] * 3, [["Jewish"], ["Jewish"], []])
            )
        frame = datasets.Dataset.from_list(posts, features=features).to_pandas()
        frame["split"] = split
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True)
    frame.to_parquet(out_path, index=False)
    return {"rows": len(frame), "splits": frame["split"].value_counts().sort_index().to_dict()}
