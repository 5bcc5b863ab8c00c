"""The llama2.c Transformer as a Hugging Face model (``model_type: llama2c``).

Token embedding -> dropout -> L pre-norm blocks -> RMSNorm -> output projection tied to
the embedding. A block is ``h = x + Attn(RMSNorm(x)); out = h + SwiGLU(RMSNorm(h))``.
Attention has no biases, grouped-query key/value heads, rotary embeddings on
interleaved (real, imaginary) pairs, and runs through
``torch.nn.functional.scaled_dot_product_attention`` (flash kernels on a GPU in bf16).
RMSNorm is computed in fp32. Weights start at N(0, 0.02); the ``scaled_init`` weights
(``w3`` and ``wo`` in llama2.c, an inherited quirk: GPT-2 scales ``w2``) at
N(0, 0.02 / sqrt(2 L)).

Registered with ``AutoConfig`` / ``AutoModelForCausalLM``, so ``save_pretrained``,
``from_pretrained`` and :func:`biasdrift.models.load_model` work, and as the ``llama2c``
architecture of the model factory (:func:`biasdrift.models.build_model`). Presets are
the original's size configs; :func:`model_config` applies ``key=value`` overrides.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F  # noqa: N812
from torch import nn
from transformers import AutoConfig, AutoModelForCausalLM, PreTrainedConfig, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast

from biasdrift.models import ModelSize, register_architecture
from biasdrift.tinystories.presets import MODEL_ARGS, OVERRIDE_TYPES, PRESETS


class Llama2cConfig(PreTrainedConfig):
    """Model arguments of llama2.c (``model_args`` of its checkpoints)."""

    model_type = "llama2c"

    dim: int = 288
    n_layers: int = 6
    n_heads: int = 6
    n_kv_heads: int | None = None
    vocab_size: int = 32000
    hidden_dim: int | None = None
    multiple_of: int = 32
    norm_eps: float = 1e-5
    max_seq_len: int = 256
    dropout: float = 0.0
    rope_theta: float = 10000.0
    scaled_init: list[str] | None = None
    bos_token_id: int | None = 1
    eos_token_id: int | None = 2
    pad_token_id: int | None = None
    tie_word_embeddings: bool = True

    def __post_init__(self, **kwargs):
        if self.n_kv_heads is None:
            self.n_kv_heads = self.n_heads
        if self.hidden_dim is None:
            hidden = int(2 * (4 * self.dim) / 3)
            self.hidden_dim = self.multiple_of * ((hidden + self.multiple_of - 1) // self.multiple_of)
        if self.scaled_init is None:
            self.scaled_init = ["w3", "wo"]
        if self.dim % self.n_heads:
            raise ValueError(f"dim={self.dim} is not divisible by n_heads={self.n_heads}")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_kv_heads={self.n_kv_heads} does not divide n_heads={self.n_heads}")
        if (self.dim // self.n_heads) % 2:
            raise ValueError("the head dimension must be even (rotary embeddings)")
        super().__post_init__(**kwargs)

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    @property
    def num_hidden_layers(self) -> int:  # what generic HF code asks for
        return self.n_layers

    @property
    def hidden_size(self) -> int:
        return self.dim

    def model_args(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in MODEL_ARGS}


OVERRIDABLE = tuple(OVERRIDE_TYPES)


def parse_overrides(overrides: Mapping[str, Any] | Sequence[str] | None) -> dict[str, Any]:
    """Overrides as a mapping, or as the original's ``key=value`` strings (values parsed
    with ``ast.literal_eval``, plain words kept as strings)."""
    if not overrides:
        return {}
    if isinstance(overrides, Mapping):
        return dict(overrides)
    out = {}
    for item in overrides:
        if "=" not in item:
            raise ValueError(f"override {item!r} is not key=value")
        key, text = (s.strip() for s in item.split("=", 1))
        try:
            out[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            out[key] = text
    return out


def model_config(preset: str, overrides: Mapping[str, Any] | Sequence[str] | None = None, **fixed: Any):
    """A :class:`Llama2cConfig` from a preset plus overrides. Like the original's
    configurator, an override must name a known key and keep its type (an int may stand
    for a float)."""
    if preset not in PRESETS:
        raise ValueError(f"unknown model preset {preset!r}; known: {', '.join(PRESETS)}")
    values = {**PRESETS[preset]}
    defaults = Llama2cConfig()
    for key, value in {**parse_overrides(overrides), **fixed}.items():
        if key not in OVERRIDABLE:
            raise ValueError(f"model override {key!r}: unknown key; allowed: {', '.join(OVERRIDABLE)}")
        old = values.get(key, getattr(defaults, key))
        if old is not None and value is not None and not _same_type(old, value):
            raise ValueError(
                f"model override {key}={value!r}: expected {type(old).__name__}, got {type(value).__name__}"
            )
        values[key] = float(value) if isinstance(old, float) and isinstance(value, int) else value
    return Llama2cConfig(**values)


def _same_type(old: Any, new: Any) -> bool:
    if isinstance(old, bool) or isinstance(new, bool):
        return isinstance(old, bool) and isinstance(new, bool)
    if isinstance(old, float):
        return isinstance(new, int | float)
    return isinstance(new, type(old))


# --------------------------------------------------------------------------- modules
class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        out = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return out.type_as(x) * self.weight


def rope_tables(head_dim: int, positions: torch.Tensor, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos / sin of shape [T, head_dim / 2] for the given positions (fp32)."""
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=positions.device, dtype=torch.float32) / head_dim))
    angles = torch.outer(positions.float(), inv)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate interleaved (real, imaginary) pairs of x [B, H, T, D] (llama2.c layout)."""
    xf = x.float().reshape(*x.shape[:-1], -1, 2)
    real, imag = xf[..., 0], xf[..., 1]
    out = torch.stack((real * cos - imag * sin, real * sin + imag * cos), dim=-1)
    return out.flatten(-2).type_as(x)


class Attention(nn.Module):
    def __init__(self, cfg: Llama2cConfig):
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        self.wq = nn.Linear(cfg.dim, cfg.n_heads * self.head_dim, bias=False)
        self.wk = nn.Linear(cfg.dim, cfg.n_kv_heads * self.head_dim, bias=False)
        self.wv = nn.Linear(cfg.dim, cfg.n_kv_heads * self.head_dim, bias=False)
        self.wo = nn.Linear(cfg.n_heads * self.head_dim, cfg.dim, bias=False)
        self.resid_dropout = nn.Dropout(cfg.dropout)
        self.dropout = cfg.dropout

    def forward(self, x, cos, sin, mask, cache):
        batch, length, _ = x.shape
        q = self.wq(x).view(batch, length, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.wk(x).view(batch, length, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.wv(x).view(batch, length, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:  # (k, v) of the earlier positions
            k, v = torch.cat((cache[0], k), dim=2), torch.cat((cache[1], v), dim=2)
        new_cache = (k, v)
        if self.n_kv_heads != self.n_heads:
            repeats = self.n_heads // self.n_kv_heads
            k, v = k.repeat_interleave(repeats, dim=1), v.repeat_interleave(repeats, dim=1)
        out = F.scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask,
            dropout_p=self.dropout if self.training else 0.0,
            is_causal=mask is None,
        )
        out = out.transpose(1, 2).reshape(batch, length, -1)
        return self.resid_dropout(self.wo(out)), new_cache


class FeedForward(nn.Module):
    def __init__(self, cfg: Llama2cConfig):
        super().__init__()
        self.w1 = nn.Linear(cfg.dim, cfg.hidden_dim, bias=False)
        self.w2 = nn.Linear(cfg.hidden_dim, cfg.dim, bias=False)
        self.w3 = nn.Linear(cfg.dim, cfg.hidden_dim, bias=False)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x):
        return self.dropout(self.w2(F.silu(self.w1(x)) * self.w3(x)))


class Block(nn.Module):
    def __init__(self, cfg: Llama2cConfig):
        super().__init__()
        self.attention = Attention(cfg)
        self.feed_forward = FeedForward(cfg)
        self.attention_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)

    def forward(self, x, cos, sin, mask, cache):
        attn, new_cache = self.attention(self.attention_norm(x), cos, sin, mask, cache)
        h = x + attn
        return h + self.feed_forward(self.ffn_norm(h)), new_cache


class Llama2cPreTrainedModel(PreTrainedModel):
    config_class = Llama2cConfig
    base_model_prefix = "model"
    _no_split_modules: ClassVar[list[str]] = ["Block"]
    _supports_sdpa = True

    def _init_weights(self, module: nn.Module) -> None:
        std = self.config.initializer_range if hasattr(self.config, "initializer_range") else 0.02
        if isinstance(module, nn.Linear):
            if getattr(module, "_scaled_init", False):
                std = std / math.sqrt(2 * self.config.n_layers)
            nn.init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, RMSNorm):
            nn.init.ones_(module.weight)


class Llama2cModel(Llama2cPreTrainedModel):
    """The transformer without the output projection (hidden states per block)."""

    def __init__(self, config: Llama2cConfig):
        super().__init__(config)
        self.tok_embeddings = nn.Embedding(config.vocab_size, config.dim)
        self.dropout = nn.Dropout(config.dropout)
        self.layers = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.norm = RMSNorm(config.dim, config.norm_eps)
        for name, module in self.named_modules():
            if isinstance(module, nn.Linear) and name.rsplit(".", 1)[-1] in config.scaled_init:
                module._scaled_init = True
        self.post_init()

    def get_input_embeddings(self):
        return self.tok_embeddings

    def set_input_embeddings(self, value):
        self.tok_embeddings = value

    def forward(
        self, input_ids, attention_mask=None, past_key_values=None, use_cache=False, output_hidden_states=False
    ):
        """``input_ids`` [B, T]; ``attention_mask`` [B, past + T] (1 = token, 0 = padding);
        ``past_key_values``: per block (k, v) of the earlier positions."""
        batch, length = input_ids.shape
        past = 0 if past_key_values is None else past_key_values[0][0].shape[2]
        if past + length > self.config.max_seq_len:
            raise ValueError(f"sequence of {past + length} tokens exceeds max_seq_len={self.config.max_seq_len}")
        positions = torch.arange(past, past + length, device=input_ids.device)
        cos, sin = rope_tables(self.config.head_dim, positions, self.config.rope_theta)
        mask = None
        if attention_mask is not None or past:
            # [B, 1, T, past + T]: causal, and no attention to padding
            # (a padding query attends to itself only, so its row is never all -inf)
            keys = torch.arange(past + length, device=input_ids.device)
            mask = (keys[None, :] <= positions[:, None])[None, None]
            if attention_mask is not None:
                diagonal = (keys[None, :] == positions[:, None])[None, None]
                mask = mask & (attention_mask[:, None, None, :].bool() | diagonal)
            mask = mask.expand(batch, 1, length, past + length)
        h = self.dropout(self.tok_embeddings(input_ids))
        hidden = [h] if output_hidden_states else None
        caches = []
        for i, layer in enumerate(self.layers):
            h, cache = layer(h, cos, sin, mask, None if past_key_values is None else past_key_values[i])
            caches.append(cache)
            if output_hidden_states:
                hidden.append(h)
        return self.norm(h), hidden, (tuple(caches) if use_cache else None)


class Llama2cForCausalLM(Llama2cPreTrainedModel):
    _tied_weights_keys: ClassVar[dict[str, str]] = {"output.weight": "model.tok_embeddings.weight"}

    def __init__(self, config: Llama2cConfig):
        super().__init__(config)
        self.model = Llama2cModel(config)
        self.output = nn.Linear(config.dim, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self):
        return self.model.tok_embeddings

    def set_input_embeddings(self, value):
        self.model.tok_embeddings = value

    def get_output_embeddings(self):
        return self.output

    def set_output_embeddings(self, value):
        self.output = value

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        past_key_values=None,
        use_cache: bool = False,
        output_hidden_states: bool = False,
        logits_to_keep: int = 0,
        num_items_in_batch: torch.Tensor | int | None = None,
        **kwargs: Any,  # noqa: ARG002 - HF passes extras (e.g. return_dict)
    ) -> CausalLMOutputWithPast:
        """HF causal-LM convention: ``labels`` are aligned with ``input_ids`` and shifted
        here; -100 is ignored. With ``num_items_in_batch`` (the Trainer passes it under
        gradient accumulation) the loss is the sum over this micro-batch divided by the
        targets of the whole optimizer step, so k micro-batches add up to the full-batch
        mean exactly."""
        h, hidden, cache = self.model(input_ids, attention_mask, past_key_values, use_cache, output_hidden_states)
        if logits_to_keep and labels is None:
            h = h[:, -logits_to_keep:]
        logits = self.output(h)
        loss = None
        if labels is not None:
            loss = causal_lm_loss(logits, labels, num_items_in_batch)
        return CausalLMOutputWithPast(
            loss=loss,
            logits=logits,
            past_key_values=cache,
            hidden_states=tuple(hidden) if hidden is not None else None,
        )


def causal_lm_loss(logits, labels, num_items_in_batch=None, ignore_index: int = -100):
    """Cross-entropy of position t predicting label t+1 (logits never below fp32)."""
    if logits.dtype in (torch.float16, torch.bfloat16):
        logits = logits.float()
    targets = labels[:, 1:].reshape(-1).to(logits.device)
    flat = logits[:, :-1].reshape(-1, logits.shape[-1])
    if num_items_in_batch is None:
        return F.cross_entropy(flat, targets, ignore_index=ignore_index)
    total = F.cross_entropy(flat, targets, ignore_index=ignore_index, reduction="sum")
    if torch.is_tensor(num_items_in_batch):
        num_items_in_batch = num_items_in_batch.to(total.device)
    return total / num_items_in_batch


AutoConfig.register("llama2c", Llama2cConfig, exist_ok=True)
AutoModelForCausalLM.register(Llama2cConfig, Llama2cForCausalLM, exist_ok=True)


def _llama2c_class():
    return Llama2cForCausalLM


@register_architecture("llama2c", "clm", _llama2c_class)
def _llama2c_config(size: ModelSize, tokenizer) -> Llama2cConfig:
    """The factory's generic size -> a llama2.c config (SwiGLU width: ``size.intermediate``
    or llama2.c's rule)."""
    return Llama2cConfig(
        dim=size.hidden,
        n_layers=size.layers,
        n_heads=size.heads,
        n_kv_heads=size.kv_heads or size.heads,
        hidden_dim=size.intermediate,
        vocab_size=len(tokenizer),
        max_seq_len=size.context,
        dropout=size.dropout,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def count_parameters(model: nn.Module) -> int:
    """Distinct parameters (the tied embedding counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())


def flops_per_token(cfg: Llama2cConfig, seq_len: int, n_params: int) -> float:
    """PaLM's estimate used by llama2.c: 6 N + 12 L H Q T."""
    return 6 * n_params + 12 * cfg.n_layers * cfg.n_heads * cfg.head_dim * seq_len
