"""A tiny chat model of the synthetic town, built in seconds (unit tests and the
benchmark): a BPE tokenizer trained on a few generated chats, the demo's chat template,
and a randomly initialised Llama, saved like a hub model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from biasdrift import corpora
from biasdrift.config import from_schema
from biasdrift.models import ModelSize, build_model
from biasdrift.tokenization import TokenizerConfig, train_tokenizer


def tiny_chat_model(
    out_dir: str | Path, chat_template: str | Path, *, seed: int = 0, hidden: int = 32, n_documents: int = 300
) -> dict[str, Any]:
    """Write tokenizer + model to ``out_dir/model``; return its model ref (source path)."""
    import torch
    from transformers import AutoTokenizer

    out = Path(out_dir)
    corpus = corpora.generate("politune_dialogues", {"n_documents": n_documents}, seed)
    train_tokenizer(
        corpus["text"].tolist(), from_schema(TokenizerConfig, kind="bpe", vocab_size=300), out / "tokenizer"
    )
    tokenizer = AutoTokenizer.from_pretrained(str(out / "tokenizer"))
    tokenizer.chat_template = Path(chat_template).read_text(encoding="utf-8")
    torch.manual_seed(seed)
    model = build_model(
        "llama", from_schema(ModelSize, layers=2, heads=4, kv_heads=2, hidden=hidden, context=256), tokenizer
    )
    model.save_pretrained(out / "model")
    tokenizer.save_pretrained(out / "model")
    return {"alias": f"tiny-{seed}", "source": "path", "path": str(out / "model")}
