"""Edge attribution patching (EAP) and edge-level patching on a Hugging Face causal LM,
with hooks on the model's own modules (see :mod:`biasdrift.circuits.adapters`).

Definitions (one example; the dataset value is the mean over examples):

* ``a_u`` is the output of writer node u (input embedding, one head, one MLP) at every
  position; a reader's input is the sum of its parents' outputs (plus biases).
* Patching edge u→v to the corrupted run replaces, in v's input only, ``a_u`` (of the
  current pass) by ``a_u`` of the corrupted run. :func:`evaluate_graph` patches every edge
  outside a circuit at once.
* EAP scores edge u→v by the first-order estimate of ``M(clean) − M(edge patched)``:
  ``score = −Σ_{positions, dims} (a_u^corr − a_u^clean) · ∂M/∂(input of v)``. A positive
  score means the clean signal on the edge raises the metric. Cost per batch: one
  corrupted forward (no grad), one clean forward and one backward with the parameters
  frozen; the products accumulate in float32 (float64 for a float64 model).
* EAP-IG (``method="eap-ig"``, "EAP-IG-inputs" of Hanna et al. 2024, hannamw/EAP-IG) keeps
  the same activation differences but averages the gradient over ``m`` forwards whose token
  embeddings are interpolated from the corrupted to the clean prompt, ``e_corr + (k/m)
  (e_clean − e_corr)`` for k = 0 … m−1 (a left Riemann sum; positions, padding and mask are
  the clean run's). Cost per batch: two forwards without grad, then m forwards and backwards.

Clean and corrupted prompts are aligned by left padding with attention masks and
position ids taken from the mask, so the shared template tail lines up and the metric
reads the last position. Positions that are real tokens in only one of the two runs keep
their clean activations (their differences are zero): the full graph therefore equals the
clean run, and the empty circuit equals the corrupted run exactly for pairs of equal length.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch

from biasdrift.circuits.adapters import Adapter
from biasdrift.circuits.graph import Graph
from biasdrift.runtime import progress

log = logging.getLogger(__name__)

ALIGNMENTS = ("left", "same_length")
METHODS = ("eap", "eap-ig")


class PromptError(ValueError):
    """A prompt cannot be used with this model (too long, empty); names the prompt."""


# --------------------------------------------------------------------------- batches
@dataclass
class PairBatch:
    """Aligned clean / corrupted token ids, left padded to one length ``T``."""

    clean_ids: torch.Tensor  # [B, T]
    clean_mask: torch.Tensor  # [B, T] 1 = real token
    corr_ids: torch.Tensor  # [B, T]
    corr_mask: torch.Tensor  # [B, T]
    index: torch.Tensor  # [B] example indices into the prompt list

    @property
    def size(self) -> int:
        return int(self.clean_ids.shape[0])

    @property
    def both(self) -> torch.Tensor:
        """[B, T] True where both runs hold a real token (where differences count)."""
        return (self.clean_mask > 0) & (self.corr_mask > 0)

    def to(self, device) -> PairBatch:
        return PairBatch(
            *(t.to(device) for t in (self.clean_ids, self.clean_mask, self.corr_ids, self.corr_mask)), self.index
        )


def position_ids(mask: torch.Tensor) -> torch.Tensor:
    """Positions counted over real tokens only (left padding does not shift them)."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


def encode_prompt(tokenizer, text: str) -> list[int]:
    """Token ids of ``text`` with exactly one BOS in front (when the tokenizer has one)."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    bos = tokenizer.bos_token_id
    return ([bos] if bos is not None else []) + list(ids)


def encode_pairs(tokenizer, clean: Sequence[str], corrupted: Sequence[str], n_ctx: int, where: str = "prompts"):
    """Token ids of every pair, checking the model's context length before any model runs."""
    if len(clean) != len(corrupted):
        raise PromptError(f"{where}: {len(clean)} clean but {len(corrupted)} corrupted prompts")
    out_clean, out_corr = [], []
    for i, (a, b) in enumerate(zip(clean, corrupted, strict=True)):
        ids_a, ids_b = encode_prompt(tokenizer, a), encode_prompt(tokenizer, b)
        for text, ids in ((a, ids_a), (b, ids_b)):
            if len(ids) > n_ctx:
                raise PromptError(
                    f"{where}: prompt {i} {text!r} has {len(ids)} tokens, longer than the model's context of {n_ctx}"
                )
            if len(ids) == 0:
                raise PromptError(f"{where}: prompt {i} is empty")
        out_clean.append(ids_a)
        out_corr.append(ids_b)
    return out_clean, out_corr


def select_aligned(clean_ids: list[list[int]], corr_ids: list[list[int]], align: str) -> tuple[list[int], dict]:
    """Indices of the pairs used under ``align`` and counts for the log/manifest."""
    if align not in ALIGNMENTS:
        raise ValueError(f"align must be one of {', '.join(ALIGNMENTS)}, got {align!r}")
    differ = [i for i, (a, b) in enumerate(zip(clean_ids, corr_ids, strict=True)) if len(a) != len(b)]
    keep = list(range(len(clean_ids)))
    if align == "same_length":
        dropped = set(differ)
        keep = [i for i in keep if i not in dropped]
    stats = {"pairs": len(clean_ids), "length_differs": len(differ), "used": len(keep), "align": align}
    return keep, stats


def make_batches(
    clean_ids: Sequence[Sequence[int]],
    corr_ids: Sequence[Sequence[int]],
    batch_size: int,
    pad_id: int,
    indices: Sequence[int] | None = None,
    sort_by_length: bool = True,
) -> list[PairBatch]:
    """Left-padded batches of (clean, corrupted) pairs; pairs of similar length share a
    batch when ``sort_by_length`` (results do not depend on batching, tested)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = list(range(len(clean_ids))) if indices is None else list(indices)
    if sort_by_length:
        order.sort(key=lambda i: (max(len(clean_ids[i]), len(corr_ids[i])), i))
    batches = []
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        length = max(max(len(clean_ids[i]), len(corr_ids[i])) for i in chunk)
        tensors = []
        for seqs in (clean_ids, corr_ids):
            ids = torch.full((len(chunk), length), pad_id, dtype=torch.long)
            mask = torch.zeros((len(chunk), length), dtype=torch.long)
            for row, i in enumerate(chunk):
                seq = torch.as_tensor(list(seqs[i]), dtype=torch.long)
                ids[row, length - len(seq) :] = seq
                mask[row, length - len(seq) :] = 1
            tensors += [ids, mask]
        batches.append(PairBatch(tensors[0], tensors[1], tensors[2], tensors[3], torch.tensor(chunk)))
    return batches


# --------------------------------------------------------------------------- tracing
Metric = Callable[[torch.Tensor, PairBatch], torch.Tensor]  # (logits_last [B, V], batch) -> [B]


def accumulation_dtype(model_dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if model_dtype == torch.float64 else torch.float32


@dataclass
class _Pass:
    """What one instrumented forward pass does."""

    buffer: torch.Tensor | None = None  # [n_fwd, B, T, d] node outputs are written here
    mode: str = "set"  # set | add | sub
    both: torch.Tensor | None = None  # [B, T] positions where differences count
    split: bool = False  # per-head q/k/v input copies
    patch_off: torch.Tensor | None = None  # [n_fwd, n_bwd] 1.0 where an edge is patched
    grad_sink: Callable[[str, int, torch.Tensor], None] | None = None
    # EAP only: head inputs z of the "set" pass per layer; the "sub" pass then projects
    # z − z_stashed once (head outputs are linear in z) instead of projecting both runs
    stash: dict[int, torch.Tensor] | None = None


class Tracer:
    """Instrumented forward passes of one model (hooks installed per pass, removed after)."""

    def __init__(self, model, adapter: Adapter, graph: Graph | None = None):
        self.model, self.adapter = model, adapter
        self.graph = graph or Graph(adapter.n_layers, adapter.n_heads)
        if (self.graph.n_layers, self.graph.n_heads) != (adapter.n_layers, adapter.n_heads):
            raise ValueError(
                f"graph {self.graph} does not match the model ({adapter.n_layers} layers, {adapter.n_heads} heads)"
            )
        self.dtype = next(model.parameters()).dtype
        self.device = next(model.parameters()).device
        self.acc = accumulation_dtype(self.dtype)
        self._normed: dict[int, torch.Tensor] = {}
        self._pass = _Pass()

    # -- buffers
    def new_buffer(self, batch: PairBatch) -> torch.Tensor:
        b, t = batch.clean_ids.shape
        return torch.zeros((self.graph.n_forward, b, t, self.adapter.d_model), dtype=self.acc, device=self.device)

    def _write(self, slots: slice | int, value: torch.Tensor) -> None:
        """value: [B, T, d] for one slot or [k, B, T, d] for a slice."""
        p = self._pass
        if p.buffer is None:
            return
        value = value.detach().to(self.acc)
        if p.both is not None:
            mask = p.both.to(self.acc)[:, :, None]
            value = value * mask
        target = p.buffer[slots]
        if p.mode == "set":
            target.copy_(value)
        elif p.mode == "add":
            target.add_(value)
        else:
            target.sub_(value)

    def _delta(self, upstream: int, cols: slice | int) -> torch.Tensor:
        """Input correction of the readers in ``cols``: −Σ_u patched(u, v)·(a_u − a_u^corr)."""
        p = self._pass
        weights = p.patch_off[:upstream, cols]
        if weights.dim() == 1:
            weights = weights[:, None]
        diffs = p.buffer[:upstream]  # holds a_u(current) − a_u(corrupted), masked
        shape = diffs.shape[1:]
        out = -(weights.T @ diffs.reshape(upstream, -1))
        return out.reshape(weights.shape[1], *shape).to(self.dtype)

    # -- hooks
    def _attn_in(self, layer: int, module, args):
        x = args[0]
        p = self._pass
        if layer == 0:
            self._write(0, x)
        if p.split:
            n = 3 * self.adapter.n_heads
            if p.patch_off is not None:
                delta = self._delta(self.graph.upstream_attn(layer), self.graph.bwd_attn(layer))  # [3H, B, T, d]
                xs = x.unsqueeze(2) + delta.permute(1, 2, 0, 3)
            else:
                xs = x.unsqueeze(2).expand(-1, -1, n, -1)
            if p.grad_sink is not None and xs.requires_grad:
                xs.register_hook(partial(p.grad_sink, "attn", layer))
            self._normed[layer] = module.forward(xs)  # module.forward: no hooks re-entered
        return None

    def _heads_out(self, layer: int, _module, args):
        p = self._pass
        if p.buffer is None:
            return None
        z = args[0].detach()
        if p.stash is not None:
            if p.mode == "set":
                p.stash[layer] = z
                return None
            z = z - p.stash.pop(layer)  # exactly 0 where the runs agree
        with torch.no_grad():
            heads = self.adapter.head_outputs(layer, z)  # [B, T, H, d]
        first = self.graph.fwd_head(layer, 0)
        self._write(slice(first, first + self.adapter.n_heads), heads.permute(2, 0, 1, 3))
        return None

    def _reader_in(self, kind: str, layer: int, upstream: int, col: int, _module, args):
        x = args[0]
        p = self._pass
        if p.patch_off is not None:
            x = x + self._delta(upstream, col)[0]
        elif p.grad_sink is not None and x.requires_grad:
            x = x.view_as(x)  # a node of its own: the gradient through this reader only
        if p.grad_sink is not None and x.requires_grad:
            x.register_hook(partial(p.grad_sink, kind, layer))
        return (x, *args[1:])

    def _mlp_out(self, layer: int, _module, _args, output):
        self._write(self.graph.fwd_mlp(layer), output)
        return None

    @contextlib.contextmanager
    def _instrumented(self, spec: _Pass) -> Iterator[None]:
        graph, adapter = self.graph, self.adapter
        self._pass, self._normed = spec, {}
        handles = []
        with contextlib.ExitStack() as stack:
            for layer, block in enumerate(adapter.blocks):
                handles.append(block.attn_norm.register_forward_pre_hook(partial(self._attn_in, layer)))
                handles.append(block.out_proj.register_forward_pre_hook(partial(self._heads_out, layer)))
                handles.append(
                    block.mlp_norm.register_forward_pre_hook(
                        partial(self._reader_in, "mlp", layer, graph.upstream_mlp(layer), graph.bwd_mlp(layer))
                    )
                )
                handles.append(block.mlp.register_forward_hook(partial(self._mlp_out, layer)))
                if spec.split:
                    stack.enter_context(adapter.split_qkv(layer, partial(self._normed.__getitem__, layer)))
            handles.append(
                adapter.final_norm.register_forward_pre_hook(
                    partial(self._reader_in, "logits", graph.n_layers, graph.n_forward, graph.bwd_logits)
                )
            )
            try:
                yield
            finally:
                for handle in handles:
                    handle.remove()
                self._pass, self._normed = _Pass(), {}

    def run(
        self, ids: torch.Tensor, mask: torch.Tensor, spec: _Pass | None = None, embeds=None, logits: bool = True
    ) -> torch.Tensor | None:
        """One forward pass; returns the logits of the last position ``[B, V]`` (or, with
        ``logits=False``, runs the transformer body only: a corrupted pass needs no logits)."""
        spec = spec or _Pass()
        if embeds is None:
            embeds = self.adapter.embed(ids.to(self.device))
        mask = mask.to(self.device)
        kwargs = {
            "inputs_embeds": embeds,
            "attention_mask": mask,
            "position_ids": position_ids(mask),
            "use_cache": False,
        }
        with self._instrumented(spec):
            if not logits:
                self.model.base_model(**kwargs)
                return None
            out = self.model(**kwargs, logits_to_keep=1)
        return out.logits[:, -1]


@contextlib.contextmanager
def frozen(model) -> Iterator[None]:
    """Parameters without gradients (EAP needs activation gradients only), eval mode."""
    was_training = model.training
    flags = [p.requires_grad for p in model.parameters()]
    model.eval()
    model.requires_grad_(False)
    try:
        yield
    finally:
        for param, flag in zip(model.parameters(), flags, strict=True):
            param.requires_grad_(flag)
        model.train(was_training)


# --------------------------------------------------------------------------- EAP
def attribute(
    model,
    adapter: Adapter,
    batches: Iterable[PairBatch],
    metric: Metric,
    graph: Graph | None = None,
    show_progress: bool = True,
    method: str = "eap",
    ig_steps: int = 5,
) -> np.ndarray:
    """EAP (or EAP-IG with ``ig_steps`` interpolation steps) scores of every edge, in
    :meth:`Graph.edges` order (float64 numpy)."""
    if method not in METHODS:
        raise ValueError(f"unknown attribution method {method!r}; known: {', '.join(METHODS)}")
    if method == "eap-ig" and ig_steps < 1:
        raise ValueError(f"EAP-IG needs ig_steps >= 1, got {ig_steps}")
    steps = ig_steps if method == "eap-ig" else 1
    tracer = Tracer(model, adapter, graph)
    graph = tracer.graph
    scores = torch.zeros((graph.n_forward, graph.n_backward), dtype=tracer.acc, device=tracer.device)
    n_examples = 0
    batches = list(batches)
    with frozen(model):
        for batch in progress(batches, desc="EAP", disable=None if show_progress else True):
            batch = batch.to(tracer.device)
            both = batch.both
            delta, stash = tracer.new_buffer(batch), {}
            with torch.no_grad():
                # same computation path as the clean pass: identical inputs give exactly zero differences
                spec = _Pass(delta, "set", both, split=True, stash=stash)
                tracer.run(batch.corr_ids, batch.corr_mask, spec, logits=False)

            def sink(kind: str, layer: int, grad: torch.Tensor, delta=delta) -> None:
                if kind == "attn":
                    up, cols = graph.upstream_attn(layer), graph.bwd_attn(layer)
                    g = grad.permute(2, 0, 1, 3).reshape(3 * graph.n_heads, -1)
                else:
                    up = graph.upstream_mlp(layer) if kind == "mlp" else graph.n_forward
                    col = graph.bwd_mlp(layer) if kind == "mlp" else graph.bwd_logits
                    cols, g = slice(col, col + 1), grad.reshape(1, -1)
                scores[:up, cols] += delta[:up].reshape(up, -1) @ g.to(tracer.acc).T

            if method == "eap":
                embeds = adapter.embed(batch.clean_ids).detach().requires_grad_(True)
                clean_pass = _Pass(delta, "sub", both, split=True, grad_sink=sink, stash=stash)
                _backward(tracer, batch, metric, clean_pass, embeds)
            else:
                with torch.no_grad():  # completes delta = a(corrupted) − a(clean)
                    tracer.run(batch.clean_ids, batch.clean_mask, _Pass(delta, "sub", both, split=True, stash=stash))
                for k, embeds in enumerate(interpolated_embeddings(adapter, batch, steps)):
                    _backward(tracer, batch, metric, _Pass(split=True, grad_sink=sink), embeds, first=k == 0)
            n_examples += batch.size
    if n_examples == 0:
        raise ValueError("EAP needs at least one example")
    fwd, bwd = graph.edge_index
    return (-scores[torch.as_tensor(fwd), torch.as_tensor(bwd)] / (n_examples * steps)).double().cpu().numpy()


def _backward(tracer: Tracer, batch: PairBatch, metric: Metric, spec: _Pass, embeds: torch.Tensor, first=True) -> None:
    """One instrumented forward of the clean prompts from ``embeds`` and the backward of
    the summed metric (the pass's gradient sink accumulates the scores)."""
    values = metric(tracer.run(batch.clean_ids, batch.clean_mask, spec, embeds), batch)
    if first and values.shape != (batch.size,):
        raise ValueError(f"the metric must return one value per example, got shape {tuple(values.shape)}")
    values.sum().backward()


def interpolated_embeddings(adapter: Adapter, batch: PairBatch, steps: int) -> Iterator[torch.Tensor]:
    """EAP-IG's inputs: token embeddings ``e_corr + (k/steps)(e_clean − e_corr)`` for
    k = 0 … steps−1 where both prompts have a real token, the clean embedding elsewhere."""
    with torch.no_grad():
        clean = adapter.embed(batch.clean_ids)
        corrupted = torch.where(batch.both[..., None].bool(), adapter.embed(batch.corr_ids), clean)
    for k in range(steps):
        yield (corrupted + (k / steps) * (clean - corrupted)).detach().requires_grad_(True)


# --------------------------------------------------------------------------- evaluation
def keep_matrix(graph: Graph, in_circuit: np.ndarray | None) -> np.ndarray:
    """Dense ``[n_forward, n_backward]`` 1.0 where an existing edge is *patched* (not in the
    circuit). ``in_circuit`` is a boolean per edge (Graph.edges order); None = all in."""
    off = np.zeros((graph.n_forward, graph.n_backward), dtype=np.float64)
    if in_circuit is None:
        return off
    in_circuit = np.asarray(in_circuit, dtype=bool)
    fwd, bwd = graph.edge_index
    if in_circuit.shape != fwd.shape:
        raise ValueError(f"in_circuit has {in_circuit.shape[0]} entries, the graph {len(fwd)} edges")
    off[fwd[~in_circuit], bwd[~in_circuit]] = 1.0
    return off


def evaluate_graphs(
    model,
    adapter: Adapter,
    batches: Iterable[PairBatch],
    metric: Metric,
    circuits: Sequence[np.ndarray | None],
    graph: Graph | None = None,
    show_progress: bool = False,
) -> np.ndarray:
    """Per-example metric ``[n_circuits, n_examples]`` (in batch order) with every edge
    outside each circuit patched to the corrupted run. The corrupted run is computed
    once per batch."""
    tracer = Tracer(model, adapter, graph)
    graph = tracer.graph
    offs = [torch.as_tensor(keep_matrix(graph, c), dtype=tracer.acc, device=tracer.device) for c in circuits]
    rows: list[list[torch.Tensor]] = [[] for _ in offs]
    with frozen(model), torch.no_grad():
        for batch in progress(list(batches), desc="evaluate", disable=None if show_progress else True):
            batch = batch.to(tracer.device)
            both = batch.both
            corrupted = tracer.new_buffer(batch)
            tracer.run(batch.corr_ids, batch.corr_mask, _Pass(corrupted, "set", both, split=True), logits=False)
            for i, off in enumerate(offs):
                diffs = -corrupted  # becomes a_u(current) − a_u(corrupted) as nodes are written
                logits = tracer.run(
                    batch.clean_ids, batch.clean_mask, _Pass(diffs, "add", both, split=True, patch_off=off)
                )
                rows[i].append(metric(logits, batch).double().cpu())
    return torch.stack([torch.cat(r) for r in rows]).numpy() if offs else np.zeros((0, 0))


def evaluate_graph(model, adapter, batches, metric, in_circuit: np.ndarray | None, graph: Graph | None = None) -> float:
    """Mean metric with every edge outside the circuit patched (None = the full graph)."""
    return float(evaluate_graphs(model, adapter, batches, metric, [in_circuit], graph)[0].mean())


def evaluate_plain(model, adapter, batches: Iterable[PairBatch], metric: Metric, corrupted: bool = False) -> np.ndarray:
    """Per-example metric of a plain (unpatched) forward of the clean (or corrupted)
    prompts, in batch order. The metric always labels tokens with the clean prompt."""
    tracer = Tracer(model, adapter)
    values = []
    with frozen(model), torch.no_grad():
        for batch in batches:
            batch = batch.to(tracer.device)
            ids, mask = (batch.corr_ids, batch.corr_mask) if corrupted else (batch.clean_ids, batch.clean_mask)
            values.append(metric(tracer.run(ids, mask), batch).double().cpu())
    return torch.cat(values).numpy()


def batch_order(batches: Iterable[PairBatch]) -> np.ndarray:
    """Example indices in the order evaluate_* returns their values."""
    return torch.cat([b.index for b in batches]).numpy()
