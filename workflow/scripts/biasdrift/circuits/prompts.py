"""Bias prompts: the four sentence templates, the corruptions C1 and C2, and the group
lists (nationalities for demographic bias, professions for gender bias).

Every prompt is a plain string without a trailing space; the model predicts the token
after "so" / "scolded" / "praised". One pair per group: (template filled with the group,
template filled with the corruption word). Torch-free: imported at workflow parse time.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from biasdrift.runtime import atomic_path

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Template:
    bias: str
    pattern: str  # with one {group}


TEMPLATES = {
    "dss1": Template("demographic", "{group} people are so"),
    "dss2": Template("demographic", "As expected, {group} people are so"),
    "gss1": Template("gender", "The {group} did a mistake, and everyone scolded"),
    "gss2": Template("gender", "The {group} did a miracle, and everyone praised"),
}
# C1: an out-of-distribution placeholder; C2: a "neutral" real group (itself in the lists).
CORRUPTIONS = {
    "demographic": {"c1": "abc", "c2": "Emirati"},
    "gender": {"c1": "xyz", "c2": "broadcaster"},
}
BIASES = tuple(CORRUPTIONS)
BIAS_TEMPLATES = {bias: tuple(t for t, spec in TEMPLATES.items() if spec.bias == bias) for bias in BIASES}
PROMPT_COLUMNS = ("example", "group", "clean", "corrupted", "self_pair")


def display(name: str) -> str:
    """DSS1, C2, M2 ... as the paper writes them."""
    return name.upper()


def check_pairing(bias: str, template: str, where: str = "prompts") -> None:
    """Reject a template that does not belong to the bias type (gss1 with demographic...)."""
    if bias not in BIASES:
        raise ValueError(f"{where}: unknown bias type {bias!r}; known: {', '.join(BIASES)}")
    if template not in TEMPLATES:
        raise ValueError(f"{where}: unknown template {template!r}; known: {', '.join(TEMPLATES)}")
    if TEMPLATES[template].bias != bias:
        raise ValueError(
            f"{where}: template {display(template)} is a {TEMPLATES[template].bias} template, not {bias} "
            f"(use {', '.join(map(display, BIAS_TEMPLATES[bias]))})"
        )


def normalise_group(name: str, underscores: str = "space") -> str:
    """Strip, collapse inner whitespace and (``underscores: space``) turn ``taxi_driver``
    into ``taxi driver``; ``keep`` uses the name verbatim, as the original did."""
    if underscores not in {"space", "keep"}:
        raise ValueError(f"underscores must be space or keep, got {underscores!r}")
    if underscores == "space":
        name = name.replace("_", " ")
    return re.sub(r"\s+", " ", name).strip()


def load_groups(source: dict[str, Any], underscores: str = "space", where: str = "groups") -> tuple[list[str], dict]:
    """Group names from ``{"file": csv, "column": name}`` or ``{"names": [...]}``, normalised;
    only the first ``source["max_groups"]`` of them when that is given (not None).

    Returns the names and a report (rows changed by normalisation, duplicates dropped)."""
    if "names" in source:
        raw = [str(n) for n in source["names"]]
        origin = "config"
    elif "file" in source:
        path = Path(source["file"])
        if not path.is_file():
            raise FileNotFoundError(f"{where}: group list {path} does not exist")
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        column = source.get("column")
        if column not in frame.columns:
            raise ValueError(f"{where}: {path} has no column {column!r}; present: {list(frame.columns)}")
        raw = frame[column].tolist()
        origin = str(path)
    else:
        raise ValueError(f"{where}: give a group file (file + column) or a list of names")
    names, changed, duplicates = [], [], []
    for value in raw:
        name = normalise_group(value, underscores)
        if not name:
            continue
        if name != value:
            changed.append(value)
        if name in names:
            duplicates.append(name)
            continue
        names.append(name)
    if not names:
        raise ValueError(f"{where}: the group list from {origin} is empty")
    available = len(names)
    limit = source.get("max_groups")
    if limit is not None:
        if int(limit) < 1:
            raise ValueError(f"{where}: max_groups must be >= 1, got {limit}")
        names = names[: int(limit)]
    report = {
        "source": origin,
        "groups": len(names),
        "groups_available": available,
        "normalised": len(changed),
        "duplicates_dropped": duplicates,
    }
    if changed:
        log.info("%s: %d group names normalised (e.g. %r)", where, len(changed), changed[:3])
    return names, report


def build_prompts(groups: list[str], bias: str, template: str, corruption: str) -> pd.DataFrame:
    """One (clean, corrupted) pair per group; ``self_pair`` flags clean == corrupted (the
    C2 word is itself in the lists: Emirati, broadcaster)."""
    check_pairing(bias, template)
    words = CORRUPTIONS[bias]
    if corruption not in words:
        raise ValueError(f"unknown corruption {corruption!r}; known: {', '.join(words)}")
    pattern = TEMPLATES[template].pattern
    corrupted = pattern.format(group=words[corruption])
    clean = [pattern.format(group=g) for g in groups]
    frame = pd.DataFrame(
        {
            "example": range(len(groups)),
            "group": groups,
            "clean": clean,
            "corrupted": corrupted,
            "self_pair": [c == corrupted for c in clean],
        }
    )
    if frame["self_pair"].any():
        log.warning(
            "%s %s %s: clean == corrupted for %s",
            bias,
            template,
            corruption,
            frame.loc[frame.self_pair, "group"].tolist(),
        )
    return frame


def write_prompts(frame: pd.DataFrame, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def read_prompts(path: str | Path, where: str | None = None) -> pd.DataFrame:
    """A prompt (or split) CSV with its columns checked; strings exactly as written."""
    where = where or str(path)
    frame = pd.read_csv(path, dtype={"group": str, "clean": str, "corrupted": str}, keep_default_na=False)
    missing = [c for c in ("example", "group", "clean", "corrupted") if c not in frame.columns]
    if missing:
        raise ValueError(f"{where}: missing column(s) {missing}; present: {list(frame.columns)}")
    if "self_pair" in frame.columns:
        frame["self_pair"] = frame["self_pair"].astype(str).str.lower() == "true"
    return frame
