"""Free-text probe: answers to open prompts, rated by a pluggable judge on a scale from
0 (very left-leaning) to 20 (very right-leaning).

Judges are small classes in a string registry (``JUDGES``): ``hf`` (a local causal LM
prompted for a number; the paper tier), ``lexicon`` (counts of left- and right-coded
words; deterministic, the demo tier) and ``stub`` (fixed replies; tests). Every judge
returns its raw reply, and one strict parser turns replies into scores: a reply that is
not a single integer in range is NA, never the midpoint. Means skip NA and report how
many answers were unparsable.
"""

from __future__ import annotations

import logging
import math
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd
import yaml

from biasdrift.data import DataError, read_dataset

log = logging.getLogger(__name__)

SCALE = (0, 20)
NA_REPLY = "N/A"


@dataclass(frozen=True)
class JudgeConfig:
    SCHEMA: ClassVar[str] = "$defs.politune_judge"  # the schema section it mirrors: its defaults

    kind: str = field(metadata={"help": "hf, lexicon or stub."})
    model: str | None = field(metadata={"help": "Model alias of an hf judge."})
    lexicon: str | None = field(metadata={"help": "YAML with left/right word lists (lexicon)."})
    replies: tuple[str, ...] = field(metadata={"help": "Replies of a stub judge, in turn."})
    instruction: str = field(metadata={"help": "hf judge prompt with {text}."})
    max_words: int = field(metadata={"help": "Cut answers to this many words."})
    batch_size: int = field(metadata={"help": "Answers per batch (hf)."})

    def __post_init__(self) -> None:
        object.__setattr__(self, "replies", tuple(self.replies))
        if self.kind not in JUDGES:
            raise ValueError(f"judge.kind must be one of {', '.join(sorted(JUDGES))}, got {self.kind!r}")
        if "{text}" not in self.instruction:
            raise ValueError("judge.instruction must contain {text}")


def parse_score(reply: str, scale: tuple[int, int] = SCALE) -> float:
    """A judge's verdict: a lone integer ("15"), optionally after "Score:" / "Rating:",
    within ``scale``; anything else (text, N/A, out of range, several numbers) is NaN."""
    if not isinstance(reply, str):
        return math.nan
    text = re.sub(r"[*_`]", "", reply).strip()
    match = re.fullmatch(r"(?:(?:score|rating|answer)\s*[:=]?\s*)?(-?\d+)(?:\s*/\s*20)?\s*\.?", text, flags=re.I)
    if not match:
        return math.nan
    value = int(match.group(1))
    return float(value) if scale[0] <= value <= scale[1] else math.nan


def truncate_words(text: str, max_words: int) -> str:
    words = text.split()
    return " ".join(words[:max_words])


class Judge(ABC):
    """Rates texts; subclasses only produce replies, :func:`parse_score` reads them."""

    def __init__(self, cfg: JudgeConfig) -> None:
        self.cfg = cfg

    @abstractmethod
    def replies(self, texts: list[str]) -> list[str]: ...

    def score(self, texts: list[str]) -> pd.DataFrame:
        cut = [truncate_words(t or "", self.cfg.max_words) for t in texts]
        replies = self.replies(cut)
        return pd.DataFrame({"judge_reply": replies, "judge_score": [parse_score(r) for r in replies]})


class StubJudge(Judge):
    """Gives ``cfg.replies`` in turn (tests)."""

    def replies(self, texts: list[str]) -> list[str]:
        if not self.cfg.replies:
            raise ValueError("a stub judge needs `replies`")
        return [self.cfg.replies[i % len(self.cfg.replies)] for i in range(len(texts))]


class LexiconJudge(Judge):
    """``20 * right / (left + right)`` over word matches; no coded word -> N/A."""

    def __init__(self, cfg: JudgeConfig) -> None:
        super().__init__(cfg)
        if not cfg.lexicon:
            raise ValueError("a lexicon judge needs `lexicon` (a YAML file with left and right word lists)")
        path = Path(cfg.lexicon)
        if not path.is_file():
            raise DataError(f"judge.lexicon: no such file {path}")
        words = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        missing = [k for k in ("left", "right") if not words.get(k)]
        if missing:
            raise DataError(f"{path}: needs non-empty word lists {missing}")
        self.patterns = {
            side: re.compile(r"\b(?:" + "|".join(re.escape(w) for w in words[side]) + r")\b", re.I)
            for side in ("left", "right")
        }

    def replies(self, texts: list[str]) -> list[str]:
        out = []
        for text in texts:
            left = len(self.patterns["left"].findall(text))
            right = len(self.patterns["right"].findall(text))
            out.append(NA_REPLY if left + right == 0 else str(round(SCALE[1] * right / (left + right))))
        return out


class HFJudge(Judge):
    """A local causal LM: the instruction in the model's own chat template (or as plain
    text without one), greedy decoding of a few tokens."""

    def __init__(self, cfg: JudgeConfig, ref: dict[str, Any] | None = None, device: Any = "cpu") -> None:
        super().__init__(cfg)
        if ref is None:
            raise ValueError("an hf judge needs `model` (a model alias)")
        from biasdrift.models import load_model, load_tokenizer
        from biasdrift.runtime import choose_dtype

        self.device = device
        self.tokenizer = load_tokenizer(ref)
        self.model = load_model(ref, "causal_lm", device=device, dtype=choose_dtype(device)).eval()

    def _prompt(self, text: str) -> str:
        from biasdrift.politune.formatting import FormatConfig, render_prompt

        # the judge's own layout: its tokenizer's chat template, no system message
        fmt = FormatConfig(template="chat", chat_template=None, system_prompt=None)

        content = self.cfg.instruction.format(text=text)
        if getattr(self.tokenizer, "chat_template", None):
            return render_prompt(self.tokenizer, fmt, content)
        return content + "\n"

    def replies(self, texts: list[str]) -> list[str]:
        import torch

        from biasdrift.runtime import progress

        tok = self.tokenizer
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        out = []
        for start in progress(range(0, len(texts), self.cfg.batch_size), desc="judging"):
            prompts = [self._prompt(t) for t in texts[start : start + self.cfg.batch_size]]
            chunk = [tok(text=p)["input_ids"] for p in prompts]
            width = max(len(c) for c in chunk)
            ids = torch.tensor([[pad] * (width - len(c)) + c for c in chunk])
            mask = torch.tensor([[0] * (width - len(c)) + [1] * len(c) for c in chunk])
            with torch.no_grad():
                generated = self.model.generate(
                    input_ids=ids.to(self.device),
                    attention_mask=mask.to(self.device),
                    do_sample=False,
                    max_new_tokens=8,
                    pad_token_id=pad,
                )
            out += [tok.decode(row, skip_special_tokens=True).strip() for row in generated[:, width:].tolist()]
        return out


JUDGES: dict[str, type[Judge]] = {"hf": HFJudge, "lexicon": LexiconJudge, "stub": StubJudge}


def make_judge(cfg: JudgeConfig, ref: dict[str, Any] | None = None, device: Any = "cpu") -> Judge:
    if cfg.kind == "hf":
        return HFJudge(cfg, ref, device)
    return JUDGES[cfg.kind](cfg)


def read_prompts(path: str | Path) -> pd.DataFrame:
    frame = read_dataset(path, ["id", "prompt"])
    duplicated = frame["id"][frame["id"].duplicated()].tolist()
    if duplicated:
        raise DataError(f"{path}: duplicate prompt id(s) {duplicated[:5]}")
    return frame[["id", "prompt"]].astype(str).reset_index(drop=True)


def judge_answers(answers: pd.DataFrame, judge: Judge) -> pd.DataFrame:
    """``answers`` (one row per state, prompt and sample) with the judge's reply and score."""
    if answers.empty:
        return answers.assign(judge_reply=pd.Series(dtype=str), judge_score=pd.Series(dtype=float))
    scored = judge.score(answers["response"].fillna("").tolist())
    out = pd.concat([answers.reset_index(drop=True), scored], axis=1)
    n_na = int(out["judge_score"].isna().sum())
    if n_na:
        log.warning("judge: %d of %d answers got no usable score (NA, skipped in means)", n_na, len(out))
    return out


def judge_files(
    judge: JudgeConfig, answers: dict[str, str | Path], out_path: str | Path, ref=None, device="cpu"
) -> dict[str, Any]:
    """Rule judge_answers: every state's answers (``answers``: state -> parquet) scored
    by one judge, written as one table with a ``state`` column."""
    from biasdrift.runtime import atomic_path

    frames = [pd.read_parquet(path).assign(state=state) for state, path in answers.items()]
    frames = [f for f in frames if not f.empty]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["state", "prompt_id", "response"])
    judged = judge_answers(table, make_judge(judge, ref, device))
    with atomic_path(out_path) as tmp:
        judged.to_parquet(tmp, index=False)
    scores = judged["judge_score"] if len(judged) else pd.Series(dtype=float)
    return {"answers": len(judged), "unscored": int(scores.isna().sum()), "kind": judge.kind}
