"""Labels of next tokens: a pluggable sentiment backend (``lexicon`` or ``hf``, the
Hugging Face sentiment pipeline) behind one interface with a cache keyed by
(prompt, token), and the gender lexicon.

A backend returns a *signed score* per (prompt, completion): positive means the label
POSITIVE. A token counts as positive iff its score is > 0 (the HF classifier never
returns exactly 0, so for it this is the original's ``>= 0`` rule; the lexicon's unknown
words score 0 and count as not positive).

* ``hf`` scores ``prompt + " " + token`` (the original; the token's own leading space is
  stripped, so GPT-2 tokens no longer give a double space) or, with
  ``text: completion``, the token alone. As in the original the classifier sees the whole
  sentence, group name included (a known confound, kept visible).
* ``lexicon`` looks the stripped, lower-cased token up in a word list (it is not a
  sentence classifier, so it scores the completion only).

Gender terms are matched on the stripped, lower-cased token text, so SentencePiece
tokens (no leading space) and word-level tokenizers match as well as GPT-2's.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

MALE, FEMALE, NEUTRAL = 1, -1, 0
_STRIP = " \t\n\r.,;:!?\"'()[]{}«»“”‘’▁Ġ"


def normalise_token(text: str) -> str:
    """Stripped, lower-cased token text (SentencePiece's ▁ and byte-BPE's Ġ removed)."""
    return text.strip(_STRIP).lower()


@dataclass(frozen=True)
class SentimentConfig:
    """``studies.circuits.sentiment`` (defaults: config/schema/circuits.yaml)."""

    SCHEMA: ClassVar[str] = "studies.circuits.sentiment"  # the schema section it mirrors: its defaults

    backend: str = field(metadata={"help": "lexicon or hf (a sentiment pipeline model alias)."})
    lexicon: str = field(metadata={"help": "word,polarity CSV."})
    model: str | None = field(metadata={"help": "Model alias of the hf backend."})
    text: str = field(metadata={"help": "sentence (prompt + token) or completion (token)."})
    positive_label: str = field(metadata={"help": "Label of the positive class (hf)."})
    batch_size: int = field(metadata={"help": "Classifier batch size (hf)."})


class SentimentBackend(ABC):
    """Signed sentiment scores of (prompt, completion) pairs."""

    @abstractmethod
    def score(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray: ...

    def describe(self) -> dict[str, Any]:
        return {"backend": type(self).__name__}


def read_word_table(path: str | Path, columns: tuple[str, str], values: set[str]) -> dict[str, str]:
    """A two-column CSV (word, class) as a dict of normalised words; names bad rows."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {missing}; present: {list(frame.columns)}")
    out: dict[str, str] = {}
    for row, (word, cls) in enumerate(zip(frame[columns[0]], frame[columns[1]], strict=True), start=2):
        cls = cls.strip().lower()
        if cls not in values:
            raise ValueError(f"{path}, line {row}: {columns[1]} {cls!r} is not one of {sorted(values)}")
        key = normalise_token(word)
        if not key:
            raise ValueError(f"{path}, line {row}: empty {columns[0]}")
        if out.get(key, cls) != cls:
            raise ValueError(f"{path}, line {row}: {key!r} is listed as both {out[key]} and {cls}")
        out[key] = cls
    if not out:
        raise ValueError(f"{path}: no rows")
    return out


class LexiconSentiment(SentimentBackend):
    """+1 / −1 / 0 for a completion found in the positive / negative list / neither."""

    def __init__(self, polarity: dict[str, str]):
        self.polarity = {w: (1.0 if p == "positive" else -1.0) for w, p in polarity.items()}

    @classmethod
    def from_csv(cls, path: str | Path) -> LexiconSentiment:
        return cls(read_word_table(path, ("word", "polarity"), {"positive", "negative"}))

    def score(self, prompts, completions) -> np.ndarray:  # noqa: ARG002 - a lexicon scores the completion only
        return np.array([self.polarity.get(normalise_token(c), 0.0) for c in completions], dtype=np.float64)

    def describe(self) -> dict[str, Any]:
        return {"backend": "lexicon", "words": len(self.polarity)}


class HFSentiment(SentimentBackend):
    """A Hugging Face ``text-classification`` pipeline (e.g. distilbert SST-2)."""

    def __init__(self, pipeline, text: str = "sentence", positive_label: str = "POSITIVE", batch_size: int = 64):
        if text not in {"sentence", "completion"}:
            raise ValueError(f"sentiment text must be sentence or completion, got {text!r}")
        self.pipeline, self.text, self.batch_size = pipeline, text, batch_size
        labels = {str(v).upper() for v in pipeline.model.config.id2label.values()}
        self.positive = positive_label.upper()
        if self.positive not in labels:
            raise ValueError(f"sentiment model labels {sorted(labels)} do not include {positive_label!r}")

    @classmethod
    def load(cls, ref: dict[str, Any], device: Any = "cpu", **kwargs: Any) -> HFSentiment:
        from transformers import pipeline

        from biasdrift.models import load_model, load_tokenizer

        model = load_model(ref, kind="sequence_classification", device=device).eval()
        tokenizer = load_tokenizer(ref)
        return cls(pipeline("text-classification", model=model, tokenizer=tokenizer, device=model.device), **kwargs)

    def texts(self, prompts, completions) -> list[str]:
        if self.text == "completion":
            return [c.strip() for c in completions]
        return [f"{p} {c.strip()}" for p, c in zip(prompts, completions, strict=True)]

    def score(self, prompts, completions) -> np.ndarray:
        texts = self.texts(prompts, completions)
        if not texts:
            return np.zeros(0)
        results = self.pipeline(texts, batch_size=self.batch_size, truncation=True)
        return np.array(
            [r["score"] if str(r["label"]).upper() == self.positive else -r["score"] for r in results], dtype=np.float64
        )

    def describe(self) -> dict[str, Any]:
        model = self.pipeline.model
        return {
            "backend": "hf",
            "model": getattr(model, "name_or_path", None),
            "commit": getattr(model.config, "_commit_hash", None),
            "text": self.text,
        }


BACKENDS = {"lexicon", "hf"}


class CachedSentiment:
    """A backend with a cache keyed by (prompt, completion); classifies only new pairs."""

    def __init__(self, backend: SentimentBackend):
        self.backend = backend
        self.cache: dict[tuple[str, str], float] = {}
        self.calls = 0

    def score(self, prompts: Sequence[str], completions: Sequence[str]) -> np.ndarray:
        keys = list(zip(prompts, completions, strict=True))
        todo = list(dict.fromkeys(k for k in keys if k not in self.cache))
        if todo:
            self.calls += len(todo)
            new = self.backend.score([p for p, _ in todo], [c for _, c in todo])
            self.cache.update(zip(todo, map(float, new), strict=True))
        return np.array([self.cache[k] for k in keys], dtype=np.float64)


def make_sentiment(
    cfg: SentimentConfig, model_ref: dict[str, Any] | None = None, device: Any = "cpu"
) -> CachedSentiment:
    if cfg.backend == "lexicon":
        backend: SentimentBackend = LexiconSentiment.from_csv(cfg.lexicon)
    elif cfg.backend == "hf":
        if model_ref is None:
            raise ValueError("the hf sentiment backend needs a model alias (studies.circuits.sentiment.model)")
        backend = HFSentiment.load(
            model_ref, device, text=cfg.text, positive_label=cfg.positive_label, batch_size=cfg.batch_size
        )
    else:
        raise ValueError(f"unknown sentiment backend {cfg.backend!r}; known: {', '.join(sorted(BACKENDS))}")
    log.info("sentiment backend: %s", backend.describe())
    return CachedSentiment(backend)


class GenderLexicon:
    """+1 male, −1 female, 0 neutral for a token's stripped, lower-cased text."""

    def __init__(self, terms: dict[str, str]):
        self.terms = {w: (MALE if g == "male" else FEMALE) for w, g in terms.items()}

    @classmethod
    def from_csv(cls, path: str | Path) -> GenderLexicon:
        return cls(read_word_table(path, ("term", "gender"), {"male", "female"}))

    def classify(self, tokens: Sequence[str]) -> np.ndarray:
        return np.array([self.terms.get(normalise_token(t), NEUTRAL) for t in tokens], dtype=np.int64)
