"""The model factory: tiny architectures built from scratch, and one loader for every
kind of model alias (hub id, local path, built by the workflow).

A model ref is the dict :func:`biasdrift.config.model_ref` makes from the config and
rules pass as a param; it never holds a token.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from biasdrift import plugins
from biasdrift.runtime import hf_token

log = logging.getLogger(__name__)


@dataclass
class ModelSize:
    """Architecture-independent size of a model built from scratch."""

    SCHEMA: ClassVar[str] = "$defs.size"  # the schema section it mirrors: its defaults

    layers: int = field(metadata={"help": "Transformer blocks."})
    heads: int = field(metadata={"help": "Attention (query) heads per block."})
    kv_heads: int | None = field(metadata={"help": "Key/value heads (GQA, llama); None = heads."})
    hidden: int = field(metadata={"help": "Residual stream width."})
    intermediate: int | None = field(metadata={"help": "MLP width; None = 4 x hidden."})
    context: int = field(metadata={"help": "Maximum sequence length."})
    dropout: float = field(metadata={"help": "Dropout probability."})

    def __post_init__(self) -> None:
        if self.hidden % self.heads:
            raise ValueError(f"hidden={self.hidden} is not divisible by heads={self.heads}")
        if self.kv_heads is not None and self.heads % self.kv_heads:
            raise ValueError(f"kv_heads={self.kv_heads} does not divide heads={self.heads}")

    @property
    def mlp(self) -> int:
        return self.intermediate or 4 * self.hidden


@dataclass(frozen=True)
class Architecture:
    name: str
    task: str  # "clm" (causal LM) or "mlm" (masked LM)
    make_config: Callable[[ModelSize, Any], Any]
    model_class: Callable[[], type]


ARCHITECTURES: dict[str, Architecture] = {}


def register_architecture(name: str, task: str, model_class: Callable[[], type]) -> Callable:
    """Register ``make_config(size, tokenizer) -> PretrainedConfig`` under ``name``."""
    if task not in {"clm", "mlm"}:
        raise ValueError(f"task must be clm or mlm, got {task!r}")

    def decorate(make_config: Callable[[ModelSize, Any], Any]) -> Callable:
        ARCHITECTURES[name] = Architecture(name, task, make_config, model_class)
        return make_config

    return decorate


def _special_ids(tokenizer) -> dict[str, int | None]:
    return {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }


def _gpt2_class():
    from transformers import GPT2LMHeadModel

    return GPT2LMHeadModel


def _llama_class():
    from transformers import LlamaForCausalLM

    return LlamaForCausalLM


def _bert_class():
    from transformers import BertForMaskedLM

    return BertForMaskedLM


@register_architecture("gpt2", "clm", _gpt2_class)
def _gpt2_config(size: ModelSize, tokenizer):
    from transformers import GPT2Config

    if size.kv_heads not in (None, size.heads):
        raise ValueError("gpt2 has no grouped-query attention; use arch llama for kv_heads")
    return GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=size.context,
        n_embd=size.hidden,
        n_layer=size.layers,
        n_head=size.heads,
        n_inner=size.mlp,
        resid_pdrop=size.dropout,
        embd_pdrop=size.dropout,
        attn_pdrop=size.dropout,
        **_special_ids(tokenizer),
    )


@register_architecture("llama", "clm", _llama_class)
def _llama_config(size: ModelSize, tokenizer):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=size.hidden,
        intermediate_size=size.mlp,
        num_hidden_layers=size.layers,
        num_attention_heads=size.heads,
        num_key_value_heads=size.kv_heads or size.heads,
        max_position_embeddings=size.context,
        tie_word_embeddings=False,
        **_special_ids(tokenizer),
    )


@register_architecture("bert", "mlm", _bert_class)
def _bert_config(size: ModelSize, tokenizer):
    from transformers import BertConfig

    if size.kv_heads not in (None, size.heads):
        raise ValueError("bert has no grouped-query attention; use arch llama for kv_heads")
    return BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=size.hidden,
        num_hidden_layers=size.layers,
        num_attention_heads=size.heads,
        intermediate_size=size.mlp,
        max_position_embeddings=size.context,
        hidden_dropout_prob=size.dropout,
        attention_probs_dropout_prob=size.dropout,
        pad_token_id=tokenizer.pad_token_id,
    )


def get_architecture(name: str) -> Architecture:
    if name not in ARCHITECTURES:
        plugins.load("architectures")  # studies register theirs (tinystories: llama2c)
    if name not in ARCHITECTURES:
        raise KeyError(f"unknown architecture {name!r}; known: {', '.join(sorted(ARCHITECTURES))}")
    return ARCHITECTURES[name]


def build_model(arch: str, size: ModelSize, tokenizer):
    """A freshly initialised fp32 model of ``arch`` (initialisation uses the torch RNG:
    seed it first)."""
    spec = get_architecture(arch)
    config = spec.make_config(size, tokenizer)
    model = spec.model_class()(config)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("built %s with %s parameters (%s)", arch, f"{n_params:,}", size)
    return model


# --------------------------------------------------------------------------- loading
AUTO_CLASSES = {
    "causal_lm": "AutoModelForCausalLM",
    "masked_lm": "AutoModelForMaskedLM",
    "sequence_classification": "AutoModelForSequenceClassification",
    "base": "AutoModel",
}


class ModelLoadError(RuntimeError):
    """A model alias cannot be loaded; the message names the alias."""


def pretrained_source(ref: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(name_or_path, kwargs)`` for ``from_pretrained`` of a model ref.

    Hub models get their revision and the token from ``HF_TOKEN``; local ones are read
    with ``local_files_only``. ``trust_remote_code`` is whatever the alias asks (off by
    default).
    """
    alias = ref.get("alias", "?")
    source = ref.get("source")
    kwargs: dict[str, Any] = {"trust_remote_code": bool(ref.get("trust_remote_code", False))}
    if source == "hf_id":
        kwargs.update(revision=ref.get("revision") or "main", token=hf_token())
        return ref["hf_id"], kwargs
    if source in {"path", "build"}:
        path = Path(ref["path"])
        if not path.is_dir():
            hint = " (rule pretrain_lm builds it)" if source == "build" else ""
            raise ModelLoadError(f"model alias {alias!r}: directory {path} does not exist{hint}")
        kwargs["local_files_only"] = True
        return str(path), kwargs
    raise ModelLoadError(f"model alias {alias!r}: unknown source {source!r} (expected hf_id, path or build)")


def load_tokenizer(ref: dict[str, Any], **kwargs: Any):
    from transformers import AutoTokenizer

    name, base = pretrained_source(ref)
    tokenizer = AutoTokenizer.from_pretrained(name, **{**base, **kwargs})
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_model(
    ref: dict[str, Any],
    kind: str = "causal_lm",
    device: Any = "cpu",
    dtype: Any = None,
    **kwargs: Any,
):
    """Load model ``ref`` with the real ``from_pretrained`` of the ``kind`` auto class.
    Studies' architectures (e.g. tinystories' ``llama2c``) are registered with the Auto
    classes first, so a directory saved from one of them loads like any other."""
    import transformers

    if kind not in AUTO_CLASSES:
        raise ValueError(f"kind must be one of {', '.join(AUTO_CLASSES)}; got {kind!r}")
    name, base = pretrained_source(ref)
    plugins.load("architectures")
    if dtype is not None:
        base["dtype"] = dtype
    auto = getattr(transformers, AUTO_CLASSES[kind])
    log.info(
        "loading %s model %r from %s%s",
        kind,
        ref.get("alias"),
        name,
        f"@{base['revision']}" if "revision" in base else "",
    )
    model = auto.from_pretrained(name, **{**base, **kwargs})
    return model.to(device)


def download_patterns(files: list[str]) -> list[str]:
    """Config, tokenizer and weight files of a hub repo: safetensors weights when the
    repo has them, the pickled ``*.bin`` ones only when it has nothing else (never both,
    and never other frameworks' weights). Code files come along but only run with
    ``trust_remote_code``."""
    patterns = ["*.json", "*.model", "*.txt", "*.jinja", "*.tiktoken", "*.py"]
    if any(f.endswith(".safetensors") for f in files):
        patterns.append("*.safetensors")
    elif any(f.endswith(".bin") for f in files):
        patterns.append("*.bin")
    else:
        raise ModelLoadError(f"no safetensors or .bin weights among the hub files: {sorted(files)[:20]}")
    return patterns


def download_model(ref: dict[str, Any], marker_path: str | Path) -> dict[str, Any]:
    """Fetch a hub model into the local Hugging Face cache (rule download_model, run on
    a node with internet), so compute jobs load it with ``from_pretrained`` offline.
    Writes a marker JSON naming the resolved commit."""
    from huggingface_hub import HfApi, snapshot_download

    from biasdrift.runtime import write_json

    if ref.get("source") != "hf_id":
        raise ModelLoadError(f"model alias {ref.get('alias')!r} is not a hub model; nothing to download")
    revision = ref.get("revision") or "main"
    files = HfApi().list_repo_files(ref["hf_id"], revision=revision, token=hf_token())
    local = Path(
        snapshot_download(
            repo_id=ref["hf_id"],
            revision=revision,
            token=hf_token(),
            allow_patterns=download_patterns(files),
        )
    )
    info = {
        "alias": ref["alias"],
        "hf_id": ref["hf_id"],
        "revision": ref.get("revision") or "main",
        "resolved_commit": local.name,
        "files": sorted(p.name for p in local.iterdir()),
    }
    write_json(marker_path, info)
    log.info("downloaded %s@%s (commit %s)", ref["hf_id"], info["revision"], local.name)
    return info
