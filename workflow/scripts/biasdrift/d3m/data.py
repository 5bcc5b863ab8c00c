"""World preparation: a table with ``uid, text, label, group, cell, split`` (splits
train / val / test), disjoint by normalised text, and a manifest of per-cell counts.

Three preparers (``studies.d3m.worlds.<world>.prepare``):

* ``table``: rows that already carry uid, text, label, group and split (the synthetic
  world, or a local file);
* ``toxigen``: the ToxiGen ``train`` config (machine-generated, labels = prompt intent)
  for train / val and the human-annotated config for test (label = toxicity_human > 2);
* ``hatexplain``: majority labels of three annotators, target groups named by at least
  two annotators.

The thesis's bugs are fixed (spec sections 2 and 10): splits are drawn by uid, never by
a reset positional index, and asserted disjoint; HateExplain posts without a majority
are dropped instead of silently becoming label 0; a post belongs to one group only (no
copies across cells or splits); ToxiGen texts are unwrapped from ``b'...'`` only when
they match that pattern. The planted imbalance (the minority label of the biased groups
thinned to ``biased_ratio``) is applied to train only; val and test stay balanced.
"""

from __future__ import annotations

import ast
import hashlib
import logging
import random
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pandas as pd

from biasdrift.d3m.generators import cell_name
from biasdrift.data import DataError, require_columns

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
SPLIT_ALIASES = {"train": "train", "val": "val", "valid": "val", "validation": "val", "test": "test"}
COLUMNS = ("uid", "text", "label", "group", "cell", "split")
# kept when a table world has them: ground truth a synthetic world knows
OPTIONAL_COLUMNS = ("mislabeled",)
BYTES_RE = re.compile(r"""^b(['"])(.*)\1$""", re.DOTALL)


def normalise_text(text: str) -> str:
    """What counts as the same text across splits: lower case, collapsed whitespace."""
    return " ".join(str(text).lower().split())


def text_uid(prefix: str, text: str) -> str:
    return f"{prefix}-{hashlib.sha1(normalise_text(text).encode()).hexdigest()[:16]}"


# --------------------------------------------------------------------------- checks
def finalize_world(frame: pd.DataFrame, where: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Validate a world table, add ``cell``, order it (split, uid) and count it.

    Errors (naming ``where``): a missing column, NaN text / group / label, labels other
    than 0 / 1, duplicate uids, an unknown or empty split, or a text in two splits."""
    require_columns(frame, ("uid", "text", "label", "group", "split"), where)
    frame = frame.copy()
    frame["split"] = frame["split"].astype(str).map(lambda s: SPLIT_ALIASES.get(s, s))
    unknown = sorted(set(frame["split"]) - set(SPLITS))
    if unknown:
        raise DataError(f"{where}: unknown split(s) {unknown}; expected {list(SPLITS)}")
    for column in ("uid", "text", "label", "group"):
        bad = frame[column].isna() | (frame[column].astype(str).str.strip() == "")
        if bad.any():
            raise DataError(f"{where}: {int(bad.sum())} row(s) with empty or missing {column!r}")
    labels = pd.to_numeric(frame["label"], errors="coerce")
    if not labels.isin([0, 1]).all():
        raise DataError(f"{where}: labels must be 0 or 1, found {sorted(frame['label'].astype(str).unique())[:10]}")
    frame["label"] = labels.astype(int)
    frame["uid"], frame["group"], frame["text"] = (frame[c].astype(str) for c in ("uid", "group", "text"))
    duplicated = frame["uid"][frame["uid"].duplicated()]
    if len(duplicated):
        raise DataError(f"{where}: {len(duplicated)} duplicate uid(s), e.g. {duplicated.iloc[:3].tolist()}")
    empty = [s for s in SPLITS if not (frame["split"] == s).any()]
    if empty:
        raise DataError(f"{where}: split(s) {empty} hold no rows (train, val and test are all needed)")
    assert_disjoint(frame, where)
    frame["cell"] = [cell_name(g, y) for g, y in zip(frame["group"], frame["label"], strict=True)]
    order = {s: i for i, s in enumerate(SPLITS)}
    frame = frame.sort_values(["split", "uid"], key=lambda c: c.map(order) if c.name == "split" else c)
    frame = frame[[*COLUMNS, *(c for c in OPTIONAL_COLUMNS if c in frame)]].reset_index(drop=True)
    return frame, world_manifest(frame)


def assert_disjoint(frame: pd.DataFrame, where: str) -> None:
    """No normalised text may occur in two splits."""
    norm = frame["text"].map(normalise_text)
    splits_per_text = frame.groupby(norm)["split"].nunique()
    shared = splits_per_text[splits_per_text > 1]
    if len(shared):
        raise DataError(
            f"{where}: {len(shared)} text(s) occur in more than one split (e.g. {shared.index[:2].tolist()}); "
            "splits must be disjoint"
        )


def world_manifest(frame: pd.DataFrame) -> dict[str, Any]:
    counts = frame.groupby(["split", "cell"]).size()
    return {
        "rows": len(frame),
        "rows_per_split": {s: int((frame["split"] == s).sum()) for s in SPLITS},
        "groups": sorted(frame["group"].unique()),
        "cells": sorted(frame["cell"].unique()),
        "cell_counts": {s: {c: int(n) for (sp, c), n in counts.items() if sp == s} for s in SPLITS},
    }


def read_world(path: str, split: str | Sequence[str] | None = None) -> pd.DataFrame:
    from biasdrift.data import read_dataset

    return read_dataset(path, COLUMNS, split=split)


def split_frame(frame: pd.DataFrame, split: str) -> pd.DataFrame:
    part = frame[frame["split"] == split].sort_values("uid").reset_index(drop=True)
    if part.empty:
        raise DataError(f"split {split!r} holds no rows")
    return part


# --------------------------------------------------------------------------- sampling
def sample_cell(frame: pd.DataFrame, n: int, seed: int, where: str, strict: bool = True) -> pd.DataFrame:
    """``n`` rows drawn without replacement by a seeded permutation of the uid-sorted
    rows (independent of input order)."""
    frame = frame.sort_values("uid")
    if len(frame) < n:
        if strict:
            raise DataError(f"{where}: needs {n} rows but has only {len(frame)}")
        log.warning("%s: only %d rows, fewer than the %d asked for", where, len(frame), n)
        n = len(frame)
    order = random.Random(seed).sample(range(len(frame)), n)
    return frame.iloc[sorted(order)]


@dataclass(kw_only=True)
class Imbalance:
    SCHEMA: ClassVar[str] = "$defs.d3m_world.imbalance"  # the schema section it mirrors: its defaults

    biased_groups: list[str] = field(metadata={"help": "Groups whose cells are skewed."})
    biased_label: int = field(metadata={"help": "The label thinned out in the biased groups."})
    biased_ratio: float = field(metadata={"help": "Size of the thinned cell relative to the others."})

    def train_count(self, group: str, label: int, per_cell: int) -> int:
        if group in self.biased_groups and label == self.biased_label:
            return int(self.biased_ratio * per_cell)
        return per_cell


def drop_shared_texts(frames: Sequence[pd.DataFrame], where: str) -> list[pd.DataFrame]:
    """Keep each normalised text only in the first frame (and once) where it occurs."""
    seen: set[str] = set()
    out = []
    for frame in frames:
        norm = frame["text"].map(normalise_text)
        keep = ~norm.isin(seen) & ~norm.duplicated()
        if (~keep).any():
            log.info("%s: dropped %d duplicate text(s)", where, int((~keep).sum()))
        seen |= set(norm[keep])
        out.append(frame[keep.to_numpy()])
    return out


# --------------------------------------------------------------------------- table
def prepare_table(frame: pd.DataFrame, where: str) -> pd.DataFrame:
    """Rows that already are a world (uid, text, label, group, split)."""
    require_columns(frame, ("uid", "text", "label", "group", "split"), where)
    return frame


# --------------------------------------------------------------------------- toxigen
TOXIGEN_BIASED = ["women", "black", "lgbtq", "jewish"]


def check_biased_groups(imbalance: Imbalance, groups: Iterable[str], where: str) -> None:
    """A biased group that is not one of the world's groups would plant no bias at all
    (a typo such as ``Women`` for ``women``): an error naming the key."""
    unknown = sorted(set(imbalance.biased_groups) - set(groups))
    if unknown:
        raise DataError(
            f"{where}.imbalance.biased_groups: {unknown} are not groups of the data; groups: {sorted(set(groups))}"
        )


@dataclass(kw_only=True)
class ToxigenParams:
    SCHEMA: ClassVar[str] = "$defs.d3m_world.toxigen"  # the schema section it mirrors: its defaults

    groups: list[str] | None = field(metadata={"help": "Groups kept (None = all), both labels each."})
    train_per_cell: int = field(metadata={"help": "Train rows per (group, label) cell."})
    val_per_cell: int = field(metadata={"help": "Validation rows per cell (balanced)."})
    test_per_cell: int = field(metadata={"help": "Test rows per cell (annotated config)."})
    toxicity_threshold: float = field(metadata={"help": "Test label = toxicity_human > this."})
    equalise_methods: bool = field(metadata={"help": "Same count per generation method per group."})


def unwrap_bytes_repr(text: str) -> str:
    """``b'...'`` (an old byte-string repr) -> its decoded content; anything else is
    returned unchanged (the thesis sliced [2:-1] blindly)."""
    match = BYTES_RE.match(text)
    if not match:
        return text
    try:
        value = ast.literal_eval(text)
    except (SyntaxError, ValueError):
        return match.group(2)
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def prepare_toxigen(
    train_raw: pd.DataFrame,
    annotated_raw: pd.DataFrame,
    params: ToxigenParams,
    imbalance: Imbalance,
    seed: int,
    where: str = "toxigen",
) -> pd.DataFrame:
    """ToxiGen train / val from the machine-generated config, test from the annotated one.

    Train labels are the prompt's intent (``prompt_label``), test labels human toxicity
    ratings: a label shift the thesis did not mention (recorded in the manifest)."""
    require_columns(train_raw, ("generation", "generation_method", "group", "prompt_label"), f"{where} (train)")
    require_columns(annotated_raw, ("text", "target_group", "toxicity_human"), f"{where} (annotated)")
    pool = train_raw.dropna(subset=["generation", "generation_method", "group", "prompt_label"])
    pool = pool[pool["generation"].astype(str).str.strip() != ""]
    pool = pd.DataFrame(
        {
            "text": pool["generation"].astype(str).str.strip(),
            "label": pool["prompt_label"].astype(int),
            "group": pool["group"].astype(str).str.strip().str.lower(),
            "method": pool["generation_method"].astype(str),
        }
    )
    norm = pool["text"].map(normalise_text)
    conflicting = pool.groupby(norm)["label"].transform("nunique") > 1
    pool = pool[~conflicting.to_numpy()]
    pool["uid"] = pool["text"].map(lambda t: text_uid("tg", t))
    pool = pool.drop_duplicates("uid")
    if params.groups:
        wanted = [g.strip().lower() for g in params.groups]
        labels = pool.groupby("group")["label"].agg(lambda y: sorted(set(y)))
        short = {g: labels.get(g, []) for g in wanted if len(labels.get(g, [])) < 2}
        if short:
            raise DataError(
                f"{where}.toxigen.groups: group(s) without rows of both labels (labels found: {short}); "
                f"groups in the data: {sorted(labels.index)}"
            )
        pool = pool[pool["group"].isin(wanted)]
    check_biased_groups(imbalance, pool["group"], where)
    if params.equalise_methods:
        parts = []
        for method, part in pool.groupby("method", sort=True):
            smallest = int(part.groupby("group").size().min())
            for group, rows in part.groupby("group", sort=True):
                parts.append(sample_cell(rows, smallest, seed, f"{where}: method {method}, group {group}"))
        pool = pd.concat(parts)
    train, val = [], []
    for (group, label), rows in pool.groupby(["group", "label"], sort=True):
        n_train = imbalance.train_count(group, int(label), params.train_per_cell)
        chosen = sample_cell(rows, n_train + params.val_per_cell, seed, f"{where}: cell {cell_name(group, label)}")
        chosen = chosen.sample(frac=1.0, random_state=seed)  # which rows go to val: seeded
        train.append(chosen.iloc[:n_train])
        val.append(chosen.iloc[n_train:])
    train_df = pd.concat(train).assign(split="train")
    val_df = pd.concat(val).assign(split="val")

    test = annotated_raw.dropna(subset=["text", "target_group", "toxicity_human"])
    test = pd.DataFrame(
        {
            "text": test["text"].astype(str).map(unwrap_bytes_repr).str.strip(),
            "label": (test["toxicity_human"].astype(float) > params.toxicity_threshold).astype(int),
            "group": test["target_group"].astype(str).str.strip().str.lower(),
        }
    )
    test = test[test["text"] != ""]
    test["uid"] = test["text"].map(lambda t: text_uid("tga", t))
    missing = sorted(set(train_df["group"]) - set(test["group"]))
    if missing:
        log.warning("%s: group(s) %s have no annotated test rows", where, missing)
    test = test[test["group"].isin(set(train_df["group"]))]
    in_pool = test["text"].map(normalise_text).isin(set(pool["text"].map(normalise_text)))
    if in_pool.any():
        log.info("%s: dropped %d annotated text(s) that are also generated training texts", where, int(in_pool.sum()))
    train_df, val_df, test = drop_shared_texts([train_df, val_df, test[~in_pool.to_numpy()]], where)
    test_parts = [
        sample_cell(rows, params.test_per_cell, seed, f"{where}: test cell {cell_name(g, y)}", strict=False)
        for (g, y), rows in test.groupby(["group", "label"], sort=True)
    ]
    test_df = pd.concat(test_parts).assign(split="test")
    return pd.concat([train_df, val_df, test_df], ignore_index=True)[["uid", "text", "label", "group", "split"]]


# --------------------------------------------------------------------------- hatexplain
HATEXPLAIN_GROUPS = ["African", "Islam", "Women", "Refugee"]
HATEXPLAIN_LABELS = {0: 1, 1: 0, 2: 1}  # hatespeech -> 1, normal -> 0, offensive -> 1


@dataclass(kw_only=True)
class HatexplainParams:
    SCHEMA: ClassVar[str] = "$defs.d3m_world.hatexplain"  # the schema section it mirrors: its defaults

    groups: list[str] = field(metadata={"help": "Target groups."})
    min_votes: int = field(metadata={"help": "Annotators needed for a majority label or a group."})


def _as_list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def majority_label(labels: Iterable[int], min_votes: int) -> int | None:
    """The annotators' majority label (hatespeech / offensive -> 1, normal -> 0), or
    None when no label has ``min_votes`` votes (the post is then dropped)."""
    votes = Counter(int(x) for x in labels)
    if not votes:
        return None
    label, count = votes.most_common(1)[0]
    if count < min_votes or list(votes.values()).count(count) > 1:
        return None
    return HATEXPLAIN_LABELS[label]


def post_group(targets: Iterable[Iterable[str]], groups: Sequence[str], min_votes: int, key: str) -> str | None:
    """One target group named by at least ``min_votes`` annotators (a seeded choice by
    post when several are), or None."""
    counts = Counter(t for annotator in targets for t in set(_as_list(annotator)) if t in groups)
    named = sorted(g for g, n in counts.items() if n >= min_votes)
    if not named:
        return None
    return random.Random(key).choice(named)


def prepare_hatexplain(
    raw: pd.DataFrame, params: HatexplainParams, imbalance: Imbalance, seed: int, where: str = "hatexplain"
) -> pd.DataFrame:
    require_columns(raw, ("id", "annotators", "post_tokens", "split"), where)
    check_biased_groups(imbalance, params.groups, where)
    rows = []
    dropped = Counter()
    for record in raw.itertuples(index=False):
        annotators = record.annotators
        labels = _as_list(annotators["label"])
        label = majority_label(labels, params.min_votes)
        if label is None:
            dropped["no majority label"] += 1
            continue
        group = post_group(_as_list(annotators["target"]), params.groups, params.min_votes, f"{seed}-{record.id}")
        if group is None:
            dropped["no target group"] += 1
            continue
        rows.append(
            {
                "uid": f"hx-{record.id}",
                "text": " ".join(map(str, _as_list(record.post_tokens))),
                "label": label,
                "group": group,
                "split": SPLIT_ALIASES.get(str(record.split), str(record.split)),
            }
        )
    log.info("%s: kept %d posts, dropped %s", where, len(rows), dict(dropped))
    posts = pd.DataFrame(rows, columns=["uid", "text", "label", "group", "split"])
    if posts.empty:
        raise DataError(f"{where}: no post has a majority label and one of the groups {params.groups}")
    frames = drop_shared_texts([posts[posts["split"] == s] for s in SPLITS], where)
    out = []
    for split, frame in zip(SPLITS, frames, strict=True):
        if frame.empty:
            raise DataError(f"{where}: split {split!r} has no usable posts")
        sizes = frame.groupby(["group", "label"]).size()
        unbiased = [n for (g, _), n in sizes.items() if g not in imbalance.biased_groups] or list(sizes)
        per_cell = int(min(unbiased))
        for (group, label), cell_rows in frame.groupby(["group", "label"], sort=True):
            n = imbalance.train_count(group, int(label), per_cell) if split == "train" else per_cell
            out.append(
                sample_cell(cell_rows, n, seed, f"{where}: {split} cell {cell_name(group, label)}", strict=False)
            )
    return pd.concat(out, ignore_index=True)


# --------------------------------------------------------------------------- dispatch
PREPARERS = ("table", "toxigen", "hatexplain")


def prepare_world(
    kind: str,
    frames: dict[str, pd.DataFrame],
    params: dict[str, Any],
    imbalance: dict[str, Any],
    seed: int,
    where: str,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One world table (see :func:`finalize_world`) from its raw dataset frames."""
    from biasdrift.training import config_from_dict

    if kind == "table":
        frame = prepare_table(frames["dataset"], where)
    elif kind == "toxigen":
        frame = prepare_toxigen(
            frames["dataset"],
            frames["test_dataset"],
            config_from_dict(ToxigenParams, params, f"{where}.toxigen"),
            config_from_dict(Imbalance, imbalance, f"{where}.imbalance"),
            seed,
            where,
        )
    elif kind == "hatexplain":
        frame = prepare_hatexplain(
            frames["dataset"],
            config_from_dict(HatexplainParams, params, f"{where}.hatexplain"),
            config_from_dict(Imbalance, imbalance, f"{where}.imbalance"),
            seed,
            where,
        )
    else:
        raise ValueError(f"{where}.prepare: unknown preparer {kind!r}; known: {', '.join(PREPARERS)}")
    world, manifest = finalize_world(frame, where)
    manifest.update(prepare=kind, seed=seed, imbalance=imbalance)
    if kind == "toxigen":
        manifest["label_note"] = (
            "train/val labels: prompt intent (prompt_label); test labels: toxicity_human > threshold"
        )
    log.info(
        "%s: %s rows per split; train cells %s", where, manifest["rows_per_split"], manifest["cell_counts"]["train"]
    )
    return world, manifest
