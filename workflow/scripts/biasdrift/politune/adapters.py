"""Base models and LoRA adapters: loading (full precision or 4-bit), the identity of
the base an adapter was trained on, loading a policy (base + adapter), and merging.

An adapter directory holds peft's ``adapter_config.json`` + ``adapter_model.safetensors``
and ``politune_adapter.json``: the base model's alias and source, and a fingerprint of
its weights. Loading an adapter onto another base fails with an error naming both,
instead of peft's shape error (or, worse, silently when the shapes happen to agree).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from biasdrift.models import load_model, load_tokenizer
from biasdrift.runtime import read_json, write_json

log = logging.getLogger(__name__)

ADAPTER_META = "politune_adapter.json"
FINGERPRINT_KEYS = ("model_type", "vocab_size", "hidden_size", "num_hidden_layers", "intermediate_size")


class AdapterMismatchError(ValueError):
    """An adapter was trained on another base model than the one it is loaded onto."""


@dataclass(frozen=True)
class LoraSettings:
    """LoRA / QLoRA settings (schema: ``studies.politune.lora``)."""

    SCHEMA: ClassVar[str] = "studies.politune.lora"  # the schema section it mirrors: its defaults

    r: int = field(metadata={"help": "LoRA rank."})
    alpha: int = field(metadata={"help": "LoRA alpha (scale = alpha / r)."})
    dropout: float = field(metadata={"help": "Dropout on the LoRA branch (trl's DPO turns dropout off)."})
    target_modules: tuple[str, ...] = field(metadata={"help": "Module names that get adapters."})
    load_in_4bit: bool = field(metadata={"help": "QLoRA: NF4 4-bit base weights (bitsandbytes, CUDA)."})
    model_dtype: str = field(metadata={"help": "auto (bf16 on CUDA, fp32 on CPU), fp32 or bf16."})

    def __post_init__(self) -> None:
        object.__setattr__(self, "target_modules", tuple(self.target_modules))
        if self.r < 1 or self.alpha <= 0 or not 0 <= self.dropout < 1:
            raise ValueError(
                f"lora: need r >= 1, alpha > 0 and 0 <= dropout < 1 (got {self.r}, {self.alpha}, {self.dropout})"
            )
        if not self.target_modules:
            raise ValueError("lora.target_modules must name at least one module")

    def peft_config(self):
        from peft import LoraConfig

        return LoraConfig(
            r=self.r,
            lora_alpha=self.alpha,
            lora_dropout=self.dropout,
            target_modules=list(self.target_modules),
            bias="none",
            task_type="CAUSAL_LM",
        )


def quantization_config(lora: LoraSettings, device) -> Any:
    """NF4 with double quantization and bf16 compute (QLoRA), or None."""
    if not lora.load_in_4bit:
        return None
    import importlib.util

    import torch
    from transformers import BitsAndBytesConfig

    if getattr(device, "type", str(device)) != "cuda":
        raise ValueError("lora.load_in_4bit needs a CUDA device (bitsandbytes); run on a GPU or set it to false")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ImportError("lora.load_in_4bit needs the bitsandbytes package (environment.yml installs it)")
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


def model_dtype(lora: LoraSettings, device):
    from biasdrift.runtime import choose_dtype

    return choose_dtype(device, lora.model_dtype)


def load_base(ref: dict[str, Any], lora: LoraSettings, device, for_training: bool = False, checkpointing: bool = False):
    """The base causal LM of ``ref`` (4-bit when ``lora.load_in_4bit``), in eval mode
    unless it is loaded for training."""
    quant = quantization_config(lora, device)
    kwargs: dict[str, Any] = {}
    if quant is not None:
        kwargs.update(quantization_config=quant, device_map={"": device})
    model = load_model(ref, "causal_lm", device=device, dtype=model_dtype(lora, device), **kwargs)
    if quant is not None and for_training:
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=checkpointing)
    if not for_training:
        model.eval()
    return model


def base_fingerprint(model) -> dict[str, Any]:
    """What identifies a base model: its shape and a hash of its first embedding rows
    (rounded to bf16, so fp32 and bf16 loads of the same weights agree)."""
    import torch

    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    shape = {key: getattr(config, key, None) for key in FINGERPRINT_KEYS}
    with torch.no_grad():
        rows = model.get_input_embeddings().weight[:64].detach().to("cpu", torch.bfloat16).float().contiguous()
    digest = hashlib.sha256(rows.numpy().tobytes()).hexdigest()[:16]
    return {**shape, "embedding_sha": digest}


def base_identity(ref: dict[str, Any]) -> dict[str, Any]:
    keys = ("alias", "source", "hf_id", "revision", "path")
    return {k: ref[k] for k in keys if k in ref}


def write_adapter_meta(adapter_dir: str | Path, ref: dict[str, Any], fingerprint: dict[str, Any], **extra: Any) -> None:
    write_json(Path(adapter_dir) / ADAPTER_META, {"base": base_identity(ref), "fingerprint": fingerprint, **extra})


def check_adapter_base(adapter_dir: str | Path, ref: dict[str, Any], fingerprint: dict[str, Any]) -> dict[str, Any]:
    """Raise :class:`AdapterMismatchError` unless ``adapter_dir`` was trained on this base."""
    adapter_dir = Path(adapter_dir)
    meta_path = adapter_dir / ADAPTER_META
    if not (adapter_dir / "adapter_config.json").is_file():
        raise AdapterMismatchError(f"{adapter_dir}: not a LoRA adapter (no adapter_config.json)")
    if not meta_path.is_file():
        raise AdapterMismatchError(f"{adapter_dir}: no {ADAPTER_META}; cannot tell which base it was trained on")
    meta = read_json(meta_path)
    recorded = meta.get("fingerprint", {})
    if recorded != fingerprint:
        diff = {k: (recorded.get(k), fingerprint.get(k)) for k in set(recorded) | set(fingerprint)}
        diff = {k: v for k, v in diff.items() if v[0] != v[1]}
        raise AdapterMismatchError(
            f"{adapter_dir}: adapter trained on base {meta.get('base')} does not match model "
            f"{base_identity(ref)}; differences (adapter, model): {diff}"
        )
    return meta


def load_policy(ref: dict[str, Any], adapter_dir: str | Path | None, lora: LoraSettings, device):
    """``(model, tokenizer)``: the base, with the adapter of ``adapter_dir`` on top when
    given (checked against the base first). The model is in eval mode."""
    tokenizer = load_tokenizer(ref)
    model = load_base(ref, lora, device)
    if adapter_dir is None:
        return model, tokenizer
    from peft import PeftModel

    check_adapter_base(adapter_dir, ref, base_fingerprint(model))
    model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=False)
    model.eval()
    return model, tokenizer


def merge_adapter(model) -> Any:
    """The merged plain model (``W + alpha/r * B @ A`` in every adapted layer)."""
    return model.merge_and_unload()


def merge_and_save(
    ref: dict[str, Any], adapter_dir: str | Path, lora: LoraSettings, out_dir: str | Path, device, atol: float = 1e-5
) -> dict[str, Any]:
    """Merge an adapter into its base in fp32, check that the merged model gives the
    adapter model's logits (max |difference| <= ``atol``), and save it with the
    tokenizer in the configured dtype."""
    import dataclasses

    import torch

    from biasdrift.runtime import atomic_path

    if lora.load_in_4bit:
        raise ValueError("merging into 4-bit weights loses precision; merge with lora.load_in_4bit false")
    full = dataclasses.replace(lora, model_dtype="fp32")
    model, tokenizer = load_policy(ref, adapter_dir, full, device)
    ids = tokenizer("The town should decide.", return_tensors="pt")["input_ids"].to(device)
    with torch.no_grad():
        before = model(input_ids=ids).logits.float()
        merged = merge_adapter(model)
        after = merged(input_ids=ids).logits.float()
    diff = float((before - after).abs().max())
    if diff > atol:
        raise RuntimeError(f"merged model differs from base + adapter by {diff:.3g} > {atol}")
    merged = merged.to(model_dtype(lora, device))
    with atomic_path(out_dir) as tmp:
        merged.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    log.info("merged %s into %s (max |logit difference| %.3g)", adapter_dir, ref.get("alias"), diff)
    return {"max_abs_logit_difference": diff}
