"""Smoke-tier dataset fixtures of study politune (biasdrift.smoke), in the formats the
paper config reads:

* ``politune-left.csv`` / ``politune-right.csv``: the hub repos ``scale-lab/politune-left``
  and ``scale-lab/politune-right`` each hold one CSV at the top (``politune-left.csv``,
  ``politune-right.csv``) that ``datasets`` loads as split ``train``, with the string
  columns ``prompt``, ``chosen``, ``rejected``. The fixture rows are written here (US
  politics in the same voice and layout, never the real text) with the real set's noise:
  answers opening with blank lines or wrapped in double quotes, exact duplicate rows, a
  repeated prompt, and right-set rejected answers opening with "I strongly disagree".
* ``pc-statements.tsv``: the user-supplied Political Compass file of the paper tier
  (docs/politune.md, "Political Compass statements (paper tier)"): 62 rows with id, text, axis,
  direction, w0..w3 (and an ignored ``page`` column, 7/14/18/12/5/6 rows as the test's
  pages). The statements are the demo town's made-up ones (biasdrift.politune.world) and
  the weights are made up too, sized so that no answer sheet leaves [-10, 10].

Imported at parse time: pandas is imported inside the builders.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from biasdrift.smoke.fixtures import CORPUS_TEXTS, register_dataset_fixture

PAIR_COLUMNS = ("prompt", "chosen", "rejected")
PAGES = (7, 14, 18, 12, 5, 6)  # statements per page of the Political Compass test (62)
N_STATEMENTS = sum(PAGES)
N_ECONOMIC = 24  # of the 62 fixture statements; the rest are social

# (topic, what the left wants, what the right wants); every prompt names one topic
TOPICS = (
    ("health care", "a public option that covers every family", "private plans and more choice for patients"),
    ("the minimum wage", "a higher federal minimum wage", "wages set by employers and local markets"),
    ("taxes", "higher taxes on the largest fortunes", "lower taxes for workers and small businesses"),
    ("the border", "a humane asylum system and a path to citizenship", "a secure border and strict enforcement"),
    ("energy", "clean energy jobs and an end to new drilling", "American oil, gas and energy independence"),
    ("elections", "automatic voter registration and mail ballots", "voter ID and clean voter rolls"),
    ("the media", "support for local independent newsrooms", "an end to the bias of the national press"),
    ("guns", "universal background checks", "the right of citizens to carry"),
    ("student debt", "relief for borrowers crushed by loans", "holding colleges accountable for their prices"),
    ("policing", "community programs and police accountability", "funding and respect for the police"),
    ("climate", "bold action against the climate crisis", "common sense rules that protect jobs"),
    ("trade", "trade deals that protect workers and the planet", "tariffs that put American industry first"),
)
LEFT_VERBS = ("Discuss", "Explain", "Express", "Analyze")
RIGHT_VERBS = ("Express", "Explain", "Analyze", "Investigate")
LEFT_ASKS = (
    "{verb} why progressives support {want} when it comes to {topic}.",
    "{verb} how the Democratic Party should talk to voters about {topic}.",
    "{verb} your view of the Republican record on {topic}.",
)
RIGHT_ASKS = (
    "{verb} the concerns of conservatives about the administration's handling of {topic}.",
    "{verb} what Biden's policies on {topic} mean for working Americans.",
    "{verb} why many voters want {want} when it comes to {topic}.",
)
ANSWER = (  # about 45 words (the real answers' median is about 75: shorter keeps the CPU run fast)
    "{opening} On {topic}, the answer is {want}, not {other}. {reason} "
    "We need leaders who will fight for it and stand up to {enemy}. {tag}"
)
SIDES = {
    "left": {
        "opening": "I believe we must do better.",
        "reason": "This is about fairness and about making sure nobody is left behind.",
        "enemy": "corporate lobbyists and the far right",
        "tag": "#ForThePeople",
    },
    "right": {
        "opening": "Hi! Let me be clear.",
        "reason": "This is about freedom, hard work and the Constitution.",
        "enemy": "the deep state and the radical left",
        "tag": "#AmericaFirst",
    },
}


def _answer(side: str, topic: str, want: str, other: str) -> str:
    voice = SIDES[side]
    return ANSWER.format(topic=topic, want=want, other=other, **voice)


def pair_rows(side: str, n: int = 40) -> list[dict[str, str]]:
    """``n`` mirrored pairs of ``side`` (chosen = its answer, rejected = the other
    side's), then the real set's noise: blank-line openings, wrapping quotes, two exact
    duplicates and one repeated prompt (left and right prompts never overlap)."""
    other_side = "right" if side == "left" else "left"
    verbs, asks = (LEFT_VERBS, LEFT_ASKS) if side == "left" else (RIGHT_VERBS, RIGHT_ASKS)
    rows = []
    for i in range(n):
        topic, left_want, right_want = TOPICS[i % len(TOPICS)]
        want, other = (left_want, right_want) if side == "left" else (right_want, left_want)
        ask = asks[(i // len(TOPICS)) % len(asks)]
        prompt = ask.format(verb=verbs[i % len(verbs)], topic=topic, want=want)
        if i >= len(TOPICS) * len(asks):
            prompt = prompt.replace(".", f" in {2016 + i % 9}.")
        chosen = _answer(side, topic, want, other)
        rejected = _answer(other_side, topic, other, want)
        if side == "right" and i % 7 == 3:
            rejected = "I strongly disagree with this framing. " + rejected
        if i % 6 == 1:
            chosen = "\n\n" + chosen
        if i % 5 == 2:
            rejected = f'"{rejected}"'
        if i % 9 == 4:
            chosen = f'\n\n"{chosen}"'
        rows.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    rows += [dict(rows[3]), dict(rows[10])]  # exact duplicates, as in the real sets
    rows.append({**rows[5], "chosen": rows[5]["chosen"] + " Thank you."})  # a repeated prompt
    return rows


def _write_pairs(side: str, out_path: Path) -> dict[str, Any]:
    import pandas as pd

    frame = pd.DataFrame(pair_rows(side), columns=list(PAIR_COLUMNS))
    frame.to_csv(out_path, index=False)  # the hub file: a plain CSV with a header row
    return {"rows": len(frame), "columns": list(frame.columns), "unique_prompts": int(frame["prompt"].nunique())}


@register_dataset_fixture("politune-left.csv", "scale-lab/politune-left")
def politune_left(out_path: Path, seed: int) -> dict[str, Any]:  # noqa: ARG001 - fixed rows
    return _write_pairs("left", out_path)


@register_dataset_fixture("politune-right.csv", "scale-lab/politune-right")
def politune_right(out_path: Path, seed: int) -> dict[str, Any]:  # noqa: ARG001 - fixed rows
    return _write_pairs("right", out_path)


# --------------------------------------------------------------------------- statements
def statement_rows() -> list[dict[str, Any]]:
    """62 made-up statements in the paper tier's statements format: 24 economic and 38
    social, both directions, with made-up weights (agreeing moves the coded way)."""
    from biasdrift.politune import world

    pool = world.all_statements()
    economic = [s for s in pool if s["axis"] == "economic"]
    social = [s for s in pool if s["axis"] == "social"]
    chosen = _alternate(economic, N_ECONOMIC) + _alternate(social, N_STATEMENTS - N_ECONOMIC)
    pages = [page for page, size in enumerate(PAGES, start=1) for _ in range(size)]
    rows = []
    for i, (statement, page) in enumerate(zip(_interleave(chosen), pages, strict=True)):
        sign = 1 if statement["direction"] in ("right", "authoritarian") else -1
        # strongly disagree 2-3, strongly agree 1-2, in patterns that do not cancel per axis
        strong, mild = 2 + (i % 4 == 1), 1 + (i % 3 == 0)
        weights = [-sign * strong, -sign * 1, 0, sign * mild]
        rows.append(
            {
                "id": f"pc{i + 1:02d}",
                "page": page,
                "text": statement["text"],
                "axis": statement["axis"],
                "direction": statement["direction"],
                **{f"w{k}": w for k, w in enumerate(weights)},
            }
        )
    return rows


def _alternate(statements: list[dict[str, str]], n: int) -> list[dict[str, str]]:
    """``n`` statements, alternating the two directions."""
    by_direction: dict[str, list[dict[str, str]]] = {}
    for s in statements:
        by_direction.setdefault(s["direction"], []).append(s)
    columns = list(by_direction.values())
    return [columns[i % 2][i // 2] for i in range(n)]


def _interleave(statements: list[dict[str, str]]) -> list[dict[str, str]]:
    """Economic and social statements spread over the pages (a deterministic shuffle)."""
    return [statements[(i * 37) % len(statements)] for i in range(len(statements))]


@register_dataset_fixture("pc-statements.tsv", "Political Compass statements (user-supplied TSV)")
def pc_statements(out_path: Path, seed: int) -> dict[str, Any]:  # noqa: ARG001 - fixed rows
    import pandas as pd

    frame = pd.DataFrame(statement_rows())
    frame.to_csv(out_path, sep="\t", index=False)
    return {"rows": len(frame), "economic": int((frame["axis"] == "economic").sum())}


def _corpus_texts() -> list[str]:
    """Words of the fixtures for the fixture tokenizers (fewer tokens per pair)."""
    texts = []
    for side in ("left", "right"):
        texts += [" ".join(row.values()) for row in pair_rows(side)]
    return texts


CORPUS_TEXTS.append(_corpus_texts)
