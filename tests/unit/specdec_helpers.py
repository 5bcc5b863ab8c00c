"""Tiny local models for the specdec unit tests (no downloads): a BPE tokenizer trained on
the demo world, a 2-layer main model and a 1-layer assistant sharing it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from biasdrift import corpora
from biasdrift.config import from_schema
from biasdrift.models import ModelSize, build_model
from biasdrift.tokenization import TokenizerConfig, train_tokenizer

MAIN_SIZE = from_schema(ModelSize, layers=2, heads=2, hidden=32, context=64, dropout=0.0)
ASSISTANT_SIZE = from_schema(ModelSize, layers=1, heads=2, hidden=16, context=64, dropout=0.0)


@pytest.fixture(scope="module")
def one_thread():
    """Run a test's tiny models on one torch thread (restored afterwards): models this small
    gain nothing from intra-op threads, and on a loaded machine the threads' spin-waits made
    these tests several times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def world_texts(n_documents: int = 300) -> list[str]:
    return corpora.generate("specdec_world", {"n_documents": n_documents}, 0)["text"].tolist()


def make_tokenizer(path: Path, texts: list[str] | None = None, vocab_size: int = 300):
    train_tokenizer(texts or world_texts(), from_schema(TokenizerConfig, kind="bpe", vocab_size=vocab_size), path)
    return AutoTokenizer.from_pretrained(path, local_files_only=True)


def make_model(tokenizer, size: ModelSize, seed: int, path: Path | None = None):
    """A randomly initialised GPT-2 in eval mode (saved with its tokenizer when ``path``)."""
    torch.manual_seed(seed)
    model = build_model("gpt2", size, tokenizer).eval()
    if path is not None:
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
    return model


def path_ref(alias: str, path: Path) -> dict:
    return {"alias": alias, "source": "path", "path": str(path), "trust_remote_code": False}


def prompts(n: int = 24) -> list[str]:
    """Distinct HONEST-style prompts from the demo world's identities and patterns."""
    from biasdrift.specdec.generators import IDENTITIES, PATTERNS, template_sentence

    people = [i for ids in IDENTITIES.values() for i in ids]
    out = [template_sentence(people[i % len(people)], PATTERNS[i % len(PATTERNS)][0]) for i in range(n)]
    assert len(set(out)) == n
    return out
