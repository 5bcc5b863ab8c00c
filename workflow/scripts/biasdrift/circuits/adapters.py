"""Where the EAP graph lives inside a Hugging Face causal LM: one adapter per attention
layout, working on the model's own modules (no TransformerLens, no weight copies).

An adapter names, per block, the norm before attention, the query/key/value projection(s),
the output projection, the norm before the MLP and the MLP; and the final norm. It can
compute the per-head outputs from the output projection's input, and can run the q/k/v
projections on *separate per-head copies* of the residual stream ("split q/k/v inputs"):
that is what gives every head's query, key and value input its own gradient and its own
patched value. Grouped-query attention is handled by mapping each query head to its
key/value group (the key of query head h is computed from group h // (H / kv_heads), with
that group's weights; nothing is trimmed), while the attention module runs with one key
and value per query head.

Supported: ``gpt2`` (Conv1D ``c_attn`` holding q, k and v) and the Llama layout
(``llama``, ``mistral``, ``qwen2``: ``q_proj``/``k_proj``/``v_proj``/``o_proj``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

SUPPORTED = ("gpt2", "llama", "mistral", "qwen2")


class UnsupportedModelError(ValueError):
    """The model's attention layout has no adapter; the message names the model type."""


@dataclass
class Block:
    attn_norm: nn.Module
    attn: nn.Module
    out_proj: nn.Module
    mlp_norm: nn.Module
    mlp: nn.Module


def check_supported(config: Any, where: str = "model") -> str:
    """The adapter name for a transformers config, or a clear error (before any weights load)."""
    model_type = getattr(config, "model_type", None)
    if model_type not in SUPPORTED:
        raise UnsupportedModelError(
            f"{where}: attention layout of model_type {model_type!r} is not supported by the EAP "
            f"adapters (supported: {', '.join(SUPPORTED)}); parallel attention/MLP blocks and "
            "post-attention norms cannot be split into per-head edges"
        )
    if model_type == "gpt2" and getattr(config, "add_cross_attention", False):
        raise UnsupportedModelError(f"{where}: GPT-2 with cross-attention is not supported")
    return model_type


class Adapter:
    """Common interface; subclasses fill in the layout."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.config = model.config
        self.blocks: list[Block] = []
        self.final_norm: nn.Module
        self.n_layers = 0
        self.n_heads = 0
        self.n_kv_heads = 0
        self.d_model = 0
        self.d_head = 0

    @property
    def n_ctx(self) -> int:
        return int(getattr(self.config, "n_positions", None) or self.config.max_position_embeddings)

    def embed(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model.get_input_embeddings()(input_ids)

    def head_outputs(self, layer: int, z: torch.Tensor) -> torch.Tensor:
        """Per-head contributions to the residual stream, ``[B, T, H, d_model]``, from the
        output projection's input ``z`` ``[B, T, H*d_head]`` (output bias excluded)."""
        raise NotImplementedError

    def split_qkv(self, layer: int, normed: Callable[[], torch.Tensor]) -> contextlib.AbstractContextManager:
        """While active, the q/k/v projection(s) of ``layer`` ignore their input and return
        projections of ``normed()`` ``[B, T, 3H, d_model]`` (the normed per-head copies,
        q heads then k heads then v heads)."""
        raise NotImplementedError


@contextlib.contextmanager
def _override_forward(module: nn.Module, forward: Callable[..., torch.Tensor]) -> Iterator[None]:
    """Replace ``module.forward`` on the instance (hooks still run); restore on exit."""
    module.forward = forward  # type: ignore[method-assign]
    try:
        yield
    finally:
        del module.forward


class GPT2Adapter(Adapter):
    def __init__(self, model: nn.Module):
        super().__init__(model)
        body = model.transformer
        cfg = self.config
        self.n_layers, self.n_heads, self.d_model = cfg.n_layer, cfg.n_head, cfg.n_embd
        self.n_kv_heads = self.n_heads
        self.d_head = self.d_model // self.n_heads
        self.blocks = [Block(b.ln_1, b.attn, b.attn.c_proj, b.ln_2, b.mlp) for b in body.h]
        self.final_norm = body.ln_f

    def head_outputs(self, layer: int, z: torch.Tensor) -> torch.Tensor:
        weight = self.blocks[layer].out_proj.weight  # Conv1D [H*dh, d]: y = z @ W + b
        heads = z.view(*z.shape[:-1], self.n_heads, self.d_head)
        return torch.einsum("bthe,hed->bthd", heads, weight.view(self.n_heads, self.d_head, self.d_model))

    def split_qkv(self, layer: int, normed: Callable[[], torch.Tensor]):
        c_attn = self.blocks[layer].attn.c_attn  # Conv1D [d, 3d]: columns q | k | v, each head-major
        h, dh, d = self.n_heads, self.d_head, self.d_model

        def forward(_hidden):
            ys = normed()  # [B, T, 3H, d]
            ys = ys.view(*ys.shape[:2], 3, h, d)
            out = torch.einsum("btxhd,dxhe->btxhe", ys, c_attn.weight.view(d, 3, h, dh))
            out = out + c_attn.bias.view(3, h, dh)
            return out.reshape(*ys.shape[:2], 3 * h * dh)

        return _override_forward(c_attn, forward)


class LlamaAdapter(Adapter):
    """Llama, Mistral, Qwen2: RMSNorm, separate q/k/v projections, optional GQA."""

    def __init__(self, model: nn.Module):
        super().__init__(model)
        body = model.model
        cfg = self.config
        self.n_layers, self.n_heads, self.d_model = cfg.num_hidden_layers, cfg.num_attention_heads, cfg.hidden_size
        self.n_kv_heads = getattr(cfg, "num_key_value_heads", None) or self.n_heads
        if self.n_heads % self.n_kv_heads:
            raise UnsupportedModelError(f"{self.n_kv_heads} key/value heads do not divide {self.n_heads} heads")
        self.blocks = [
            Block(b.input_layernorm, b.self_attn, b.self_attn.o_proj, b.post_attention_layernorm, b.mlp)
            for b in body.layers
        ]
        self.d_head = self.blocks[0].attn.head_dim
        self.final_norm = body.norm

    def head_outputs(self, layer: int, z: torch.Tensor) -> torch.Tensor:
        weight = self.blocks[layer].out_proj.weight  # Linear [d, H*dh]: y = z @ W.T (+ b)
        heads = z.view(*z.shape[:-1], self.n_heads, self.d_head)
        return torch.einsum("bthe,dhe->bthd", heads, weight.view(self.d_model, self.n_heads, self.d_head))

    def split_qkv(self, layer: int, normed: Callable[[], torch.Tensor]):
        attn = self.blocks[layer].attn
        h, kv, dh, d = self.n_heads, self.n_kv_heads, self.d_head, self.d_model

        def project(proj: nn.Module, part: int, groups: int) -> Callable:
            def forward(_hidden):
                ys = normed()[:, :, part * h : (part + 1) * h]  # [B, T, H, d]
                ys = ys.reshape(*ys.shape[:2], groups, h // groups, d)
                out = torch.einsum("btgrd,ged->btgre", ys, proj.weight.view(groups, dh, d))
                if proj.bias is not None:
                    out = out + proj.bias.view(groups, 1, dh)
                return out.reshape(*ys.shape[:2], h * dh)

            return forward

        @contextlib.contextmanager
        def active():
            groups_before = attn.num_key_value_groups
            attn.num_key_value_groups = 1  # keys and values now come one per query head
            try:
                with (
                    _override_forward(attn.q_proj, project(attn.q_proj, 0, h)),
                    _override_forward(attn.k_proj, project(attn.k_proj, 1, kv)),
                    _override_forward(attn.v_proj, project(attn.v_proj, 2, kv)),
                ):
                    yield
            finally:
                attn.num_key_value_groups = groups_before

        return active()


ADAPTERS: dict[str, type[Adapter]] = {
    "gpt2": GPT2Adapter,
    "llama": LlamaAdapter,
    "mistral": LlamaAdapter,
    "qwen2": LlamaAdapter,
}


def adapter_for(model: nn.Module, where: str = "model") -> Adapter:
    return ADAPTERS[check_supported(model.config, where)](model)
