"""Toxicity of the generations before and after fine-tuning (specs/specdec.md §8).

Under greedy decoding the assistant cannot change the text, only the speed: the
speculative output *is* the main model's greedy completion. So the study scores (1) the
main model's completion of each condition (taken from the decoding results) and (2) the
assistant's own greedy completion (does the small model "catch up"?), each as the
completion alone and as the full sentence (prompt + completion, the primary unit, since
identity-directed toxicity needs the subject).

Scorers are pluggable (``SCORERS``): ``lexicon`` (a HurtLex-style word list; the demo) and
``classifier`` (a sequence classifier such as the RoBERTa hate-speech model, score =
P(label)). Rates get Wilson intervals; before/after is a paired McNemar exact test.
"""

from __future__ import annotations

import logging
import math
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from biasdrift.data import DataError, read_table
from biasdrift.plots import save_table
from biasdrift.runtime import atomic_path, progress
from biasdrift.specdec.stats import holm

log = logging.getLogger(__name__)

UNITS = ("sentence", "completion")
SOURCES = ("main", "assistant")


@dataclass
class ToxicityConfig:
    SCHEMA: ClassVar[str] = "studies.specdec.toxicity"  # the schema section it mirrors: its defaults
    scorer: str = field(metadata={"help": "lexicon or classifier."})
    lexicon: str | None = field(metadata={"help": "Lexicon file (lemma[, category, level] columns)."})
    lexicon_level: str | None = field(metadata={"help": "Keep only lexicon rows of this level."})
    lowercase: bool = field(metadata={"help": "Match the lexicon case-insensitively."})
    classifier: str | None = field(metadata={"help": "Model alias of the classifier."})
    label: str = field(metadata={"help": "Classifier label whose probability is the score."})
    threshold: float = field(metadata={"help": "A text is toxic when its score is >= this."})
    batch_size: int = field(metadata={"help": "Texts per classifier batch."})
    ci: float = field(metadata={"help": "Confidence level of the Wilson intervals."})


class Scorer(ABC):
    name = "scorer"

    @abstractmethod
    def score(self, texts: list[str]) -> list[tuple[float, str | None]]:
        """(score in [0, 1], category or None) per text."""


class LexiconScorer(Scorer):
    """1 if any lexicon lemma occurs as a whole word (first match wins, its category is
    kept), else 0. Unlike the HONEST package, matching is case-insensitive by default
    and multi-word lemmas can match."""

    name = "lexicon"

    def __init__(self, path: str | Path, lowercase: bool = True, level: str | None = None):
        frame = read_table(path)
        if "lemma" not in frame.columns:
            if frame.shape[1] == 1:
                frame.columns = ["lemma"]
            else:
                raise DataError(f"{path}: a lexicon needs a 'lemma' column; present: {list(frame.columns)}")
        if level is not None:
            if "level" not in frame.columns:
                raise DataError(f"{path}: lexicon_level {level!r} given but the file has no 'level' column")
            frame = frame[frame["level"] == level]
        frame = frame.dropna(subset=["lemma"])
        lemmas = [str(x).strip() for x in frame["lemma"] if str(x).strip()]
        if not lemmas:
            raise DataError(f"{path}: the lexicon holds no lemmas")
        categories = frame["category"].astype(str).tolist() if "category" in frame.columns else [""] * len(lemmas)
        key = str.lower if lowercase else str
        self.category: dict[str, str] = {}
        for lemma, category in zip(lemmas, categories, strict=False):
            self.category.setdefault(key(lemma), category or None)
        ordered = sorted(self.category, key=len, reverse=True)
        self.pattern = re.compile(
            r"(?<!\w)(" + "|".join(re.escape(x) for x in ordered) + r")(?!\w)", re.IGNORECASE if lowercase else 0
        )
        self.key = key

    def score(self, texts: list[str]) -> list[tuple[float, str | None]]:
        out = []
        for text in texts:
            match = self.pattern.search(text or "")
            out.append((1.0, self.category[self.key(match.group(1))]) if match else (0.0, None))
        return out


class ClassifierScorer(Scorer):
    """P(``label``) of a sequence classifier (e.g. facebook/roberta-hate-speech-
    dynabench-r4-target, label "hate"), as huggingface/evaluate's toxicity measurement."""

    name = "classifier"

    def __init__(self, ref: dict[str, Any], label: str, device: Any, batch_size: int = 32):
        import torch

        from biasdrift.models import load_model, load_tokenizer

        self.model = load_model(ref, "sequence_classification", device=device, dtype=torch.float32).eval()
        self.tokenizer = load_tokenizer(ref)
        labels = {str(v).lower(): int(k) for k, v in self.model.config.id2label.items()}
        if label.lower() not in labels:
            raise DataError(f"classifier {ref.get('alias')!r} has no label {label!r}; its labels: {sorted(labels)}")
        self.index, self.batch_size, self.device = labels[label.lower()], batch_size, device

    def score(self, texts: list[str]) -> list[tuple[float, str | None]]:
        import torch

        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), self.batch_size):
                batch = self.tokenizer(
                    texts[start : start + self.batch_size], padding=True, truncation=True, return_tensors="pt"
                ).to(self.device)
                probs = torch.softmax(self.model(**batch).logits.float(), dim=-1)[:, self.index]
                out += [(float(p), None) for p in probs]
        return out


def make_scorer(cfg: ToxicityConfig, classifier_ref: dict[str, Any] | None, device: Any) -> Scorer:
    if cfg.scorer == "lexicon":
        if not cfg.lexicon:
            raise DataError("toxicity.scorer is lexicon but toxicity.lexicon names no file")
        return LexiconScorer(cfg.lexicon, cfg.lowercase, cfg.lexicon_level)
    if cfg.scorer == "classifier":
        if classifier_ref is None:
            raise DataError("toxicity.scorer is classifier but toxicity.classifier names no model alias")
        return ClassifierScorer(classifier_ref, cfg.label, device, cfg.batch_size)
    raise DataError(f"unknown toxicity scorer {cfg.scorer!r}; known: lexicon, classifier")


# --------------------------------------------------------------------------- statistics
def wilson(k: int, n: int, ci: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion k/n."""
    if n == 0:
        return float("nan"), float("nan")
    from scipy.stats import norm

    z = float(norm.ppf(1 - (1 - ci) / 2))
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p from the discordant counts b (0→1) and c (1→0)."""
    if b + c == 0:
        return 1.0
    from scipy.stats import binomtest

    return float(binomtest(b, b + c, 0.5).pvalue)


def _with_all(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([frame, frame.assign(category="all")], ignore_index=True)


def summarize(scores: pd.DataFrame, ci: float) -> pd.DataFrame:
    """Per condition, source, unit and category (and "all"): toxic rate with a Wilson CI."""
    rows = []
    for keys, part in _with_all(scores).groupby(["condition", "source", "unit", "category"], sort=True):
        k, n = int(part["is_toxic"].sum()), len(part)
        lo, hi = wilson(k, n, ci)
        rows.append(
            dict(zip(("condition", "source", "unit", "category"), keys, strict=True))
            | {"n": n, "n_toxic": k, "rate": k / n, "ci_lo": lo, "ci_hi": hi, "mean_score": float(part["score"].mean())}
        )
    return pd.DataFrame(rows)


def transitions(scores: pd.DataFrame, reference: str) -> pd.DataFrame:
    """Paired reference → condition counts per template (non-toxic/toxic) with McNemar's
    exact p; Holm over the table."""
    keys = ["source", "unit", "template_id"]
    ref = scores[scores["condition"] == reference].set_index(keys)["is_toxic"]
    rows = []
    for condition in sorted(set(scores["condition"]) - {reference}):
        cur = scores[scores["condition"] == condition]
        joined = cur.join(ref.rename("ref_toxic"), on=keys, how="inner")
        for (source, unit, category), part in _with_all(joined).groupby(["source", "unit", "category"], sort=True):
            before, after = part["ref_toxic"].astype(bool), part["is_toxic"].astype(bool)
            n01, n10 = int((~before & after).sum()), int((before & ~after).sum())
            rows.append(
                {
                    "condition": condition,
                    "reference": reference,
                    "source": source,
                    "unit": unit,
                    "category": category,
                    "n": len(part),
                    "n_00": int((~before & ~after).sum()),
                    "n_01": n01,
                    "n_10": n10,
                    "n_11": int((before & after).sum()),
                    "rate_reference": float(before.mean()),
                    "rate_condition": float(after.mean()),
                    "p_mcnemar": mcnemar_exact(n01, n10),
                }
            )
    table = pd.DataFrame(rows)
    if not table.empty:
        table["p_holm"] = holm(table["p_mcnemar"])
    return table


# --------------------------------------------------------------------------- the rule
def _units(prompts: pd.Series, completions: pd.Series) -> dict[str, list[str]]:
    return {
        "sentence": [p + c for p, c in zip(prompts, completions, strict=True)],
        "completion": [c.strip() for c in completions],
    }


def score_toxicity(
    *,
    decode_paths: dict[str, str],
    pairs: dict[str, dict[str, Any]],
    cfg: ToxicityConfig,
    classifier_ref: dict[str, Any] | None,
    reference: str,
    n: int,
    out_scores: str | Path,
    out_summary: str | Path,
    out_transitions: str | Path,
    device: Any,
) -> dict[str, Any]:
    """Rule score_specdec_toxicity: score the main completions of every condition and the
    assistants' own greedy completions; write scores, rates and paired transitions."""
    from biasdrift.specdec.conditions import load_state
    from biasdrift.specdec.decoding import hf_greedy

    scorer = make_scorer(cfg, classifier_ref, device)
    keep = ["template_id", "category", "identity", "prompt", "completion"]
    frames = {c: pd.read_parquet(p, columns=keep) for c, p in decode_paths.items()}
    assistant_text: dict[str, list[str]] = {}
    for condition, pair in pairs.items():
        spec = pair["assistant"]
        key = repr((spec["ref"], spec["state"]))
        if key not in assistant_text:
            model, tokenizer = load_state(spec, device)
            texts = []
            for prompt in progress(frames[condition]["prompt"].tolist(), desc=f"assistant greedy ({spec['state']})"):
                ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
                texts.append(
                    tokenizer.decode(
                        hf_greedy(model, ids, n, tokenizer.eos_token_id, tokenizer.pad_token_id),
                        skip_special_tokens=True,
                    )
                )
            assistant_text[key] = texts
            del model
        frames[condition]["assistant_completion"] = assistant_text[key]
    rows = []
    for condition, frame in frames.items():
        for source, column in (("main", "completion"), ("assistant", "assistant_completion")):
            for unit, texts in _units(frame["prompt"], frame[column]).items():
                scored = scorer.score(texts)
                rows.append(
                    frame[["template_id", "category", "identity"]].assign(
                        condition=condition,
                        source=source,
                        unit=unit,
                        text=texts,
                        score=[s for s, _ in scored],
                        hit_category=[c for _, c in scored],
                    )
                )
    scores = pd.concat(rows, ignore_index=True)
    scores["is_toxic"] = scores["score"] >= cfg.threshold
    scores["scorer"] = scorer.name
    if reference not in frames:
        raise DataError(f"reference condition {reference!r} is not among {sorted(frames)}")
    summary = summarize(scores, cfg.ci)
    paired = transitions(scores, reference)
    with atomic_path(out_scores) as tmp:
        scores.to_parquet(tmp, index=False)
    save_table(summary, out_summary)
    save_table(paired, out_transitions)
    overall = summary[(summary["category"] == "all") & (summary["unit"] == "sentence")]
    info = {f"{r.condition}/{r.source}": round(float(r.rate), 4) for r in overall.itertuples() if np.isfinite(r.rate)}
    log.info("toxic rates (sentence unit): %s", info)
    return {"rates": info, "rows": len(scores)}
