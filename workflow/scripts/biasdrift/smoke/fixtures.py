"""Smoke-tier fixtures: random-weight models with the real hub configs, and the
registry of dataset files in the real hub formats that the studies fill.

Models (``MODEL_FIXTURES``): the config of the hub model a paper config names, with the
same architecture class, vocabulary size, special-token layout and chat template, random
weights and a byte-level BPE or WordPiece tokenizer trained here on the demo generators'
text. GPT-2 124M, DistilGPT-2, bert-base-uncased, DistilBERT-SST-2 and RoBERTa-base are
their real configs; the 7-8B chat models keep their vocabulary, grouped-query ratio, rope
and chat template but are scaled to 2 blocks of width 512 (``ModelFixture.scaled`` says
what changed), since 7B weights do not fit a 2-core CPU run.

Everything here is importable at parse time (no torch at module level)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from biasdrift import plugins
from biasdrift.config import from_schema

log = logging.getLogger(__name__)

MODELS_DIR = "results/smoke/models"
DATASETS_DIR = "results/smoke/datasets"


# --------------------------------------------------------------------------- chat templates
# The hub repos' chat templates (tokenizer_config.json), in the form transformers renders.
LLAMA3_CHAT = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    " + message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
# Mistral-7B-Instruct-v0.2: no system role, and roles must alternate (both raise).
MISTRAL_CHAT = (
    "{{ bos_token }}{% for message in messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token }}"
    "{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}"
)
QWEN25_CHAT = (
    "{%- for message in messages %}"
    "{%- if loop.first and message['role'] != 'system' %}"
    "{{- '<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n' }}"
    "{%- endif %}"
    "{{- '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\n' }}{%- endif %}"
)


# --------------------------------------------------------------------------- tokenizers
@dataclass(frozen=True)
class TokenizerLayout:
    """The special tokens of a hub tokenizer, trained here on local text."""

    kind: str  # "bpe" (byte level) or "wordpiece"
    specials: tuple[str, ...] = ()
    bos: str | None = None
    eos: str | None = None
    unk: str | None = None
    pad: str | None = None  # None as on the hub (GPT-2, Llama): loaders must cope
    add_bos: bool = False  # the tokenizer prepends bos (Llama 2/3, Mistral)
    roberta: bool = False  # <s> $A </s>
    lowercase: bool = False
    vocab_size: int = 4000


TOKENIZERS: dict[str, TokenizerLayout] = {
    "gpt2": TokenizerLayout("bpe", ("<|endoftext|>",), bos="<|endoftext|>", eos="<|endoftext|>", unk="<|endoftext|>"),
    "llama2": TokenizerLayout("bpe", ("<unk>", "<s>", "</s>"), bos="<s>", eos="</s>", unk="<unk>", add_bos=True),
    "llama3": TokenizerLayout(
        "bpe",
        ("<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
        bos="<|begin_of_text|>",
        eos="<|eot_id|>",
        add_bos=True,
    ),
    "qwen2": TokenizerLayout(
        "bpe", ("<|endoftext|>", "<|im_start|>", "<|im_end|>"), eos="<|im_end|>", pad="<|endoftext|>"
    ),
    "roberta": TokenizerLayout(
        "bpe",
        ("<s>", "<pad>", "</s>", "<unk>", "<mask>"),
        bos="<s>",
        eos="</s>",
        unk="<unk>",
        pad="<pad>",
        roberta=True,
    ),
    "bert": TokenizerLayout("wordpiece", lowercase=True),
}

# Extra text providers for the fixture tokenizers' corpus: a study whose prompts need
# words the demo generators lack registers a function returning texts here (from its
# smoke module).
CORPUS_TEXTS: list[Callable[[], list[str]]] = []
CORPUS_GENERATORS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("neutral_text", {"n_documents": 2000}),
    ("circuits_world", {"n_documents": 3000}),
    ("specdec_world", {"n_documents": 1000}),
    ("specdec_news", {"n_articles": 500}),
    ("politune_dialogues", {"n_documents": 1000}),
)


def corpus_texts() -> list[str]:
    from biasdrift import corpora

    texts: list[str] = []
    for name, params in CORPUS_GENERATORS:
        texts += corpora.generate(name, params, 0)["text"].tolist()
    plugins.load("smoke")
    for provider in CORPUS_TEXTS:
        texts += list(provider())
    return texts


def train_fixture_tokenizer(layout: TokenizerLayout, texts: list[str], chat_template: str | None):
    """A ``PreTrainedTokenizerFast`` with ``layout``'s special tokens."""
    from tokenizers import processors
    from transformers import PreTrainedTokenizerFast

    from biasdrift.tokenization import TRAINERS, TokenizerConfig, byte_level_bpe

    if layout.kind == "wordpiece":
        cfg = from_schema(TokenizerConfig, kind="wordpiece", vocab_size=layout.vocab_size, lowercase=layout.lowercase)
        tokenizer = TRAINERS["wordpiece"](texts, cfg)
    else:
        tok = byte_level_bpe(texts, layout.vocab_size, 2, layout.specials, layout.lowercase)
        if layout.roberta:
            tok.post_processor = processors.TemplateProcessing(
                single="<s> $A </s>",
                pair="<s> $A </s> </s> $B </s>",
                special_tokens=[("<s>", tok.token_to_id("<s>")), ("</s>", tok.token_to_id("</s>"))],
            )
        elif layout.add_bos:
            tok.post_processor = processors.Sequence(
                [
                    processors.ByteLevel(trim_offsets=False),
                    processors.TemplateProcessing(
                        single=f"{layout.bos} $A",
                        pair=f"{layout.bos} $A {layout.bos} $B",
                        special_tokens=[(layout.bos, tok.token_to_id(layout.bos))],
                    ),
                ]
            )
        named = {"bos_token": layout.bos, "eos_token": layout.eos, "unk_token": layout.unk, "pad_token": layout.pad}
        if layout.roberta:
            named.update(cls_token="<s>", sep_token="</s>", mask_token="<mask>")
        tokenizer = PreTrainedTokenizerFast(
            tokenizer_object=tok,
            model_input_names=["input_ids", "attention_mask"],
            **{k: v for k, v in named.items() if v is not None},
        )
        extra = [s for s in layout.specials if s not in named.values()]
        if extra:
            tokenizer.add_special_tokens({"additional_special_tokens": extra})
    if chat_template:
        tokenizer.chat_template = chat_template
    return tokenizer


# --------------------------------------------------------------------------- models
@dataclass(frozen=True)
class ModelFixture:
    """A stand-in for hub model ``hub_id``: its config class and values, random weights."""

    hub_id: str
    model_type: str  # transformers' config model_type (AutoConfig.for_model)
    auto_class: str  # AutoModelForCausalLM, AutoModelForMaskedLM, AutoModelForSequenceClassification
    tokenizer: str  # a key of TOKENIZERS
    config: dict[str, Any] = field(default_factory=dict)  # values over the config class's defaults
    chat_template: str | None = None
    scaled: str = ""  # what differs from the hub config (empty: the hub config itself)


_GPT2 = {"vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12, "n_head": 12}
_SCALED_7B = "2 blocks of width 512 (8 query heads of 64) instead of 32 of width 4096; the rest as on the hub"

MODEL_FIXTURES: dict[str, ModelFixture] = {
    "gpt2": ModelFixture("openai-community/gpt2", "gpt2", "AutoModelForCausalLM", "gpt2", _GPT2),
    "distilgpt2": ModelFixture(
        "distilbert/distilgpt2", "gpt2", "AutoModelForCausalLM", "gpt2", {**_GPT2, "n_layer": 6}
    ),
    "gpt2-large": ModelFixture(
        "openai-community/gpt2-large",
        "gpt2",
        "AutoModelForCausalLM",
        "gpt2",
        {**_GPT2, "n_embd": 1280, "n_layer": 36, "n_head": 20},
    ),
    "bert-base-uncased": ModelFixture(
        "google-bert/bert-base-uncased",
        "bert",
        "AutoModelForMaskedLM",
        "bert",
        {"vocab_size": 30522, "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12},
    ),
    "distilbert-sst2": ModelFixture(
        "distilbert/distilbert-base-uncased-finetuned-sst-2-english",
        "distilbert",
        "AutoModelForSequenceClassification",
        "bert",
        {"vocab_size": 30522, "id2label": {0: "NEGATIVE", 1: "POSITIVE"}, "label2id": {"NEGATIVE": 0, "POSITIVE": 1}},
    ),
    "roberta-hate": ModelFixture(
        "facebook/roberta-hate-speech-dynabench-r4-target",
        "roberta",
        "AutoModelForSequenceClassification",
        "roberta",
        {
            "vocab_size": 50265,
            "max_position_embeddings": 514,
            "type_vocab_size": 1,
            "id2label": {0: "nothate", 1: "hate"},
            "label2id": {"nothate": 0, "hate": 1},
        },
    ),
    "llama2-7b": ModelFixture(
        "meta-llama/Llama-2-7b-hf",
        "llama",
        "AutoModelForCausalLM",
        "llama2",
        {
            "vocab_size": 32000,
            "hidden_size": 512,
            "intermediate_size": 1376,
            "num_hidden_layers": 2,
            "num_attention_heads": 8,
            "num_key_value_heads": 8,
            "max_position_embeddings": 4096,
            "rms_norm_eps": 1e-5,
        },
        scaled=_SCALED_7B + " (no grouped-query attention, as in Llama 2 7B)",
    ),
    "llama3-8b-instruct": ModelFixture(
        "meta-llama/Meta-Llama-3-8B-Instruct",
        "llama",
        "AutoModelForCausalLM",
        "llama3",
        {
            "vocab_size": 128256,
            "hidden_size": 512,
            "intermediate_size": 1792,
            "num_hidden_layers": 2,
            "num_attention_heads": 8,
            "num_key_value_heads": 2,  # 32 : 8 on the hub
            "max_position_embeddings": 8192,
            "rope_theta": 500000.0,
            "rms_norm_eps": 1e-5,
        },
        chat_template=LLAMA3_CHAT,
        scaled=_SCALED_7B + "; 2 key/value heads for 8 query heads (8 for 32 on the hub)",
    ),
    "mistral-7b-instruct": ModelFixture(
        "mistralai/Mistral-7B-Instruct-v0.2",
        "mistral",
        "AutoModelForCausalLM",
        "llama2",
        {
            "vocab_size": 32000,
            "hidden_size": 512,
            "intermediate_size": 1792,
            "num_hidden_layers": 2,
            "num_attention_heads": 8,
            "num_key_value_heads": 2,
            "max_position_embeddings": 32768,
            "rope_theta": 1000000.0,
            "sliding_window": None,
        },
        chat_template=MISTRAL_CHAT,
        scaled=_SCALED_7B + "; 2 key/value heads for 8 query heads (8 for 32 on the hub)",
    ),
    "qwen25-7b-instruct": ModelFixture(
        "Qwen/Qwen2.5-7B-Instruct",
        "qwen2",
        "AutoModelForCausalLM",
        "qwen2",
        {
            "vocab_size": 152064,
            "hidden_size": 512,
            "intermediate_size": 1792,
            "num_hidden_layers": 2,
            "num_attention_heads": 8,
            "num_key_value_heads": 2,  # 28 : 4 on the hub
            "max_position_embeddings": 32768,
            "rope_theta": 1000000.0,
            "tie_word_embeddings": False,
        },
        chat_template=QWEN25_CHAT,
        scaled="2 blocks of width 512 instead of 28 of width 3584; 2 key/value heads for 8 query heads",
    ),
}


def model_fixture(name: str) -> ModelFixture:
    if name not in MODEL_FIXTURES:
        raise KeyError(f"unknown smoke model fixture {name!r}; known: {', '.join(sorted(MODEL_FIXTURES))}")
    return MODEL_FIXTURES[name]


def build_model_fixture(name: str, out_dir: str | Path, seed: int = 0) -> dict[str, Any]:
    """Write fixture ``name`` (config, random weights, tokenizer) to ``out_dir`` with
    ``save_pretrained``, so ``from_pretrained(out_dir)`` loads it like the hub model."""
    import torch
    import transformers

    from biasdrift.runtime import atomic_path

    spec = model_fixture(name)
    layout = TOKENIZERS[spec.tokenizer]
    tokenizer = train_fixture_tokenizer(layout, corpus_texts(), spec.chat_template)
    specials = {
        key: tokenizer.convert_tokens_to_ids(token)
        for key, token in (("bos_token_id", layout.bos), ("eos_token_id", layout.eos), ("pad_token_id", layout.pad))
        if token is not None
    }
    if spec.tokenizer == "bert":
        specials["pad_token_id"] = tokenizer.pad_token_id
    config = transformers.AutoConfig.for_model(spec.model_type, **{**spec.config, **specials})
    if len(tokenizer) > config.vocab_size:
        raise ValueError(f"fixture {name}: tokenizer has {len(tokenizer)} entries > vocab_size {config.vocab_size}")
    torch.manual_seed(seed)
    model = getattr(transformers, spec.auto_class).from_config(config)
    with atomic_path(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    n_params = sum(p.numel() for p in model.parameters())
    log.info(
        "smoke fixture %s (%s): %.1fM parameters, tokenizer %d entries",
        name,
        spec.hub_id,
        n_params / 1e6,
        len(tokenizer),
    )
    return {
        "fixture": name,
        "stands_for": spec.hub_id,
        "model_type": spec.model_type,
        "parameters": n_params,
        "tokenizer_entries": len(tokenizer),
        "vocab_size": config.vocab_size,
        "scaled": spec.scaled or "no: the hub config",
        "chat_template": spec.chat_template is not None,
    }


# --------------------------------------------------------------------------- datasets
@dataclass(frozen=True)
class DatasetFixture:
    """A local file in the format of hub dataset ``hub_id`` (columns, nesting, splits)."""

    name: str  # the file name, with its extension: toxigen-train.parquet
    hub_id: str
    build: Callable[[Path, int], dict[str, Any]]  # (out_path, seed) -> stats; writes out_path


DATASET_FIXTURES: dict[str, DatasetFixture] = {}


def register_dataset_fixture(name: str, hub_id: str) -> Callable:
    """Register ``build(out_path, seed) -> stats`` as dataset fixture ``name`` (from a
    study's ``biasdrift.<study>.smoke`` module)."""
    if "/" in name or "." not in name:
        raise ValueError(f"dataset fixture name {name!r} must be a file name with an extension")

    def decorate(build: Callable[[Path, int], dict[str, Any]]) -> Callable:
        if name in DATASET_FIXTURES and DATASET_FIXTURES[name].build is not build:
            raise ValueError(f"dataset fixture {name!r} is registered twice")
        DATASET_FIXTURES[name] = DatasetFixture(name, hub_id, build)
        return build

    return decorate


def dataset_fixtures() -> dict[str, DatasetFixture]:
    plugins.load("smoke")
    return DATASET_FIXTURES


def build_dataset_fixture(name: str, out_path: str | Path, seed: int = 0) -> dict[str, Any]:
    from biasdrift.runtime import atomic_path

    fixtures = dataset_fixtures()
    if name not in fixtures:
        raise KeyError(f"unknown smoke dataset fixture {name!r}; known: {', '.join(sorted(fixtures))}")
    fixture = fixtures[name]
    with atomic_path(out_path) as tmp:
        stats = fixture.build(Path(tmp), seed)
    log.info("smoke dataset %s (%s format): %s", name, fixture.hub_id, stats)
    return {"fixture": name, "stands_for": fixture.hub_id, **stats}


def fixture_names() -> dict[str, list[str]]:
    """Model and dataset fixture names (the rules' wildcard constraints)."""
    return {"models": sorted(MODEL_FIXTURES), "datasets": sorted(dataset_fixtures())}
