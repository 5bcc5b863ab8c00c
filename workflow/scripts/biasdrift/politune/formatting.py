"""The one prompt format of training and evaluation.

Every text a model sees in this study (DPO and SFT training pairs, held-out pairs, the
statement probe, free-text probes) goes through :func:`render_prompt` and
:func:`render_completion`, and is tokenized by :func:`encode`, which splits prompt and
completion exactly as trl 1.x does for standard (string) data: ``tokenizer(prompt)``
and ``tokenizer(prompt + completion)``, the completion starting where the two diverge.

Two layouts:

* ``chat``: the tokenizer's own chat template (or one given by ``chat_template``), with
  the generation prompt; a leading BOS the template writes as text is dropped when the
  tokenizer adds BOS itself (no double BOS). The completion is what the template renders
  for the assistant turn (so it ends with the template's end-of-turn token), plus EOS if
  that does not end with it.
* ``alpaca``: the Alpaca instruction layout the original PoliTune recipe used
  (paper-faithful runs), the completion being the response and EOS.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

log = logging.getLogger(__name__)

ALPACA_PREAMBLE = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request."
)
TEMPLATES = ("chat", "alpaca")


class FormatError(ValueError):
    """A prompt cannot be formatted or does not fit (the message names the culprit)."""


@dataclass(frozen=True)
class FormatConfig:
    SCHEMA: ClassVar[str] = "studies.politune.format"  # the schema section it mirrors: its defaults

    template: str = field(metadata={"help": "chat (the tokenizer's chat template) or alpaca."})
    chat_template: str | None = field(
        metadata={"help": "Jinja file that replaces the tokenizer's chat template (chat layout)."}
    )
    system_prompt: str | None = field(metadata={"help": "System message of the chat layout."})

    def __post_init__(self) -> None:
        if self.template not in TEMPLATES:
            raise FormatError(f"format.template must be one of {', '.join(TEMPLATES)}, got {self.template!r}")


def prepare_tokenizer(tokenizer, fmt: FormatConfig, where: str = "tokenizer"):
    """Install ``fmt.chat_template`` and check that the chat layout has a template."""
    if fmt.chat_template:
        path = Path(fmt.chat_template)
        if not path.is_file():
            raise FormatError(f"format.chat_template: no such file {path}")
        tokenizer.chat_template = path.read_text(encoding="utf-8")
    if fmt.template == "chat" and not getattr(tokenizer, "chat_template", None):
        raise FormatError(
            f"{where} has no chat template: set format.chat_template to a Jinja file, or use format.template alpaca"
        )
    if tokenizer.eos_token is None:
        raise FormatError(f"{where} has no EOS token: completions could never end")
    return tokenizer


def _adds_bos(tokenizer) -> bool:
    bos = tokenizer.bos_token_id
    ids = tokenizer("x")["input_ids"]
    return bos is not None and len(ids) > 0 and ids[0] == bos


def _strip_bos(tokenizer, text: str) -> str:
    bos = tokenizer.bos_token
    if bos and text.startswith(bos) and _adds_bos(tokenizer):
        return text[len(bos) :]
    return text


def _messages(fmt: FormatConfig, prompt: str) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": fmt.system_prompt}] if fmt.system_prompt else []
    return [*messages, {"role": "user", "content": prompt}]


def render_prompt(tokenizer, fmt: FormatConfig, prompt: str) -> str:
    """The text a model is given before it answers ``prompt``."""
    if fmt.template == "alpaca":
        return f"{ALPACA_PREAMBLE}\n\n### Instruction:\n{prompt}\n\n### Response:\n"
    text = tokenizer.apply_chat_template(_messages(fmt, prompt), tokenize=False, add_generation_prompt=True)
    return _strip_bos(tokenizer, text)


def render_completion(tokenizer, fmt: FormatConfig, prompt: str, response: str) -> str:
    """The text of the answer ``response`` that follows :func:`render_prompt` (ends with EOS)."""
    eos = tokenizer.eos_token
    if fmt.template == "alpaca":
        completion = response
    else:
        prompt_text = render_prompt(tokenizer, fmt, prompt)
        messages = [*_messages(fmt, prompt), {"role": "assistant", "content": response}]
        full = _strip_bos(tokenizer, tokenizer.apply_chat_template(messages, tokenize=False))
        if not full.startswith(prompt_text):
            raise FormatError(
                "the chat template renders the prompt differently with and without an answer; "
                f"prompt {prompt_text[-60:]!r} vs conversation {full[: len(prompt_text)][-60:]!r}"
            )
        completion = full[len(prompt_text) :]
    return completion if completion.endswith(eos) else completion + eos


def format_pairs(tokenizer, fmt: FormatConfig, rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Preference rows (prompt, chosen, rejected) as the strings trl trains on."""
    return [
        {
            "prompt": render_prompt(tokenizer, fmt, row["prompt"]),
            "chosen": render_completion(tokenizer, fmt, row["prompt"], row["chosen"]),
            "rejected": render_completion(tokenizer, fmt, row["prompt"], row["rejected"]),
        }
        for row in rows
    ]


def common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def encode(tokenizer, prompt_text: str, completion_text: str) -> tuple[list[int], list[int]]:
    """``(prompt_ids, completion_ids)`` as trl 1.x tokenizes standard data."""
    prompt_ids = tokenizer(text=prompt_text)["input_ids"]
    full_ids = tokenizer(text=prompt_text + completion_text)["input_ids"]
    n = common_prefix(prompt_ids, full_ids)
    return prompt_ids[:n], full_ids[n:]


def check_lengths(tokenizer, formatted: list[dict[str, str]], max_length: int, where: str) -> dict[str, Any]:
    """Fail before training when a prompt, or a prompt with its longest answer, does not
    fit in ``max_length`` tokens (trl would silently drop or truncate it)."""
    longest = 0
    for i, row in enumerate(formatted):
        for key in ("chosen", "rejected", "completion"):
            if key not in row:
                continue
            prompt_ids, completion_ids = encode(tokenizer, row["prompt"], row[key])
            if len(prompt_ids) >= max_length:
                raise FormatError(
                    f"{where}: row {i}: the formatted prompt has {len(prompt_ids)} tokens, max_length is "
                    f"{max_length}; raise max_length or shorten the prompt"
                )
            total = len(prompt_ids) + len(completion_ids)
            if total > max_length:
                raise FormatError(
                    f"{where}: row {i}: prompt + {key} have {total} tokens, more than max_length={max_length}; "
                    "raise max_length (trl would truncate the answer)"
                )
            longest = max(longest, total)
    return {"rows": len(formatted), "longest_tokens": longest, "max_length": max_length}
