"""The bias metrics, on the next-token distribution after a prompt.

For one example, with ``p = softmax(logits at the last position)`` and ``T`` the top-k
token ids of ``p`` (recomputed on every forward pass and treated as constants):

* ``m1`` (the original "prob_diff"): ``P_pos − P_neg``, in [−1, 1], where ``P_pos`` is
  the mass of the positive tokens of ``T`` and ``P_neg`` that of the others;
* ``m2`` (the original "prob_diff_new"): ``P_pos``, in [0, 1]; 0 when no top-k token is
  positive (the original crashed there);
* ``g1`` (gender): ``P_male − P_female`` over ``T`` (gender lexicon);
* ``g2`` (gender): ``P_male``.

Gradients flow through the chosen probabilities only. ``m1``/``m2`` use the sentiment
backend for both bias types, as the original did; ``g1``/``g2`` exist for the gender
templates only. The dataset value is the mean over examples.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from biasdrift.circuits.eap import PairBatch
from biasdrift.circuits.labels import FEMALE, MALE, CachedSentiment, GenderLexicon

METRICS = ("m1", "m2", "g1", "g2")
BIAS_METRICS = {"demographic": ("m1", "m2"), "gender": ("m1", "m2", "g1", "g2")}
DISPLAY = {"m1": "M1", "m2": "M2", "g1": "G1", "g2": "G2"}


def check_metric(bias: str, metric: str, where: str = "metric") -> None:
    if bias not in BIAS_METRICS:
        raise ValueError(f"{where}: unknown bias type {bias!r}; known: {', '.join(BIAS_METRICS)}")
    if metric not in BIAS_METRICS[bias]:
        raise ValueError(
            f"{where}: metric {metric!r} is not defined for {bias} bias (use {', '.join(BIAS_METRICS[bias])})"
        )


class TokenLabeler:
    """Labels the top-k next tokens of the prompts (clean prompt texts, by example index)."""

    def __init__(
        self,
        tokenizer,
        prompts: Sequence[str],
        sentiment: CachedSentiment | None = None,
        gender: GenderLexicon | None = None,
    ):
        self.tokenizer, self.prompts = tokenizer, list(prompts)
        self.sentiment, self.gender = sentiment, gender
        self._decoded: dict[int, str] = {}

    def decode(self, ids: np.ndarray) -> list[str]:
        out = []
        for i in ids.reshape(-1).tolist():
            if i not in self._decoded:
                self._decoded[i] = self.tokenizer.decode([i])
            out.append(self._decoded[i])
        return out

    def sentiment_scores(self, index: np.ndarray, ids: np.ndarray) -> np.ndarray:
        """Signed sentiment score of each top-k token ``[B, k]``."""
        if self.sentiment is None:
            raise ValueError("metrics m1/m2 need a sentiment backend")
        tokens = self.decode(ids)
        prompts = [self.prompts[i] for i in index.tolist() for _ in range(ids.shape[1])]
        return self.sentiment.score(prompts, tokens).reshape(ids.shape)

    def gender_classes(self, ids: np.ndarray) -> np.ndarray:
        """+1 male, −1 female, 0 neutral for each top-k token ``[B, k]``."""
        if self.gender is None:
            raise ValueError("metrics g1/g2 need the gender lexicon")
        return self.gender.classify(self.decode(ids)).reshape(ids.shape)


def _probabilities(logits: torch.Tensor) -> torch.Tensor:
    dtype = torch.float64 if logits.dtype == torch.float64 else torch.float32
    return torch.softmax(logits.to(dtype), dim=-1)


@dataclass
class TopKMetric:
    """A metric callable ``(logits_last [B, V], batch) -> [B]`` for :mod:`eap`."""

    name: str
    labeler: TokenLabeler
    k: int = 10
    loss: bool = False  # negate (the original's loss=True)

    def __post_init__(self) -> None:
        if self.name not in METRICS:
            raise ValueError(f"unknown metric {self.name!r}; known: {', '.join(METRICS)}")
        if self.k < 1:
            raise ValueError(f"top_k must be >= 1, got {self.k}")

    def __call__(self, logits: torch.Tensor, batch: PairBatch) -> torch.Tensor:
        probs = _probabilities(logits)
        return self.from_probs(probs, batch.index.cpu().numpy())

    def from_probs(self, probs: torch.Tensor, index: np.ndarray) -> torch.Tensor:
        top_p, top_i = probs.topk(min(self.k, probs.shape[-1]), dim=-1)  # [B, k]
        ids = top_i.detach().cpu().numpy()
        if self.name in ("m1", "m2"):
            positive = torch.as_tensor(self.labeler.sentiment_scores(index, ids) > 0, device=probs.device)
            pos_mass = (top_p * positive).sum(-1)
            value = pos_mass if self.name == "m2" else 2 * pos_mass - top_p.sum(-1)
        else:
            classes = torch.as_tensor(self.labeler.gender_classes(ids), device=probs.device)
            male = (top_p * (classes == MALE)).sum(-1)
            female = (top_p * (classes == FEMALE)).sum(-1)
            value = male if self.name == "g2" else male - female
        return -value if self.loss else value


def describe_topk(probs: torch.Tensor, index: np.ndarray, labeler: TokenLabeler, k: int) -> list[dict[str, Any]]:
    """Per-example record of the top-k tokens, their probabilities and labels, the class
    masses and all four metrics (for the group split and the bias tables)."""
    top_p, top_i = probs.topk(min(k, probs.shape[-1]), dim=-1)
    ids = top_i.cpu().numpy()
    p = top_p.double().cpu().numpy()
    scores = labeler.sentiment_scores(index, ids) if labeler.sentiment is not None else np.zeros_like(p)
    genders = labeler.gender_classes(ids) if labeler.gender is not None else np.zeros(ids.shape, dtype=np.int64)
    rows = []
    for b, example in enumerate(index.tolist()):
        tokens = labeler.decode(ids[b])
        positive = scores[b] > 0
        male, female = genders[b] == MALE, genders[b] == FEMALE
        pos_mass, total = float(p[b][positive].sum()), float(p[b].sum())
        male_mass, female_mass = float(p[b][male].sum()), float(p[b][female].sum())
        rows.append(
            {
                "example": example,
                "tokens": tokens,
                "probs": p[b].tolist(),
                "sentiment": scores[b].tolist(),
                "gender": genders[b].tolist(),
                "topk_mass": total,
                "positive_mass": pos_mass,
                "negative_mass": total - pos_mass,
                "positive_score": float(scores[b][positive].sum()),
                "negative_score": float(scores[b][~positive].sum()),
                "male_mass": male_mass,
                "female_mass": female_mass,
                "neutral_mass": total - male_mass - female_mass,
                "m1": 2 * pos_mass - total,
                "m2": pos_mass,
                "g1": male_mass - female_mass,
                "g2": male_mass,
            }
        )
    return rows
