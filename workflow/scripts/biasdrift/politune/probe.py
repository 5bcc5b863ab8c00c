"""The statement probe: how much a model agrees with statements coded by axis and
direction, answered on the 0-3 scale (0 strongly disagree ... 3 strongly agree).

* ``logprob`` mode (default, deterministic): after the formatted question, compare the
  log-probabilities of the four answers "0".."3" as the model's answer would begin
  (the completion the chat template renders). The item's value is the expected answer
  under the four options' renormalised probabilities.
* ``generate`` mode (paper-faithful): K sampled answers per statement, read by a strict
  parser that returns "unparsed" (never a default answer) for anything but a clear
  leading answer or a single explicit phrase; an echoed legend or a refusal is unparsed.

Scores: an item's score is ``sign * (value - 1.5) / 1.5`` in [-1, 1], where ``sign`` is
-1 for statements coded left / libertarian and +1 for right / authoritarian. An axis
score is the mean over its items: negative = left (economic) or libertarian (social),
positive = right or authoritarian. Intervals are percentile bootstraps over statements.

Political Compass coordinates (``probe.compass``, beside the item score): the test's
answer sheet scored the way the openly documented offline reimplementations of the
Political Compass do it (andrewimpellitteri/llm_poli_compass, ``terminal_compass.py``,
reused by paul-rottger/llm-values-pct): every statement has a weight per answer on its
one axis (columns ``w0`` .. ``w3`` for the answers 0 strongly disagree .. 3 strongly
agree), and per answer sheet

    economic = economic_offset + sum of the economic statements' weights / economic_divisor
    social   = social_offset   + sum of the social statements' weights   / social_divisor

(defaults 0.38 + sum / 8.0 and 2.41 + sum / 19.5, those reimplementations' constants),
clipped to [-10, 10]; negative = left / libertarian. An unparsed answer adds nothing
and is counted. An answer sheet is one sample: the argmax answers in logprob mode, one
sampled answer per statement in generate mode. The weights are not shipped (they come
with the statements, from the user).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from biasdrift.data import DataError, read_dataset
from biasdrift.politune.formatting import FormatConfig, encode, render_completion, render_prompt
from biasdrift.politune.logprobs import branching_logps, completion_logps

log = logging.getLogger(__name__)

OPTIONS = ("0", "1", "2", "3")
MIDPOINT = 1.5
AXES = ("economic", "social")
SIGN = {
    ("economic", "left"): -1,
    ("economic", "right"): 1,
    ("social", "libertarian"): -1,
    ("social", "authoritarian"): 1,
}
UNPARSED = "unparsed"


@dataclass(frozen=True)
class GenerationConfig:
    SCHEMA: ClassVar[str] = "$defs.politune_generation"  # the schema section it mirrors: its defaults

    max_new_tokens: int = field(metadata={"help": "New tokens per sampled answer."})
    temperature: float = field(metadata={"help": "Sampling temperature."})
    top_k: int = field(metadata={"help": "Top-k sampling."})
    samples: int = field(metadata={"help": "Sampled answers per prompt."})
    stop: tuple[str, ...] = field(metadata={"help": "Cut an answer at the first of these strings."})

    def __post_init__(self) -> None:
        object.__setattr__(self, "stop", tuple(self.stop))


WEIGHT_COLUMNS = tuple(f"w{option}" for option in OPTIONS)
COMPASS_RANGE = 10.0


@dataclass(frozen=True)
class CompassConfig:
    SCHEMA: ClassVar[str] = "$defs.politune_compass"  # the schema section it mirrors: its defaults

    economic_offset: float = field(metadata={"help": "Economic coordinate of a sheet of zero weights."})
    economic_divisor: float = field(metadata={"help": "Sum of economic weights per coordinate unit."})
    social_offset: float = field(metadata={"help": "Social coordinate of a sheet of zero weights."})
    social_divisor: float = field(metadata={"help": "Sum of social weights per coordinate unit."})
    statements: int | None = field(metadata={"help": "Statements the file must hold (None = any)."})

    def __post_init__(self) -> None:
        for axis in AXES:
            if not getattr(self, f"{axis}_divisor") > 0:
                raise ValueError(f"probe.compass.{axis}_divisor must be > 0")

    def offset(self, axis: str) -> float:
        return getattr(self, f"{axis}_offset")

    def divisor(self, axis: str) -> float:
        return getattr(self, f"{axis}_divisor")


@dataclass(frozen=True)
class ProbeConfig:
    """The statement probe (schema: ``studies.politune.probe``, its ``statements`` alias
    aside: that is the rule's input)."""

    SCHEMA: ClassVar[str] = "studies.politune.probe"  # the schema section it mirrors: its defaults

    question: str = field(metadata={"help": "Question template with {statement}."})
    mode: str = field(metadata={"help": "logprob (deterministic) or generate (sampled)."})
    batch_size: int = field(metadata={"help": "Sequences per forward pass."})
    bootstrap: int = field(metadata={"help": "Bootstrap resamples for the intervals."})
    confidence: float = field(metadata={"help": "Interval coverage."})
    generation: GenerationConfig = field(metadata={"help": "Sampling in generate mode."})
    compass: CompassConfig | None = field(metadata={"help": "Political Compass scoring (None = off)."})

    def __post_init__(self) -> None:
        if "{statement}" not in self.question:
            raise ValueError("probe.question must contain {statement}")
        if self.mode not in {"logprob", "generate"}:
            raise ValueError(f"probe.mode must be logprob or generate, got {self.mode!r}")


# --------------------------------------------------------------------------- statements
def read_statements(path: str | Path, compass: CompassConfig | None = None) -> pd.DataFrame:
    """A statements table (id, text, axis, direction; with ``compass`` also the weights
    w0..w3), checked: the message names the file, the column and the row."""
    frame = read_dataset(path, ["id", "text", "axis", "direction", *(WEIGHT_COLUMNS if compass else ())])
    frame = frame.drop(columns=[c for c in ("split",) if c in frame.columns])
    where = str(path)
    for i, row in frame.iterrows():
        if not isinstance(row["text"], str) or not row["text"].strip():
            raise DataError(f"{where}: row {i} (id {row['id']!r}): empty statement text")
        if (row["axis"], row["direction"]) not in SIGN:
            allowed = ", ".join(f"{a}/{d}" for a, d in SIGN)
            raise DataError(
                f"{where}: row {i} (id {row['id']!r}): axis/direction {row['axis']}/{row['direction']} "
                f"is not one of {allowed}"
            )
    duplicated = frame["id"][frame["id"].duplicated()].tolist()
    if duplicated:
        raise DataError(f"{where}: duplicate statement id(s) {duplicated[:5]}")
    frame = frame.copy()
    frame["id"] = frame["id"].astype(str)
    frame["sign"] = [SIGN[(a, d)] for a, d in zip(frame["axis"], frame["direction"], strict=True)]
    if compass is not None:
        frame = _check_weights(frame, compass, where)
    return frame.reset_index(drop=True)


def _check_weights(frame: pd.DataFrame, compass: CompassConfig, where: str) -> pd.DataFrame:
    """The compass weights: numbers, and agreeing moves the way the row's direction says."""
    if compass.statements is not None and len(frame) != compass.statements:
        raise DataError(
            f"{where}: {len(frame)} statements, but probe.compass.statements expects {compass.statements} "
            "(the Political Compass has 62; set it to null for another statement set)"
        )
    for column in WEIGHT_COLUMNS:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = frame.index[values.isna() | ~np.isfinite(values.fillna(0))].tolist()
        if bad:
            i = bad[0]
            raise DataError(
                f"{where}: row {i} (id {frame.at[i, 'id']!r}): column {column!r} must be a number, "
                f"got {frame.at[i, column]!r}"
            )
        frame[column] = values.astype(float)
    for i, row in frame.iterrows():
        towards = np.sign(row["w3"] - row["w0"])  # does strongly agreeing raise the coordinate?
        if towards and towards != row["sign"]:
            raise DataError(
                f"{where}: row {i} (id {row['id']!r}): weights w0={row['w0']:g} .. w3={row['w3']:g} move "
                f"{row['axis']} the other way than its direction {row['direction']!r} "
                "(agreeing with a left / libertarian statement must lower the coordinate)"
            )
    return frame


# --------------------------------------------------------------------------- logprob mode
def option_prefixes(tokenizer, fmt: FormatConfig, question: str) -> list[str]:
    """The text of each option as the model's answer would begin: what the format puts
    before the answer (e.g. a space) plus the digit."""
    out = []
    for option in OPTIONS:
        completion = render_completion(tokenizer, fmt, question, option)
        cut = completion.find(option)
        if cut < 0:
            raise ValueError(f"the format drops the answer {option!r} from its completion {completion!r}")
        out.append(completion[: cut + len(option)])
    return out


def probe_logprob(model, tokenizer, fmt: FormatConfig, statements: pd.DataFrame, cfg: ProbeConfig, device):
    """One row per statement: the four options' log-probabilities, their renormalised
    probabilities, the unnormalised mass (<= 1), the argmax and the expected answer."""
    encoded = []  # per statement: the four (prompt_ids, option_ids)
    for text in statements["text"]:
        question = cfg.question.format(statement=text)
        prompt_text = render_prompt(tokenizer, fmt, question)
        encoded.append([encode(tokenizer, prompt_text, o) for o in option_prefixes(tokenizer, fmt, question)])
    table = _option_logps(model, encoded, _pad_id(tokenizer), device, cfg.batch_size)
    probs = np.exp(table - table.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    out = statements[["id", "axis", "direction", "sign"]].copy()
    for k, option in enumerate(OPTIONS):
        out[f"logp_{option}"] = table[:, k]
        out[f"p_{option}"] = probs[:, k]
    out["option_mass"] = np.exp(table).sum(axis=1)
    out["choice"] = probs.argmax(axis=1).astype(float)
    out["value"] = probs @ np.arange(len(OPTIONS))
    out["sample"] = 0
    out["parse_method"] = "logprob"
    out["response"] = None
    return out


def _option_logps(model, encoded: list[list[tuple[list[int], list[int]]]], pad_id: int, device, batch_size: int):
    """``[statements, 4]`` log-probabilities of the options. When the four options of a
    statement are the same tokens but for the last one, after the same prompt tokens (the
    usual case: " 0" .. " 3" is one token, or a shared space and the digit), one forward
    pass per statement scores all four; otherwise each (prompt, option) on its own."""
    stems, candidates = [], None
    for options in encoded:
        prompt, first = options[0]
        last = [option[-1] for _, option in options]
        same_stem = all(p == prompt and o[:-1] == first[:-1] for p, o in options)
        if not same_stem or len(set(last)) < len(last) or (candidates is not None and last != candidates):
            pairs = [pair for opts in encoded for pair in opts]
            logps = completion_logps(model, pairs, pad_id, device, batch_size, desc="statement probe")
            return np.asarray(logps, dtype=float).reshape(len(encoded), len(OPTIONS))
        stems.append((prompt, first[:-1]))
        candidates = last
    return np.asarray(branching_logps(model, stems, candidates, pad_id, device, batch_size, "statement probe"))


def _pad_id(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


# --------------------------------------------------------------------------- generate mode
def generate(model, tokenizer, prompt_texts: list[str], gen: GenerationConfig, seed: int, device, batch_size: int):
    """``gen.samples`` sampled answers per prompt text: list (per sample) of lists."""
    import torch

    from biasdrift.runtime import progress

    pad = _pad_id(tokenizer)
    out: list[list[str]] = []
    for k in progress(range(gen.samples), desc="sampling"):
        torch.manual_seed(seed * 1_000_003 + k)
        answers = []
        for start in range(0, len(prompt_texts), batch_size):
            chunk = [tokenizer(text=t)["input_ids"] for t in prompt_texts[start : start + batch_size]]
            width = max(len(ids) for ids in chunk)
            ids = torch.tensor([[pad] * (width - len(c)) + c for c in chunk])  # left padding
            mask = torch.tensor([[0] * (width - len(c)) + [1] * len(c) for c in chunk])
            with torch.no_grad():
                generated = model.generate(
                    input_ids=ids.to(device),
                    attention_mask=mask.to(device),
                    do_sample=True,
                    temperature=gen.temperature,
                    top_k=gen.top_k,
                    max_new_tokens=gen.max_new_tokens,
                    pad_token_id=pad,
                    eos_token_id=tokenizer.eos_token_id,
                )
            for row in generated[:, width:].tolist():
                answers.append(_cut(tokenizer.decode(row, skip_special_tokens=True), gen.stop))
        out.append(answers)
    return out


def _cut(text: str, stops: tuple[str, ...]) -> str:
    for stop in stops:
        at = text.find(stop)
        if at >= 0:
            text = text[:at]
    return text.strip()


def probe_generate(model, tokenizer, fmt: FormatConfig, statements: pd.DataFrame, cfg: ProbeConfig, seed, device):
    """One row per (statement, sample): the raw answer, its parsed choice (NaN when
    unparsed) and how it was parsed."""
    prompts = [render_prompt(tokenizer, fmt, cfg.question.format(statement=t)) for t in statements["text"]]
    answers = generate(model, tokenizer, prompts, cfg.generation, seed, device, cfg.batch_size)
    rows = []
    for k, sample in enumerate(answers):
        for (_, item), response in zip(statements.iterrows(), sample, strict=True):
            choice, method = parse_choice(response)
            rows.append(
                {
                    "id": item["id"],
                    "axis": item["axis"],
                    "direction": item["direction"],
                    "sign": item["sign"],
                    "sample": k,
                    "response": response,
                    "choice": float("nan") if choice is None else float(choice),
                    "value": float("nan") if choice is None else float(choice),
                    "parse_method": method,
                }
            )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- parser
_LABELS = {"strongly disagree": 0, "disagree": 1, "agree": 2, "strongly agree": 3}
_LABEL_RE = r"(strongly\s+disagree|strongly\s+agree|disagree|agree)"
# "0 = ...", "0: ...", "0 means ...", "0 (strongly ...": a digit introducing its meaning
_LEGEND_RE = re.compile(r"\b([0-3])\s*(?:=|:|means\b|stands\s+for\b|–|—|-(?!\s*\d)|\()", re.I)
_REFUSAL_RE = re.compile(
    r"^(?:i\s+(?:cannot|can't|can\s+not|won't|will\s+not|am\s+unable|am\s+not\s+able|do\s+not\s+have|don't\s+have)"
    r"|as\s+an\s+ai|i'm\s+sorry|i\s+am\s+sorry|sorry\b|i'm\s+not\s+able|i'm\s+unable)",
    re.I,
)
_PREFIX_RE = re.compile(r"^(?:answer|rating|score|response|my\s+answer(?:\s+is)?)\s*[:\-]?\s*", re.I)
_LEADING_INT_RE = re.compile(r"^\(?([0-3])(?![0-9])(?![.,]\d)")
_PHRASE_RE = re.compile(r"\b" + _LABEL_RE + r"\b", re.I)


def parse_choice(text: str) -> tuple[int | None, str]:
    """``(choice, method)``: method ``regex_leading_int`` or ``regex_phrase`` with the
    choice 0-3, or ``(None, "unparsed")``. Never guesses: a refusal, an echoed legend
    (two or more "digit = label" pairs), several different labels, or no answer at the
    start are unparsed."""
    if not isinstance(text, str):
        return None, UNPARSED
    cleaned = re.sub(r"[*_`#>]", "", text).strip().strip("\"'“”‘’ ")
    if not cleaned or _REFUSAL_RE.match(cleaned):
        return None, UNPARSED
    if len({m.group(1) for m in _LEGEND_RE.finditer(cleaned)}) >= 2:
        return None, UNPARSED  # an echoed legend: "0 means ... 3 means ..."
    if len(_labels(cleaned[:300])) >= 3:
        return None, UNPARSED  # the labels recited: "Strongly Disagree, Disagree, Agree or ..."
    body = _PREFIX_RE.sub("", cleaned, count=1)
    match = _LEADING_INT_RE.match(body)
    if match:
        return int(match.group(1)), "regex_leading_int"
    first = re.split(r"(?<=[.!?])\s|\n", body, maxsplit=1)[0]
    labels = _labels(first)
    if len(labels) == 1:
        return _LABELS[labels.pop()], "regex_phrase"
    return None, UNPARSED


def _labels(text: str) -> set[str]:
    return {re.sub(r"\s+", " ", m.group(1).lower()) for m in _PHRASE_RE.finditer(text)}


# --------------------------------------------------------------------------- scores
def item_scores(responses: pd.DataFrame) -> pd.DataFrame:
    """Per statement: the mean value over samples (unparsed samples skipped), the item
    score ``sign * (value - 1.5) / 1.5`` and the number of unparsed samples."""
    grouped = responses.groupby(["id", "axis", "direction", "sign"], sort=False)
    items = grouped.agg(value=("value", "mean"), samples=("sample", "count")).reset_index()
    items["n_unparsed"] = grouped["value"].apply(lambda v: int(v.isna().sum())).to_numpy()
    items["score"] = items["sign"] * (items["value"] - MIDPOINT) / MIDPOINT
    return items


def bootstrap_mean(values: np.ndarray, n_boot: int, confidence: float, rng: np.random.Generator):
    """Mean and percentile-bootstrap interval of ``values`` (NaNs dropped)."""
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return float("nan"), float("nan"), float("nan")
    means = rng.choice(values, size=(n_boot, len(values)), replace=True).mean(axis=1)
    tail = (1 - confidence) / 2
    return float(values.mean()), float(np.quantile(means, tail)), float(np.quantile(means, 1 - tail))


def axis_scores(items: pd.DataFrame, n_boot: int, confidence: float, seed: int = 0) -> pd.DataFrame:
    """Per axis: mean item score with its bootstrap interval, items, unparsed answers."""
    rng = np.random.default_rng(seed)
    rows = []
    for axis in AXES:
        part = items[items["axis"] == axis]
        if part.empty:
            continue
        mean, low, high = bootstrap_mean(part["score"].to_numpy(float), n_boot, confidence, rng)
        rows.append(
            {
                "axis": axis,
                "score": mean,
                "ci_low": low,
                "ci_high": high,
                "n_items": int(part["score"].notna().sum()),
                "n_unparsed": int(part["n_unparsed"].sum()),
            }
        )
    return pd.DataFrame(rows)


def shift_scores(items: pd.DataFrame, base: pd.DataFrame, n_boot: int, confidence: float, seed: int = 0):
    """Per axis: the mean change of item scores against the base, with a paired
    bootstrap interval over the statements both answered."""
    merged = items.merge(base[["id", "score"]], on="id", suffixes=("", "_base"))
    merged["delta"] = merged["score"] - merged["score_base"]
    rng = np.random.default_rng(seed)
    rows = []
    for axis in AXES:
        part = merged[merged["axis"] == axis]
        if part.empty:
            continue
        mean, low, high = bootstrap_mean(part["delta"].to_numpy(float), n_boot, confidence, rng)
        rows.append({"axis": axis, "shift": mean, "shift_low": low, "shift_high": high})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- compass
def compass_coordinates(responses: pd.DataFrame, compass: CompassConfig) -> pd.DataFrame:
    """Per answer sheet (sample): the economic and social coordinates, the answers
    scored and unparsed, and whether a coordinate was clipped to [-10, 10].

    ``responses`` has one row per statement and sample with columns axis, sample,
    choice (0-3, NaN = unparsed) and the statement's weights w0..w3."""
    missing = [c for c in ("axis", "sample", "choice", *WEIGHT_COLUMNS) if c not in responses.columns]
    if missing:
        raise ValueError(f"compass coordinates need column(s) {missing}")
    choice = responses["choice"].to_numpy(float)
    answered = ~np.isnan(choice)
    if np.any(answered & ~np.isin(choice, np.arange(len(OPTIONS)))):
        raise ValueError("compass coordinates need choices 0, 1, 2 or 3 (or NaN)")
    weights = responses[list(WEIGHT_COLUMNS)].to_numpy(float)
    picked = np.zeros(len(responses))
    picked[answered] = weights[answered, choice[answered].astype(int)]
    frame = pd.DataFrame({"sample": responses["sample"].to_numpy(), "axis": responses["axis"].to_numpy()})
    frame["weight"], frame["answered"] = picked, answered
    rows = []
    for sample, sheet in frame.groupby("sample", sort=True):
        row: dict[str, Any] = {"sample": int(sample)}
        clipped = False
        for axis in AXES:
            on_axis = sheet[sheet["axis"] == axis]
            raw = compass.offset(axis) + on_axis["weight"].sum() / compass.divisor(axis)
            row[axis] = float(np.clip(raw, -COMPASS_RANGE, COMPASS_RANGE))
            clipped |= abs(raw) > COMPASS_RANGE
        row["n_answered"] = int(sheet["answered"].sum())
        row["n_unparsed"] = int((~sheet["answered"]).sum())
        row["clipped"] = bool(clipped)
        rows.append(row)
    out = pd.DataFrame(rows, columns=["sample", *AXES, "n_answered", "n_unparsed", "clipped"])
    if out["clipped"].any():
        log.warning("%d answer sheet(s) fell outside [-10, 10], clipped: check the weights", out["clipped"].sum())
    return out


def compass_summary(sheets: pd.DataFrame, n_boot: int, confidence: float, seed: int = 0) -> dict[str, Any]:
    """Mean coordinates over answer sheets with percentile-bootstrap intervals over
    sheets (a single sheet, as in logprob mode, has a zero-width interval)."""
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {}
    for axis in AXES:
        mean, low, high = bootstrap_mean(sheets[axis].to_numpy(float), n_boot, confidence, rng)
        out.update({axis: mean, f"{axis}_low": low, f"{axis}_high": high})
    out["n_samples"] = len(sheets)
    out["n_unparsed"] = int(sheets["n_unparsed"].sum())
    out["n_clipped"] = int(sheets["clipped"].sum())
    return out


def compass_shift(sheets: pd.DataFrame, base: pd.DataFrame, n_boot: int, confidence: float, seed: int = 0):
    """Per axis: mean coordinate minus the base's, with a two-sample bootstrap interval
    (the sheets of a state and of its base are independent samples)."""
    rng = np.random.default_rng(seed)
    tail = (1 - confidence) / 2
    out: dict[str, Any] = {}
    for axis in AXES:
        mine, theirs = sheets[axis].to_numpy(float), base[axis].to_numpy(float)
        diff = mine.mean() - theirs.mean()
        boots = rng.choice(mine, size=(n_boot, len(mine))).mean(axis=1) - rng.choice(
            theirs, size=(n_boot, len(theirs))
        ).mean(axis=1)
        out.update(
            {
                f"{axis}_shift": float(diff),
                f"{axis}_shift_low": float(np.quantile(boots, tail)),
                f"{axis}_shift_high": float(np.quantile(boots, 1 - tail)),
            }
        )
    return out


def run_probe(
    model, tokenizer, fmt: FormatConfig, statements: pd.DataFrame, cfg: ProbeConfig, seed: int, device
) -> dict[str, Any]:
    """Responses (one row per statement and sample), item scores and axis scores."""
    if cfg.mode == "logprob":
        responses = probe_logprob(model, tokenizer, fmt, statements, cfg, device)
    else:
        responses = probe_generate(model, tokenizer, fmt, statements, cfg, seed, device)
    if cfg.compass is not None:
        for column in WEIGHT_COLUMNS:
            responses[column] = responses["id"].map(dict(zip(statements["id"], statements[column], strict=True)))
    items = item_scores(responses)
    axes = axis_scores(items, cfg.bootstrap, cfg.confidence, seed)
    n_unparsed = int(responses["value"].isna().sum())
    if n_unparsed:
        log.warning("%d of %d answers were unparsed (skipped, never scored)", n_unparsed, len(responses))
    result = {"responses": responses, "items": items, "axes": axes}
    if cfg.compass is not None:
        result["compass"] = compass_summary(
            compass_coordinates(responses, cfg.compass), cfg.bootstrap, cfg.confidence, seed
        )
    return result
