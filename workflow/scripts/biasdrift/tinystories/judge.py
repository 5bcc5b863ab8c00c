"""Which features a sampled story shows: the LLM judge (paper tier) and its agreement
with the marker rules.

The marker rules of :mod:`~biasdrift.tinystories.stories` are exact on the synthetic
corpus only; on real stories the original asked GPT-3.5 "Does the story have a twist?"
and counted "yes" anywhere after the question (so "eyes" was a yes, spec 7.15). Here any
Hugging Face causal LM (a ``models`` alias: a hub id or a local directory) is asked one
yes/no question per story and feature, in its chat template when it has one (plain text
otherwise), and answers greedily in a few tokens. :func:`parse_verdict` reads the reply:
a clear leading Yes / No (or an ``<answer>`` tag) decides; anything else is *unparsed*
(None), is counted as such, and never stands in for a default answer.

:func:`agreement` compares two detectors on the same (story, feature) pairs: both
rates, the fraction of agreeing pairs and Cohen's kappa.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

# One question per feature, after the TinyStories generation prompt's phrasing (spec 1.1)
# and the original judge's "Does the story have a twist?".
QUESTIONS = {
    "Dialogue": "Does the story contain at least one dialogue (characters speaking in quotes)?",
    "Conflict": "Does the story have some form of conflict in it?",
    "Twist": "Does the story have a plot twist, where something unexpected happens?",
    "Foreshadowing": "Does the narrative use foreshadowing, a setup early on that pays off later?",
    "MoralValue": "Does the story have a moral value, a lesson it teaches?",
    "BadEnding": "Does the story have a bad ending?",
}
DEFAULT_INSTRUCTION = (
    "Here is a short story written for young children.\n\nStory:\n{story}\n\n"
    "Question: {question}\nAnswer with one word: Yes or No."
)


@dataclass(frozen=True)
class JudgeConfig:
    """Schema: ``studies.tinystories.evaluation.judge`` (``model`` is resolved to a ref)."""

    batch_size: int = field(default=16, metadata={"help": "Prompts judged together."})
    max_new_tokens: int = field(default=8, metadata={"help": "Tokens of the reply (greedy)."})
    instruction: str = field(default=DEFAULT_INSTRUCTION, metadata={"help": "Prompt with {story} and {question}."})

    def __post_init__(self) -> None:
        missing = [k for k in ("{story}", "{question}") if k not in self.instruction]
        if missing:
            raise ValueError(f"judge.instruction must contain {' and '.join(missing)}")


# --------------------------------------------------------------------------- parser
_MARKUP_RE = re.compile(r"[*_`#>\"'“”‘’]")
_ANSWER_TAG_RE = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.I | re.S)
_PREFIX_RE = re.compile(r"^(?:(?:final\s+)?answer\b\s*[:\-]?|(?:the|my)\s+answer\s+is\b\s*:?|a\s*:)\s*", re.I)
_BOTH_RE = re.compile(r"\b(?:yes|no)\b\s*(?:and|or|/|,)\s*\b(?:yes|no)\b", re.I)
_WORD_RE = re.compile(r"[a-z]+", re.I)
_VERDICTS = {"yes": True, "no": False}


def parse_verdict(reply: Any) -> bool | None:
    """A judge's reply as True (yes) / False (no), or None when it is unparsed.

    Decides: a reply whose first word is Yes or No ("Yes.", "no, it does not",
    "Answer: Yes", "**Yes**"), or the last ``<answer>...</answer>`` tag holding exactly
    Yes or No. Unparsed: anything else, and both answers side by side ("Yes and no",
    "yes/no"). Words are whole words, so "eyes" or "nobody" is not an answer."""
    if not isinstance(reply, str):
        return None
    tags = _ANSWER_TAG_RE.findall(reply)
    if tags:
        words = _WORD_RE.findall(tags[-1].lower())
        return _VERDICTS.get(words[0]) if len(words) == 1 else None
    text = _PREFIX_RE.sub("", _MARKUP_RE.sub("", reply).strip(), count=1)
    first = re.split(r"(?<=[.!?])\s|\n", text, maxsplit=1)[0]
    words = [w.lower() for w in _WORD_RE.findall(first)]
    if not words or words[0] not in _VERDICTS:
        return None
    if _BOTH_RE.search(first):
        return None
    return _VERDICTS[words[0]]


# --------------------------------------------------------------------------- the judge
class LMJudge:
    """A causal LM that answers one yes/no question per (story, feature)."""

    def __init__(self, model, tokenizer, device, cfg: JudgeConfig | None = None):
        self.model, self.tokenizer, self.device = model.eval(), tokenizer, device
        self.cfg = cfg or JudgeConfig()
        self.chat = bool(getattr(tokenizer, "chat_template", None))
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        if pad is None:
            raise ValueError("the judge's tokenizer has neither a pad nor an eos token")
        self.pad = pad

    def prompt(self, story: str, feature: str) -> str:
        content = self.cfg.instruction.format(story=story.strip(), question=QUESTIONS[feature])
        if self.chat:
            messages = [{"role": "user", "content": content}]
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return content + "\nAnswer:"

    def replies(self, prompts: list[str]) -> list[str]:
        """Greedy replies, batched by prompt length (returned in the input order)."""
        import torch

        from biasdrift.runtime import progress

        # a chat template writes its own special tokens (BOS included)
        encoded = [self.tokenizer(p, add_special_tokens=not self.chat)["input_ids"] for p in prompts]
        order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]))
        out: list[str] = [""] * len(encoded)
        size = self.cfg.batch_size
        for start in progress(range(0, len(order), size), desc="judge", unit="batch"):
            rows = order[start : start + size]
            width = max(len(encoded[i]) for i in rows)
            ids = torch.tensor([[self.pad] * (width - len(encoded[i])) + encoded[i] for i in rows])
            mask = torch.tensor([[0] * (width - len(encoded[i])) + [1] * len(encoded[i]) for i in rows])
            with torch.inference_mode():
                generated = self.model.generate(
                    input_ids=ids.to(self.device),
                    attention_mask=mask.to(self.device),
                    do_sample=False,
                    max_new_tokens=self.cfg.max_new_tokens,
                    pad_token_id=self.pad,
                )
            for i, row in zip(rows, generated[:, width:].tolist(), strict=True):
                out[i] = self.tokenizer.decode(row, skip_special_tokens=True).strip()
        return out

    def __call__(self, stories: Sequence[str], features: Sequence[str]) -> tuple[list[bool | None], list[str]]:
        """Verdicts (None = unparsed) and raw replies of each (story, feature) pair."""
        replies = self.replies([self.prompt(s, f) for s, f in zip(stories, features, strict=True)])
        verdicts = [parse_verdict(r) for r in replies]
        unparsed = sum(v is None for v in verdicts)
        if unparsed:
            log.warning("judge: %d of %d replies unparsed (counted apart, never as an answer)", unparsed, len(verdicts))
        return verdicts, replies


def load_judge(judge: dict[str, Any] | None, device) -> LMJudge | None:
    """The judge of a rule param ({"ref": model ref, "batch_size", "max_new_tokens",
    "instruction"}), or None (the marker rules decide)."""
    if not judge:
        return None
    from biasdrift.models import load_model, load_tokenizer
    from biasdrift.runtime import choose_dtype

    cfg = JudgeConfig(**{k: v for k, v in judge.items() if k != "ref"})
    tokenizer = load_tokenizer(judge["ref"])
    model = load_model(judge["ref"], device=device, dtype=choose_dtype(device))
    return LMJudge(model, tokenizer, device, cfg)


# --------------------------------------------------------------------------- agreement
def confusion(markers: Sequence[bool], judged: Sequence[bool | None]) -> dict[str, int]:
    """2 x 2 counts of two detectors on the same pairs; pairs the judge left unparsed
    are counted apart and take no part in the table."""
    table = {"both": 0, "marker_only": 0, "judge_only": 0, "neither": 0, "unparsed": 0}
    for m, j in zip(markers, judged, strict=True):
        if j is None:
            table["unparsed"] += 1
        elif m and j:
            table["both"] += 1
        elif m:
            table["marker_only"] += 1
        elif j:
            table["judge_only"] += 1
        else:
            table["neither"] += 1
    return table


def agreement_stats(table: dict[str, int]) -> dict[str, Any]:
    """Both rates, observed agreement and Cohen's kappa of a :func:`confusion` table.

    kappa = (p_o - p_e) / (1 - p_e) with p_e = p_m p_j + (1 - p_m)(1 - p_j); undefined
    (NaN) when p_e = 1 (both detectors constant and equal) or with no parsed pair."""
    a, b, c, d = (table[k] for k in ("both", "marker_only", "judge_only", "neither"))
    n = a + b + c + d
    stats: dict[str, Any] = {**table, "n": n}
    if n == 0:
        return {**stats, "marker_rate": math.nan, "judge_rate": math.nan, "agreement": math.nan, "kappa": math.nan}
    p_m, p_j, p_o = (a + b) / n, (a + c) / n, (a + d) / n
    p_e = p_m * p_j + (1 - p_m) * (1 - p_j)
    kappa = math.nan if math.isclose(p_e, 1.0) else (p_o - p_e) / (1 - p_e)
    return {**stats, "marker_rate": p_m, "judge_rate": p_j, "agreement": p_o, "kappa": kappa}


def agreement(rows: list[dict[str, Any]], features: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Per feature, the marker rules against the judge over every judged story
    (``f in rows[i]["detected"]`` against ``rows[i]["judge"][f]``)."""
    out = {}
    for f in features:
        pairs = [(f in r["detected"], r["judge"][f]) for r in rows if f in r["judge"]]
        out[f] = agreement_stats(confusion([m for m, _ in pairs], [j for _, j in pairs]))
    return out
