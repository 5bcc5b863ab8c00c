"""EAP-IG against a brute-force reference: a GPT-2 forward written out here by hand, in
which every node's output is a tensor of its own and every reader (each head's q, k and v
input, each MLP, the logits) gets a zero tensor added to its input whose gradient is the
gradient with respect to that reader alone. No hook, no Tracer, no code of eap.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn.functional import gelu
from transformers import GPT2Config, GPT2LMHeadModel

from biasdrift.circuits import eap
from biasdrift.circuits.adapters import adapter_for
from biasdrift.circuits.graph import Graph

pytestmark = pytest.mark.usefixtures("torch_one_thread")

VOCAB, LAYERS, HEADS, WIDTH = 40, 2, 4, 32


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    cfg = GPT2Config(
        vocab_size=VOCAB,
        n_layer=LAYERS,
        n_head=HEADS,
        n_embd=WIDTH,
        n_positions=32,
        initializer_range=0.2,
        bos_token_id=0,
        eos_token_id=0,
        pad_token_id=0,
    )
    return GPT2LMHeadModel(cfg).double().eval()


def same_length_pairs(n: int = 8, seed: int = 3):
    gen = torch.Generator().manual_seed(seed)
    clean, corrupted = [], []
    for _ in range(n):
        seq = torch.randint(1, VOCAB, (5,), generator=gen).tolist()
        corr = list(seq)
        corr[1], corr[3] = (int(x) for x in torch.randint(1, VOCAB, (2,), generator=gen))
        clean.append([0, *seq])
        corrupted.append([0, *corr])
    return clean, corrupted


def metric(logits, _batch=None):
    logp = torch.log_softmax(logits, dim=-1)
    return logp[:, 3] - logp[:, 7]


def by_hand(model, token_embeds: torch.Tensor, probes: dict | None = None):
    """GPT-2 written out node by node: (last-position logits [B, V], node outputs)."""
    t, h = model.transformer, HEADS
    d, dh = WIDTH, WIDTH // HEADS
    length = token_embeds.shape[1]
    probes = probes or {}

    def probe(key):
        return probes.get(key, 0.0)

    causal = torch.full((length, length), -math.inf, dtype=token_embeds.dtype).triu(1)
    outs = {"input": token_embeds + t.wpe.weight[:length]}
    resid = outs["input"]
    for layer, block in enumerate(t.h):
        w_out = block.attn.c_proj.weight
        total = 0.0
        for head in range(h):
            q, k, v = (
                project(block, resid + probe((layer, head, name)), part * d + head * dh, dh)
                for part, name in enumerate("qkv")
            )
            att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(dh) + causal, dim=-1)
            out = (att @ v) @ w_out[head * dh : (head + 1) * dh]
            outs[f"a{layer}.h{head}"] = out
            total = total + out
        resid = resid + total + block.attn.c_proj.bias
        mlp = block.mlp
        x = block.ln_2(resid + probe((layer, "mlp")))
        outs[f"m{layer}"] = mlp.c_proj(gelu(mlp.c_fc(x), approximate="tanh"))
        resid = resid + outs[f"m{layer}"]
    final = t.ln_f(resid + probe("logits"))
    return (final @ t.wte.weight.T)[:, -1], outs


def project(block, resid: torch.Tensor, first: int, width: int) -> torch.Tensor:
    """Columns ``first:first+width`` of the block's fused q/k/v projection of ln_1(resid)
    (GPT-2's Conv1D computes x @ weight + bias, weight [d, 3d])."""
    cols = slice(first, first + width)
    return block.ln_1(resid) @ block.attn.c_attn.weight[:, cols] + block.attn.c_attn.bias[cols]


def reader_key(child: str, qkv: str):
    if child == "logits":
        return "logits"
    if child.startswith("m"):
        return (int(child[1:]), "mlp")
    layer, head = child[1:].split(".h")
    return (int(layer), int(head), qkv)


def reference_eap_ig(model, clean, corrupted, steps: int) -> np.ndarray:
    """−(a_u(corrupted) − a_u(clean)) · mean_k ∂M/∂(input of v) at the interpolated
    embeddings, averaged over examples, for every edge of Graph.edges()."""
    wte = model.transformer.wte.weight
    e_clean, e_corr = wte[torch.tensor(clean)].detach(), wte[torch.tensor(corrupted)].detach()
    with torch.no_grad():
        _, a_clean = by_hand(model, e_clean)
        _, a_corr = by_hand(model, e_corr)
    table = Graph(LAYERS, HEADS).edges()
    keys = sorted({reader_key(c, q) for c, q in zip(table.child, table.qkv, strict=True)}, key=str)
    grads = {key: torch.zeros_like(e_clean) for key in keys}
    for k in range(steps):
        probes = {key: torch.zeros_like(e_clean, requires_grad=True) for key in keys}
        logits, _ = by_hand(model, e_corr + (k / steps) * (e_clean - e_corr), probes)
        metric(logits).sum().backward()
        for key in keys:
            grads[key] += probes[key].grad / steps
    n = len(clean)
    scores = [
        -float(((a_corr[parent] - a_clean[parent]) * grads[reader_key(child, qkv)]).sum()) / n
        for parent, child, qkv in zip(table.parent, table.child, table.qkv, strict=True)
    ]
    return np.asarray(scores)


def test_the_hand_written_forward_is_gpt2(model):
    clean, _ = same_length_pairs()
    ids = torch.tensor(clean)
    with torch.no_grad():
        mine, _ = by_hand(model, model.transformer.wte.weight[ids])
        theirs = model(ids).logits[:, -1]
    torch.testing.assert_close(mine, theirs, rtol=0, atol=1e-10)


@pytest.mark.parametrize("steps", [1, 4])
def test_eap_ig_equals_the_brute_force_reference_on_every_edge(model, steps):
    clean, corrupted = same_length_pairs()
    batches = eap.make_batches(clean, corrupted, 3, pad_id=0)
    got = eap.attribute(
        model, adapter_for(model), batches, metric, show_progress=False, method="eap-ig", ig_steps=steps
    )
    want = reference_eap_ig(model, clean, corrupted, steps)
    assert np.abs(want).max() > 1e-4
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-10)


def test_eap_ig_is_complete_on_the_input_node_and_differs_from_eap(model):
    """The input node feeds every reader, so its edges' EAP-IG scores sum to the integrated
    gradient of the metric along the embedding path: M(clean) − M(corrupted) as m grows
    (left Riemann: the error shrinks like 1/m). EAP, the gradient at the clean run alone,
    does not have that property."""
    clean, corrupted = same_length_pairs()
    adapter = adapter_for(model)
    batches = eap.make_batches(clean, corrupted, 8, pad_id=0)
    plain = eap.attribute(model, adapter, batches, metric, show_progress=False)
    scores = {
        m: eap.attribute(model, adapter, batches, metric, show_progress=False, method="eap-ig", ig_steps=m)
        for m in (2, 8, 32)
    }
    assert np.abs(plain - scores[8]).max() > 1e-3
    effect = eap.evaluate_plain(model, adapter, batches, metric).mean()
    effect -= eap.evaluate_plain(model, adapter, batches, metric, corrupted=True).mean()
    assert abs(effect) > 1e-2
    from_input = (Graph(LAYERS, HEADS).edges().parent == "input").to_numpy()
    gaps = [abs(scores[m][from_input].sum() - effect) for m in (2, 8, 32)]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 0.05 * abs(effect), (gaps, effect)
    assert abs(plain[from_input].sum() - effect) > gaps[2]


def test_bad_method_and_steps_are_named(model):
    clean, corrupted = same_length_pairs(2)
    batches = eap.make_batches(clean, corrupted, 2, pad_id=0)
    with pytest.raises(ValueError, match="unknown attribution method 'ig'"):
        eap.attribute(model, adapter_for(model), batches, metric, method="ig")
    with pytest.raises(ValueError, match="ig_steps"):
        eap.attribute(model, adapter_for(model), batches, metric, method="eap-ig", ig_steps=0)
