"""HONEST-format templates and the two views the study compares.

A template row (MilaNLProc/honest ``en_*_template.tsv``, or the project's
``resources/specdec/templates_en.tsv``) has ``template_masked`` ("the woman should work as
a [M]."), ``identity``, ``category`` and optionally ``raw`` ("[I] should work as a [M]."),
``number`` and ``type``. The prompt is the text before ``[M]``.

Views (specs/specdec.md §2):

* ``legacy_all``: one row per template string with the label of its *last* row, as the
  HONEST package's ``DataFrame.T.to_dict()`` does (the original's 1,429 templates, with
  every ambiguous template labelled male);
* ``clean_binary``: only the two contrasted categories, without gender-neutral identities
  (listed in the config, or listed under both categories), one row per (template,
  category).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from biasdrift.data import DataError, read_dataset
from biasdrift.runtime import atomic_path

log = logging.getLogger(__name__)

MASK = "[M]"
IDENTITY_SLOT = "[I]"
VIEWS = ("clean_binary", "legacy_all")
REQUIRED_COLUMNS = ("template_masked", "identity", "category")
HONEST_CATEGORIES = (
    "female",
    "male",
    "queer_gender",
    "queer_orientation",
    "queer",
    "queer_gender_pronoun",
    "nonqueer_orientation",
    "nonqueer_gender",
    "queer_gender_xenogender",
    "nonqueer",
)


class TemplateError(DataError):
    """Bad templates: the message names the file, the rows and the problem."""


@dataclass
class TemplateConfig:
    SCHEMA: ClassVar[str] = "studies.specdec"  # the schema section it mirrors: its defaults
    categories: list[str] = field(metadata={"help": "Known categories (others are errors)."})
    contrast: list[str] = field(metadata={"help": "The two contrasted categories (a, b): a - b."})
    neutral_identities: list[str] = field(
        metadata={"help": "Gender-neutral identities dropped by clean_binary (besides those under both)."},
    )
    max_per_category: int | None = field(
        metadata={"help": "Keep at most this many templates per category and view (seeded)."}
    )
    seed: int = field(metadata={"help": "Seed of the max_per_category sample."})

    def __post_init__(self) -> None:
        if len(self.contrast) != 2 or self.contrast[0] == self.contrast[1]:
            raise ValueError(f"contrast needs two different categories, got {self.contrast}")
        missing = [c for c in self.contrast if c not in self.categories]
        if missing:
            raise ValueError(f"contrast categories {missing} are not among categories {self.categories}")


def prompt_of(template: str) -> str:
    """The text before the mask, without trailing spaces."""
    return template.split(MASK)[0].rstrip()


def _rows(frame: pd.DataFrame, mask: pd.Series, limit: int = 5) -> str:
    shown = [f"row {i}: {frame.at[i, 'template_masked']!r}" for i in frame.index[mask][:limit]]
    more = int(mask.sum()) - len(shown)
    return "; ".join(shown) + (f" (+{more} more)" if more > 0 else "")


def read_template_set(path: str | Path, name: str) -> pd.DataFrame:
    """One HONEST-format set (a prepared dataset parquet or a TSV/CSV file)."""
    frame = read_dataset(path, REQUIRED_COLUMNS).reset_index(drop=True)
    for column in REQUIRED_COLUMNS:
        bad = frame[column].isna() | (frame[column].astype(str).str.strip() == "")
        if bad.any():
            raise TemplateError(f"{path} (templates {name!r}): empty {column!r} in {_rows(frame, bad)}")
    frame = frame.astype({c: str for c in REQUIRED_COLUMNS})
    no_mask = frame["template_masked"].str.count(MASK.replace("[", r"\[").replace("]", r"\]")) != 1
    if no_mask.any():
        raise TemplateError(
            f"{path} (templates {name!r}): every template needs exactly one {MASK}; {_rows(frame, no_mask)}"
        )
    empty = frame["template_masked"].map(prompt_of) == ""
    if empty.any():
        raise TemplateError(f"{path} (templates {name!r}): no text before {MASK} in {_rows(frame, empty)}")
    if "raw" not in frame.columns:
        frame["raw"] = [
            t.replace(i, IDENTITY_SLOT, 1) for t, i in zip(frame["template_masked"], frame["identity"], strict=True)
        ]
    for column in ("number", "type"):
        if column not in frame.columns:
            frame[column] = ""
    frame["source_set"] = name
    frame["source_row"] = range(len(frame))
    return frame[["source_set", "source_row", "template_masked", "raw", "identity", "number", "type", "category"]]


def build_templates(sets: Sequence[tuple[str, str | Path]], cfg: TemplateConfig) -> pd.DataFrame:
    """All template rows of ``sets`` ((name, path) in order) with ids, prompts, flags and
    view memberships (``in_<view>``). Raises :class:`TemplateError` for templates without
    ``[M]`` or categories outside ``cfg.categories``."""
    if not sets:
        raise TemplateError("no template sets given")
    frame = pd.concat([read_template_set(path, name) for name, path in sets], ignore_index=True)
    unknown = ~frame["category"].isin(cfg.categories)
    if unknown.any():
        found = sorted(frame.loc[unknown, "category"].unique())
        raise TemplateError(
            f"unknown categor(ies) {found} in templates ({_rows(frame, unknown)}); known categories: "
            f"{', '.join(cfg.categories)} (studies.specdec.categories)"
        )
    present = set(frame["category"])
    absent = [c for c in cfg.contrast if c not in present]
    if absent:
        raise TemplateError(f"contrast categor(ies) {absent} have no templates; present: {sorted(present)}")
    frame.insert(0, "template_id", [f"t{i:05d}" for i in range(len(frame))])
    frame["prompt"] = frame["template_masked"].map(prompt_of)
    a, b = cfg.contrast
    both = set(frame.loc[frame["category"] == a, "identity"]) & set(frame.loc[frame["category"] == b, "identity"])
    frame["gender_neutral_identity"] = frame["identity"].isin(set(cfg.neutral_identities) | both)
    last = ~frame.duplicated("template_masked", keep="last")
    frame["legacy_category"] = frame["template_masked"].map(frame.loc[last].set_index("template_masked")["category"])
    frame["in_legacy_all"] = last
    first_per_cat = ~frame.duplicated(["template_masked", "category"], keep="first")
    frame["in_clean_binary"] = frame["category"].isin(cfg.contrast) & ~frame["gender_neutral_identity"] & first_per_cat
    if cfg.max_per_category is not None:
        for view in VIEWS:
            frame[f"in_{view}"] = _cap(frame, f"in_{view}", cfg.max_per_category, cfg.seed)
    return frame


def _cap(frame: pd.DataFrame, flag: str, limit: int, seed: int) -> pd.Series:
    keep = pd.Series(False, index=frame.index)
    for category, group in frame[frame[flag]].groupby("category", sort=True):
        ids = list(group.index)
        chosen = ids if len(ids) <= limit else sorted(random.Random(f"{seed}-{category}").sample(ids, limit))
        keep.loc[chosen] = True
    return keep


def view_frame(templates: pd.DataFrame, view: str) -> pd.DataFrame:
    """The rows of one view (its ``category`` is the label the view uses)."""
    if view not in VIEWS:
        raise ValueError(f"unknown template view {view!r}; known: {', '.join(VIEWS)}")
    rows = templates[templates[f"in_{view}"]].reset_index(drop=True)
    if rows.empty:
        raise TemplateError(f"template view {view!r} holds no templates")
    return rows


def summary(templates: pd.DataFrame) -> dict[str, Any]:
    out: dict[str, Any] = {"rows": len(templates), "unique_templates": int(templates["template_masked"].nunique())}
    for view in VIEWS:
        rows = templates[templates[f"in_{view}"]]
        out[view] = {str(k): int(v) for k, v in rows["category"].value_counts().sort_index().items()}
    return out


def prepare_templates(sets: Sequence[tuple[str, str | Path]], cfg: TemplateConfig, out_path: str | Path) -> dict:
    """Rule prepare_specdec_templates: write ``templates.parquet``; return counts per view."""
    frame = build_templates(sets, cfg)
    with atomic_path(out_path) as tmp:
        frame.to_parquet(tmp, index=False)
    info = summary(frame)
    log.info("templates: %s", info)
    return info
