"""The computational graph that EAP scores, and every node and edge name.

Nodes: ``input`` (token + position embeddings), one node per attention head ``a{l}.h{h}``
(its per-head output, without the output bias), one per MLP ``m{l}``, and ``logits``
(the residual stream entering the final norm). Every residual writer feeds every later
reader: the three inputs of a head (query, key, value) are separate edges
``a0.h1->a2.h3<q>``; an MLP also reads the heads of its own layer; ``logits`` reads
everything. Sequential blocks only (GPT-2, Llama); parallel attention/MLP blocks are not
supported.

Scores live in a dense matrix ``[n_forward, n_backward]``: rows are writers (forward
slots), columns readers (backward slots).

* forward: input = 0; head (l, h) = 1 + l(H+1) + h; mlp l = 1 + l(H+1) + H
* backward: head (l, h, x) = l(3H+1) + idx(x)·H + h with idx(q, k, v) = 0, 1, 2;
  mlp l = l(3H+1) + 3H; logits = the last slot

:func:`Graph.edges` is the one function that generates names; nothing else types them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

QKV = ("q", "k", "v")
INPUT, LOGITS = "input", "logits"
EDGE_RE = re.compile(r"^(?P<parent>[^-<>]+)->(?P<child>[^-<>]+)(?:<(?P<qkv>[qkv])>)?$")
NODE_RE = re.compile(r"^a(?P<layer>\d+)\.h(?P<head>\d+)$|^m(?P<mlp>\d+)$")


def head_name(layer: int, head: int) -> str:
    return f"a{layer}.h{head}"


def mlp_name(layer: int) -> str:
    return f"m{layer}"


def edge_name(parent: str, child: str, qkv: str | None = None) -> str:
    return f"{parent}->{child}" + (f"<{qkv}>" if qkv else "")


def parse_edge(name: str) -> tuple[str, str, str | None]:
    """``(parent, child node, q|k|v|None)`` of an edge name."""
    match = EDGE_RE.match(name)
    if not match:
        raise ValueError(f"not an edge name: {name!r}")
    return match["parent"], match["child"], match["qkv"]


@dataclass(frozen=True)
class Graph:
    """The EAP graph of a model with ``n_layers`` blocks of ``n_heads`` query heads."""

    n_layers: int
    n_heads: int

    def __post_init__(self) -> None:
        if self.n_layers < 1 or self.n_heads < 1:
            raise ValueError(f"a graph needs at least one layer and one head, got {self}")

    @classmethod
    def from_config(cls, config) -> Graph:
        """The graph of a transformers ``PretrainedConfig`` (no weights needed)."""
        layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layer", None)
        heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_head", None)
        if not layers or not heads:
            raise ValueError(f"config of type {type(config).__name__} names no layer or head count")
        return cls(int(layers), int(heads))

    # ------------------------------------------------------------------ sizes
    @property
    def n_forward(self) -> int:
        return 1 + self.n_layers * (self.n_heads + 1)

    @property
    def n_backward(self) -> int:
        return self.n_layers * (3 * self.n_heads + 1) + 1

    @property
    def n_nodes(self) -> int:
        return self.n_forward + 1

    @property
    def n_edges(self) -> int:
        """Closed form: sum over layers of 3H·r_l + (r_l + H), plus the edges into logits."""
        h = self.n_heads
        total = 0
        for layer in range(self.n_layers):
            upstream = 1 + layer * (h + 1)
            total += 3 * h * upstream + upstream + h
        return total + self.n_forward

    # ------------------------------------------------------------------ indices
    def fwd_head(self, layer: int, head: int) -> int:
        return 1 + layer * (self.n_heads + 1) + head

    def fwd_mlp(self, layer: int) -> int:
        return 1 + layer * (self.n_heads + 1) + self.n_heads

    def bwd_head(self, layer: int, head: int, qkv: str) -> int:
        return layer * (3 * self.n_heads + 1) + QKV.index(qkv) * self.n_heads + head

    def bwd_attn(self, layer: int) -> slice:
        """Backward slots of the 3H head inputs of ``layer`` (q heads, k heads, v heads)."""
        start = layer * (3 * self.n_heads + 1)
        return slice(start, start + 3 * self.n_heads)

    def bwd_mlp(self, layer: int) -> int:
        return layer * (3 * self.n_heads + 1) + 3 * self.n_heads

    @property
    def bwd_logits(self) -> int:
        return self.n_backward - 1

    def upstream_attn(self, layer: int) -> int:
        """Forward slots read by the heads of ``layer``: input and all earlier layers."""
        return 1 + layer * (self.n_heads + 1)

    def upstream_mlp(self, layer: int) -> int:
        """Forward slots read by MLP ``layer``: also the heads of its own layer."""
        return 1 + layer * (self.n_heads + 1) + self.n_heads

    # ------------------------------------------------------------------ names
    @cached_property
    def forward_names(self) -> list[str]:
        names = [INPUT]
        for layer in range(self.n_layers):
            names += [head_name(layer, h) for h in range(self.n_heads)] + [mlp_name(layer)]
        return names

    @cached_property
    def backward_names(self) -> list[tuple[str, str | None]]:
        """(child node, q|k|v|None) of every backward slot."""
        names: list[tuple[str, str | None]] = []
        for layer in range(self.n_layers):
            for qkv in QKV:
                names += [(head_name(layer, h), qkv) for h in range(self.n_heads)]
            names.append((mlp_name(layer), None))
        names.append((LOGITS, None))
        return names

    @property
    def node_names(self) -> list[str]:
        return [*self.forward_names, LOGITS]

    def node_layer(self, name: str) -> int:
        """Layer of a node: input -1, a{l}.h{h} and m{l} l, logits n_layers."""
        if name == INPUT:
            return -1
        if name == LOGITS:
            return self.n_layers
        match = NODE_RE.match(name)
        if not match:
            raise ValueError(f"not a node name: {name!r}")
        return int(match["layer"] if match["layer"] is not None else match["mlp"])

    def upstream_count(self, bwd: int) -> int:
        """Number of forward slots feeding backward slot ``bwd``."""
        if bwd == self.bwd_logits:
            return self.n_forward
        layer, offset = divmod(bwd, 3 * self.n_heads + 1)
        return self.upstream_mlp(layer) if offset == 3 * self.n_heads else self.upstream_attn(layer)

    @cached_property
    def edge_index(self) -> tuple[np.ndarray, np.ndarray]:
        """(forward slot, backward slot) of every edge, ordered by child then parent."""
        counts = np.array([self.upstream_count(b) for b in range(self.n_backward)], dtype=np.int64)
        bwd = np.repeat(np.arange(self.n_backward, dtype=np.int64), counts)
        starts = np.repeat(np.cumsum(counts) - counts, counts)
        fwd = np.arange(len(bwd), dtype=np.int64) - starts
        return fwd, bwd

    def valid_mask(self) -> np.ndarray:
        """Boolean ``[n_forward, n_backward]``: True where an edge exists."""
        mask = np.zeros((self.n_forward, self.n_backward), dtype=bool)
        fwd, bwd = self.edge_index
        mask[fwd, bwd] = True
        return mask

    def edges(self) -> pd.DataFrame:
        """One row per edge: edge name, parent, child (node), qkv ("q", "k", "v" or ""),
        forward and backward slot, parent and child layer. THE generator of edge names."""
        fwd, bwd = self.edge_index
        fnames = np.array(self.forward_names, dtype=object)
        children = [child for child, _ in self.backward_names]
        qkvs = [qkv for _, qkv in self.backward_names]
        child_col = np.array(children, dtype=object)[bwd]
        qkv_col = np.array([x or "" for x in qkvs], dtype=object)[bwd]
        parent_col = fnames[fwd]
        names = [edge_name(p, c, x) for p, c, x in zip(parent_col, child_col, qkv_col, strict=True)]
        flayer = np.array([self.node_layer(n) for n in self.forward_names])
        blayer = np.array([self.node_layer(c) for c in children])
        return pd.DataFrame(
            {
                "edge": names,
                "parent": parent_col,
                "child": child_col,
                "qkv": qkv_col,
                "fwd": fwd,
                "bwd": bwd,
                "parent_layer": flayer[fwd],
                "child_layer": blayer[bwd],
            }
        )
