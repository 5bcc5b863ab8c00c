"""Scoring one (model, probe) cell of the matrix: whether the probe applies, its item
values, the score (mean(a) - mean(b) within each block, averaged over blocks) with a
percentile-bootstrap interval (items resampled within their block and group), and the
change against the model's base (paired: the same items).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- tokenizers
class Codec:
    """The text side of a model: encode, BOS, the unknown id, the chat turn."""

    def __init__(self, tokenizer: dict[str, Any], chat_template: str | None):
        if tokenizer["kind"] == "sentencepiece":
            from biasdrift.tinystories.vocab import BOS_ID, StoryTokenizer

            sp = StoryTokenizer(tokenizer["path"])
            self._encode = lambda text: sp.encode(text, bos=False)
            self.bos, self.unk, self.template, self._hf = BOS_ID, 0, None, None
            return
        from biasdrift.models import load_tokenizer

        tok = load_tokenizer(tokenizer["ref"])
        if chat_template:
            tok.chat_template = Path(chat_template).read_text(encoding="utf-8")
        self._hf = tok
        self._encode = lambda text: tok(text, add_special_tokens=False)["input_ids"]
        self.bos = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        # byte-level BPE never needs its unknown token; WordPiece / SentencePiece without
        # byte fallback do
        self.unk = tok.unk_token_id if tok.unk_token_id not in (tok.bos_token_id, tok.eos_token_id) else None
        self.template = getattr(tok, "chat_template", None)

    def encode(self, text: str) -> list[int]:
        return list(self._encode(text))

    def render(self, prompt: str) -> str:
        """``prompt`` as a user turn followed by the assistant's prompt."""
        text = self._hf.apply_chat_template(
            [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
        )
        bos = self._hf.bos_token
        return text[len(bos) :] if bos and text.startswith(bos) else text

    def single_token(self, word: str) -> bool:
        return len(self.encode(" " + word)) == 1 or len(self.encode(word)) == 1


def prompt_text(codec: Codec, probe: dict[str, Any], prompt: str) -> str:
    return codec.render(prompt) if "chat_template" in probe["needs"] else prompt


def option_text(context: str, word: str) -> str:
    return word if context.endswith((" ", "\n")) or not context else " " + word


NO_TEMPLATE = "no chat template: the probe asks through a chat turn"


def has_chat_template(row: dict[str, Any]) -> bool | None:
    """Whether the row's tokenizer has a chat template, read from its files without
    loading it (None: only loading it tells, e.g. a hub tokenizer)."""
    if row["chat_template"]:
        return True
    if row["tokenizer"]["kind"] == "sentencepiece":
        return False
    path = row["tokenizer"]["ref"].get("path")
    if not path or not (Path(path) / "tokenizer_config.json").is_file():
        return None
    import json

    config = json.loads((Path(path) / "tokenizer_config.json").read_text())
    return bool(config.get("chat_template")) or any(Path(path).glob("chat_template.*"))


def applicability(codec: Codec, probe: dict[str, Any]) -> str | None:
    """Why ``probe`` does not apply to a model with ``codec`` (None: it applies)."""
    if "chat_template" in probe["needs"] and not codec.template:
        return NO_TEMPLATE
    if "words" in probe["needs"] and codec.unk is not None:
        texts = [i["prompt"] for i in probe["items"]] + sorted({w for i in probe["items"] for w in i["a"] + i["b"]})
        unknown = [t for t in texts if codec.unk in codec.encode(t)]
        if unknown:
            return f"{len(unknown)} of {len(texts)} probe texts encode to the unknown token (e.g. {unknown[0]!r})"
    return None


def word_coverage(codec: Codec, probe: dict[str, Any]) -> float | None:
    """Share of the probe's option words that are one token of the model's vocabulary
    (None for a probe without options)."""
    words = sorted({w for i in probe["items"] for w in i["a"] + i["b"]})
    return float(np.mean([codec.single_token(w) for w in words])) if words else None


# --------------------------------------------------------------------------- models
def load_row_model(row: dict[str, Any], device):
    """The row's causal LM in eval mode (a peft adapter merged into its base)."""
    from biasdrift.models import load_model

    model = load_model(row["model"], device="cpu")
    if row["adapter"]:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, row["adapter"]).merge_and_unload()
    return model.to(device).eval()


def _batches(sequences: list[list[int]], batch_size: int):
    for start in range(0, len(sequences), batch_size):
        yield start, sequences[start : start + batch_size]


def _forward(model, sequences: list[list[int]], device, batch_size: int):
    """Log-softmax of every position of every sequence (right-padded batches)."""
    import torch

    for start, chunk in _batches(sequences, batch_size):
        width = max(len(s) for s in chunk)
        ids = torch.zeros((len(chunk), width), dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for k, seq in enumerate(chunk):
            ids[k, : len(seq)] = torch.tensor(seq)
            mask[k, : len(seq)] = 1
        with torch.no_grad():
            logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
        yield start, torch.log_softmax(logits, dim=-1).cpu()


def item_values(model, codec: Codec, probe: dict[str, Any], device, batch_size: int) -> np.ndarray:
    """One value per item: the option preference (contrast) or the next token's entropy."""
    contexts = [[codec.bos, *codec.encode(prompt_text(codec, probe, i["prompt"]))] for i in probe["items"]]
    max_len = getattr(model.config, "max_position_embeddings", None) or getattr(model.config, "max_seq_len", None)
    if probe["kind"] == "certainty":
        values = np.zeros(len(contexts))
        for start, logp in _forward(model, contexts, device, batch_size):
            for k in range(logp.shape[0]):
                last = logp[k, len(contexts[start + k]) - 1]
                values[start + k] = float(-(last.exp() * last).sum())
        return values
    pieces, owners = [], []  # one sequence per (item, side, word)
    for n, item in enumerate(probe["items"]):
        context = prompt_text(codec, probe, item["prompt"])
        for side in ("a", "b"):
            for word in item[side]:
                pieces.append((contexts[n], codec.encode(option_text(context, word))))
                owners.append((n, side))
    sequences = [c + w for c, w in pieces]
    if max_len and max(len(s) for s in sequences) > max_len:
        raise ValueError(f"probe {probe['name']}: an item is longer than the model's {max_len} positions")
    scores = np.zeros(len(sequences))
    for start, logp in _forward(model, sequences, device, batch_size):
        for k in range(logp.shape[0]):
            context, word = pieces[start + k]
            positions = range(len(context) - 1, len(context) + len(word) - 1)
            scores[start + k] = float(sum(logp[k, p, t] for p, t in zip(positions, word, strict=True)))
    per_side: dict[tuple[int, str], list[float]] = {}
    for (n, side), s in zip(owners, scores, strict=True):
        per_side.setdefault((n, side), []).append(s)

    def lse(values: list[float]) -> float:
        top = max(values)
        return top + float(np.log(np.sum(np.exp(np.asarray(values) - top))))

    return np.array([lse(per_side[(n, "a")]) - lse(per_side[(n, "b")]) for n in range(len(probe["items"]))])


# --------------------------------------------------------------------------- statistics
def _cells(groups: np.ndarray, blocks: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """(indices of a, indices of b) of every block that holds both groups."""
    out = []
    for block in dict.fromkeys(blocks.tolist()):
        a = np.flatnonzero((blocks == block) & (groups == "a"))
        b = np.flatnonzero((blocks == block) & (groups == "b"))
        if a.size and b.size:
            out.append((a, b))
    return out


def group_gap(values: np.ndarray, groups: np.ndarray, blocks: np.ndarray) -> float:
    """mean(a) - mean(b) within each block, averaged over the blocks."""
    return float(np.mean([values[a].mean() - values[b].mean() for a, b in _cells(groups, blocks)]))


def bootstrap_gap(
    values: np.ndarray, groups: np.ndarray, blocks: np.ndarray, n_boot: int, confidence: float, seed: int
):
    """The gap and its percentile interval, items resampled within their block and group."""
    rng = np.random.default_rng(seed)
    draws = np.zeros(n_boot)
    cells = _cells(groups, blocks)
    for a, b in cells:
        draws += rng.choice(values[a], (n_boot, a.size)).mean(axis=1) - rng.choice(values[b], (n_boot, b.size)).mean(
            axis=1
        )
    draws /= len(cells)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return group_gap(values, groups, blocks), float(low), float(high)


def score_cell(
    *,
    row: dict[str, Any],
    probe: dict[str, Any],
    base: dict[str, Any] | None,
    stats: dict[str, Any],
    device,
    batch_size: int,
) -> dict[str, Any]:
    """The cell's record (what ``results/matrix/{row}/{probe}.json`` holds)."""
    groups = np.array([i["group"] for i in probe["items"]])
    blocks = np.array([i["block"] for i in probe["items"]])
    out: dict[str, Any] = {
        "row": row["name"],
        "probe": probe["name"],
        "row_study": row["study"],
        "probe_study": probe["study"],
        "base": row["base"],
        "kind": probe["kind"],
        "n_items": int(groups.size),
        "confidence": stats["confidence"],
    }
    if "chat_template" in probe["needs"] and has_chat_template(row) is False:  # no torch import needed
        log.info("%s x %s: not applicable: %s", row["name"], probe["name"], NO_TEMPLATE)
        return {**out, "applicable": False, "reason": NO_TEMPLATE}
    codec = Codec(row["tokenizer"], row["chat_template"])
    reason = applicability(codec, probe)
    if reason is not None:
        log.info("%s x %s: not applicable: %s", row["name"], probe["name"], reason)
        return {**out, "applicable": False, "reason": reason}
    model = load_row_model(row, device)
    values = item_values(model, codec, probe, device, batch_size)
    score, low, high = bootstrap_gap(values, groups, blocks, stats["bootstrap"], stats["confidence"], stats["seed"])
    out.update(
        applicable=True,
        reason=None,
        score=score,
        low=low,
        high=high,
        coverage=word_coverage(codec, probe),
        values=values.tolist(),
    )
    out.update(change_against(values, groups, blocks, base, stats))
    log.info("%s x %s: score %.4f [%.4f, %.4f]", row["name"], probe["name"], score, low, high)
    return out


def change_against(
    values: np.ndarray, groups: np.ndarray, blocks: np.ndarray, base: dict[str, Any] | None, stats: dict[str, Any]
):
    """The paired change against the base's cell (None when there is no applicable base)."""
    empty = {"change": None, "change_low": None, "change_high": None, "significant": None}
    if base is None or not base.get("applicable"):
        return {**empty, "base_reason": "no base" if base is None else "the probe does not apply to the base"}
    base_values = np.asarray(base["values"])
    if base_values.shape != values.shape:
        raise ValueError(f"the base cell has {base_values.size} items, this one {values.size}: different probes")
    change, low, high = bootstrap_gap(
        values - base_values, groups, blocks, stats["bootstrap"], stats["confidence"], stats["seed"]
    )
    return {"change": change, "change_low": low, "change_high": high, "significant": bool(low > 0 or high < 0)}
