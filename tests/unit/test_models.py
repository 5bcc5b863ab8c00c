"""Model factory: tiny architectures, local tokenizers, one loader for every alias kind."""

from __future__ import annotations

import random
import subprocess
import sys
from collections import Counter
from itertools import pairwise
from pathlib import Path

import pytest
import torch
import transformers

from biasdrift import corpora, models
from biasdrift.config import from_schema
from biasdrift.tokenization import TokenizerConfig, train_tokenizer, wordpiece_vocab

REPO = Path(__file__).resolve().parents[2]

ARCH_KIND = {"gpt2": ("bpe", "causal_lm"), "llama": ("bpe", "causal_lm"), "bert": ("wordpiece", "masked_lm")}


@pytest.fixture(scope="module")
def texts():
    frame = corpora.generate("neutral_text", {"n_documents": 300}, 0)
    return frame["text"].tolist()


@pytest.fixture(scope="module")
def tokenizers(texts, tmp_path_factory):
    out = {}
    for kind in ("bpe", "wordpiece"):
        path = tmp_path_factory.mktemp(kind) / "tok"
        train_tokenizer(
            texts, from_schema(TokenizerConfig, kind=kind, vocab_size=300, lowercase=kind == "wordpiece"), path
        )
        out[kind] = transformers.AutoTokenizer.from_pretrained(path, local_files_only=True)
    return out


def test_bpe_tokenizer_roundtrips_text(tokenizers, texts):
    tok = tokenizers["bpe"]
    ids = tok(texts[0])["input_ids"]
    assert tok.decode(ids) == texts[0]
    assert tok.eos_token == "<|endoftext|>" and tok.pad_token_id != tok.eos_token_id
    assert "token_type_ids" not in tok(texts[0])


def test_wordpiece_tokenizer_adds_cls_sep(tokenizers):
    tok = tokenizers["wordpiece"]
    enc = tok("The Farmer opened a letter.")
    assert enc["input_ids"][0] == tok.cls_token_id and enc["input_ids"][-1] == tok.sep_token_id
    assert tok.decode(enc["input_ids"], skip_special_tokens=True) == "the farmer opened a letter."
    assert tok.mask_token == "[MASK]"


def test_tokenizer_needs_text(tmp_path):
    with pytest.raises(ValueError, match="empty corpus"):
        train_tokenizer(["", "  "], from_schema(TokenizerConfig, kind="bpe"), tmp_path / "t")
    with pytest.raises(ValueError, match="unknown tokenizer kind 'spm'"):
        train_tokenizer(["a"], from_schema(TokenizerConfig, kind="spm"), tmp_path / "t")


@pytest.mark.parametrize("arch", sorted(ARCH_KIND))
def test_build_save_and_reload_like_a_hub_model(arch, tokenizers, tmp_path):
    tok_kind, kind = ARCH_KIND[arch]
    tok = tokenizers[tok_kind]
    torch.manual_seed(0)
    size = from_schema(
        models.ModelSize, layers=2, heads=4, kv_heads=2 if arch == "llama" else None, hidden=32, context=64
    )
    model = models.build_model(arch, size, tok).eval()
    out = tmp_path / arch
    model.save_pretrained(out)
    tok.save_pretrained(out)
    assert (out / "model.safetensors").is_file()
    ref = {"alias": f"tiny-{arch}", "source": "build", "path": str(out)}
    loaded = models.load_model(ref, kind=kind)
    reloaded_tok = models.load_tokenizer(ref)
    batch = reloaded_tok(["The baker fixed the window."], return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, loaded(**batch).logits)
    assert not loaded.training


def test_llama_uses_grouped_query_attention(tokenizers):
    size = from_schema(models.ModelSize, layers=1, heads=4, kv_heads=2, hidden=32, context=32)
    model = models.build_model("llama", size, tokenizers["bpe"])
    attn = model.model.layers[0].self_attn
    head_dim = 32 // 4
    assert model.config.num_key_value_heads == 2
    assert attn.q_proj.out_features == 4 * head_dim
    assert attn.k_proj.out_features == attn.v_proj.out_features == 2 * head_dim


def test_sizes_are_checked():
    with pytest.raises(ValueError, match="not divisible by heads"):
        from_schema(models.ModelSize, hidden=30, heads=4)
    with pytest.raises(ValueError, match="kv_heads=3 does not divide heads=4"):
        from_schema(models.ModelSize, heads=4, kv_heads=3)
    with pytest.raises(KeyError, match="unknown architecture 'gpt5'"):
        models.get_architecture("gpt5")


class CapturedCallError(Exception):
    pass


@pytest.fixture
def capture_from_pretrained(monkeypatch):
    calls = []

    def fake(name, **kwargs):
        calls.append((name, kwargs))
        raise CapturedCallError

    for cls in ("AutoModelForCausalLM", "AutoModelForMaskedLM", "AutoTokenizer"):
        monkeypatch.setattr(getattr(transformers, cls), "from_pretrained", fake)
    return calls


def test_hub_alias_loads_with_revision_env_token_and_no_remote_code(capture_from_pretrained, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_fromenv0000000000000000")
    ref = {
        "alias": "gpt2",
        "source": "hf_id",
        "hf_id": "openai-community/gpt2",
        "revision": "abc",
        "trust_remote_code": False,
    }
    for call in (lambda: models.load_model(ref), lambda: models.load_tokenizer(ref)):
        with pytest.raises(CapturedCallError):
            call()
    for name, kwargs in capture_from_pretrained:
        assert name == "openai-community/gpt2"
        assert kwargs["revision"] == "abc" and kwargs["token"] == "hf_fromenv0000000000000000"
        assert kwargs["trust_remote_code"] is False


def test_remote_code_only_when_the_alias_asks(capture_from_pretrained, monkeypatch):
    monkeypatch.delenv("HF_TOKEN", raising=False)
    ref = {"alias": "x", "source": "hf_id", "hf_id": "org/x", "revision": "main", "trust_remote_code": True}
    with pytest.raises(CapturedCallError):
        models.load_model(ref)
    assert capture_from_pretrained[0][1]["trust_remote_code"] is True
    assert capture_from_pretrained[0][1]["token"] is None


def test_missing_local_model_names_the_alias(tmp_path):
    with pytest.raises(
        models.ModelLoadError, match=r"model alias 'tiny-gpt2': directory .* does not exist \(rule pretrain_lm"
    ):
        models.load_model({"alias": "tiny-gpt2", "source": "build", "path": str(tmp_path / "nope")})
    with pytest.raises(models.ModelLoadError, match="unknown source 'ftp'"):
        models.load_model({"alias": "x", "source": "ftp"})
    with pytest.raises(ValueError, match="kind must be one of"):
        models.load_model({"alias": "x", "source": "path", "path": str(tmp_path)}, kind="seq2seq")


def test_download_prefers_safetensors_over_pickles():
    assert "*.safetensors" in models.download_patterns(["config.json", "model.safetensors", "pytorch_model.bin"])
    assert "*.bin" not in models.download_patterns(["config.json", "model.safetensors", "pytorch_model.bin"])
    assert "*.bin" in models.download_patterns(["config.json", "pytorch_model.bin"])
    with pytest.raises(models.ModelLoadError, match=r"no safetensors or \.bin weights"):
        models.download_patterns(["config.json", "tf_model.h5"])


def test_wordpiece_vocab_merges_the_most_frequent_pair_first_and_breaks_ties_by_order():
    words = Counter({"abab": 3, "ba": 2, "cd": 2})
    vocab = wordpiece_vocab(words, vocab_size=100, min_frequency=2, specials=["[UNK]"])
    assert vocab[:8] == ["[UNK]", "a", "b", "c", "d", "##a", "##b", "##d"]
    # pair counts: (##a, ##b) 3, (##b, ##a) 3, (a, ##b) 3, (b, ##a) 2, (c, ##d) 2: ties go to the
    # smallest pair; then abab = a ##b ##ab -> a ##bab -> abab
    assert vocab[8:] == ["##ab", "##bab", "abab", "ba", "cd"]
    assert wordpiece_vocab(words, vocab_size=9, min_frequency=2, specials=["[UNK]"]) == vocab[:9]


def test_wordpiece_training_is_the_same_in_every_process(tmp_path):
    """The Rust WordPieceTrainer numbered its ## pieces in per-process hash order, so two
    runs of the workflow trained different BERT tokenizers (and models)."""
    script = (
        "import sys; from biasdrift import corpora;"
        "from biasdrift.tokenization import TokenizerConfig, train_tokenizer;"
        "from biasdrift.config import from_schema;"
        "texts = corpora.generate('neutral_text', {'n_documents': 300}, 0)['text'].tolist();"
        "cfg = from_schema(TokenizerConfig, kind='wordpiece', vocab_size=300, lowercase=True);"
        "train_tokenizer(texts, cfg, sys.argv[1])"
    )
    outs = []
    for i in range(2):
        out = tmp_path / str(i)
        subprocess.run([sys.executable, "-c", script, str(out)], check=True, cwd=REPO / "workflow" / "scripts")
        outs.append((out / "tokenizer.json").read_bytes())
    assert outs[0] == outs[1]


def reference_wordpiece_vocab(words, vocab_size, min_frequency, specials):
    """wordpiece_vocab the slow way: recount every pair before each merge."""
    splits = {w: [w[0], *("##" + c for c in w[1:])] for w in words}
    vocab = list(dict.fromkeys([*specials, *sorted({c for w in splits for c in w}),
                                *sorted({p for parts in splits.values() for p in parts[1:]})]))  # fmt: skip
    while len(vocab) < vocab_size:
        pairs = Counter()
        for w, parts in splits.items():
            for pair in pairwise(parts):
                pairs[pair] += words[w]
        if not pairs:
            break
        (left, right), n = min(pairs.items(), key=lambda item: (-item[1], item[0]))
        if n < min_frequency:
            break
        for parts in splits.values():
            i = 0
            while i < len(parts) - 1:
                if parts[i] == left and parts[i + 1] == right:
                    parts[i : i + 2] = [left + right.removeprefix("##")]
                i += 1
        if left + right.removeprefix("##") not in vocab:
            vocab.append(left + right.removeprefix("##"))
    return vocab


@pytest.mark.parametrize("seed", range(5))
def test_wordpiece_vocab_equals_the_slow_reference(seed):
    rng = random.Random(seed)
    words = Counter({"".join(rng.choices("abcde", k=rng.randint(1, 7))): rng.randint(1, 9) for _ in range(60)})
    for size, min_frequency in ((40, 2), (200, 1)):
        expected = reference_wordpiece_vocab(words, size, min_frequency, ["[UNK]"])
        assert wordpiece_vocab(words, size, min_frequency, ["[UNK]"]) == expected
