"""EAP on Hugging Face modules: graph sizes, exactness against single-edge patching,
batch and order invariance, full / empty circuits, cost per batch, bad models and prompts.
Tiny randomly initialised models, built locally (no downloads)."""

from __future__ import annotations

import contextlib
import copy

import numpy as np
import pytest
import torch
from torch import nn
from transformers import (
    BertConfig,
    GPT2Config,
    GPT2LMHeadModel,
    GPTNeoXConfig,
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from biasdrift.circuits import eap
from biasdrift.circuits.adapters import UnsupportedModelError, adapter_for, check_supported
from biasdrift.circuits.graph import Graph, parse_edge

VOCAB = 40
ARCHS = ("gpt2", "llama")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread (and oversubscribed threads are very slow)."""
    from biasdrift.runtime import set_threads

    before = torch.get_num_threads()
    set_threads(1)
    yield
    set_threads(before)


def build(arch: str, dtype=torch.float64, final_norm: bool = True, seed: int = 0):
    torch.manual_seed(seed)
    common = {"vocab_size": VOCAB, "bos_token_id": 0, "eos_token_id": 0, "pad_token_id": 0}
    if arch == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_head=4, n_embd=32, n_positions=32, **common))
        if not final_norm:
            model.transformer.ln_f = nn.Identity()
    else:  # grouped-query attention: 4 query heads, 2 key/value heads
        cfg = LlamaConfig(
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            hidden_size=32,
            intermediate_size=64,
            max_position_embeddings=32,
            **common,
        )
        model = LlamaForCausalLM(cfg)
        if not final_norm:
            model.model.norm = nn.Identity()
    return model.to(dtype).eval()


def pairs(n: int = 12, seed: int = 1, vary_length: bool = True):
    """Clean/corrupted id lists with one BOS; every third pair differs in length."""
    gen = torch.Generator().manual_seed(seed)
    clean, corrupted = [], []
    for i in range(n):
        length = int(torch.randint(3, 7, (1,), generator=gen))
        seq = torch.randint(1, VOCAB, (length,), generator=gen).tolist()
        corr = list(seq)
        corr[1] = int(torch.randint(1, VOCAB, (1,), generator=gen))
        if vary_length and i % 3 == 0:
            corr = [*corr[:1], 5, 6, *corr[2:]]
        clean.append([0, *seq])
        corrupted.append([0, *corr])
    return clean, corrupted


def logit_diff(logits, _batch):  # linear in the logits
    return logits[:, 3] - logits[:, 7]


def logprob_diff(logits, _batch):
    logp = torch.log_softmax(logits, dim=-1)
    return logp[:, 3] - logp[:, 7]


def exact_effects(model, adapter, batches, metric):
    """M(clean) − M(edge patched) for every edge alone (Graph.edges order)."""
    n = Graph(adapter.n_layers, adapter.n_heads).n_edges
    circuits = []
    for i in range(n):
        mask = np.ones(n, dtype=bool)
        mask[i] = False
        circuits.append(mask)
    full = eap.evaluate_graph(model, adapter, batches, metric, None)
    return full - eap.evaluate_graphs(model, adapter, batches, metric, circuits).mean(axis=1)


# --------------------------------------------------------------------------- graph
@pytest.mark.parametrize(
    ("config", "nodes", "edges"),
    [
        (GPT2Config(n_layer=2, n_head=4), 12, 110),
        (GPT2Config(), 158, 32_491),  # gpt2 small, from the config alone (no download)
        (GPT2Config(n_layer=24, n_head=16), 410, 231_877),  # gpt2-medium
        (GPT2Config(n_layer=36, n_head=20), 758, 810_703),  # gpt2-large
        (LlamaConfig(num_hidden_layers=32, num_attention_heads=32), 1058, 1_592_881),  # Llama-2-7B
    ],
)
def test_graph_sizes_follow_the_formula(config, nodes, edges):
    graph = Graph.from_config(config)
    table = graph.edges()
    assert graph.n_nodes == nodes and graph.n_edges == edges == len(table)


def test_graph_names_are_unique_and_edges_run_forward():
    graph = Graph(3, 4)
    table = graph.edges()
    assert table.edge.is_unique and len(set(graph.node_names)) == graph.n_nodes
    same_layer = table.parent_layer == table.child_layer
    assert (table.parent_layer <= table.child_layer).all()
    # only a head may feed a reader of its own layer, and only that layer's MLP
    assert (table[same_layer].child.str.startswith("m") & table[same_layer].parent.str.startswith("a")).all()
    for name, parent, child, qkv in zip(table.edge, table.parent, table.child, table.qkv, strict=True):
        assert parse_edge(name) == (parent, child, qkv or None)
    # forward / backward index maps are bijections onto the dense matrix's edge cells
    assert len(set(zip(table.fwd, table.bwd, strict=True))) == len(table)
    assert graph.valid_mask().sum() == len(table)
    layers = range(3)
    fwd = {graph.fwd_head(i, h) for i in layers for h in range(4)} | {graph.fwd_mlp(i) for i in layers} | {0}
    assert fwd == set(range(graph.n_forward))
    bwd = {graph.bwd_head(i, h, x) for i in layers for h in range(4) for x in "qkv"}
    assert bwd | {graph.bwd_mlp(i) for i in layers} | {graph.bwd_logits} == set(range(graph.n_backward))


# --------------------------------------------------------------------------- exactness
@pytest.mark.parametrize("arch", ARCHS)
def test_scores_are_exactly_zero_when_clean_equals_corrupted(arch):
    model = build(arch)
    clean, _ = pairs()
    batches = eap.make_batches(clean, clean, 5, pad_id=0)
    scores = eap.attribute(model, adapter_for(model), batches, logprob_diff, show_progress=False)
    assert np.count_nonzero(scores) == 0


@pytest.mark.parametrize("arch", ARCHS)
def test_eap_into_logits_equals_exact_patching(arch):
    """float64, no final norm, a metric linear in the logits: EAP of every edge into the
    logits is the true single-edge patching effect, and they sum to M(clean) − M(corrupted)."""
    model = build(arch, final_norm=False)
    adapter = adapter_for(model)
    clean, corrupted = pairs()
    batches = eap.make_batches(clean, corrupted, 4, pad_id=0)
    scores = eap.attribute(model, adapter, batches, logit_diff, show_progress=False)
    table = Graph(adapter.n_layers, adapter.n_heads).edges()
    into_logits = (table.child == "logits").to_numpy()
    exact = exact_effects(model, adapter, batches, logit_diff)
    np.testing.assert_allclose(scores[into_logits], exact[into_logits], rtol=0, atol=1e-8)
    clean_value = eap.evaluate_plain(model, adapter, batches, logit_diff).mean()
    corrupted_value = eap.evaluate_plain(model, adapter, batches, logit_diff, corrupted=True).mean()
    assert abs(clean_value - corrupted_value) > 1e-4  # a real difference to explain
    assert scores[into_logits].sum() == pytest.approx(clean_value - corrupted_value, abs=1e-10)


def interpolated(model, clean, corrupted, eps):
    """A copy of ``model`` whose corrupted prompts use new tokens embedded at
    clean + eps·(corrupted − clean): the corruption scaled toward clean."""
    model = copy.deepcopy(model)
    weight = model.get_input_embeddings().weight.detach()
    vocab, rows, new = weight.shape[0], [], []
    for a, b in zip(clean, corrupted, strict=True):
        seq = list(a)
        for t, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                rows.append((1 - eps) * weight[x] + eps * weight[y])
                seq[t] = vocab + len(rows) - 1
        new.append(seq)
    model.resize_token_embeddings(vocab + len(rows), mean_resizing=False)
    with torch.no_grad():
        model.get_input_embeddings().weight[vocab:] = torch.stack(rows)
    return model, new


@pytest.mark.parametrize("arch", ARCHS)
def test_eap_correlates_with_exact_patching_and_converges(arch):
    """Every edge, final norm on, a non-linear metric: EAP correlates with exact
    single-edge patching (Pearson ≥ 0.9) and its error shrinks as the corruption is
    scaled toward clean (EAP is the first-order term)."""
    base = build(arch)
    clean, corrupted = pairs(vary_length=False)
    table = Graph(2, 4).edges()
    kinds = np.where(table.child == "logits", "logits", np.where(table.qkv != "", table.qkv, "mlp"))
    errors, correlations = [], []
    for eps in (0.3, 0.1, 0.02):
        model, corr = interpolated(base, clean, corrupted, eps)
        adapter = adapter_for(model)
        batches = eap.make_batches(clean, corr, 6, pad_id=0)
        scores = eap.attribute(model, adapter, batches, logprob_diff, show_progress=False)
        exact = exact_effects(model, adapter, batches, logprob_diff)
        correlations.append(np.corrcoef(scores, exact)[0, 1])
        errors.append(np.abs(scores - exact).max() / np.abs(exact).max())
    assert min(correlations) >= 0.9, correlations
    assert correlations[-1] >= 0.999, correlations
    assert errors[0] > errors[1] > errors[2] and errors[2] < 0.05, errors
    # every kind of edge on its own (q and k edges are orders of magnitude smaller than v)
    for kind in ("q", "k", "v", "mlp", "logits"):
        part = kinds == kind
        assert np.corrcoef(scores[part], exact[part])[0, 1] >= 0.99, kind


def test_eap_correlates_with_exact_patching_at_full_corruption():
    """The tiny GPT-2 at the real (uninterpolated) corruption, all 110 edges."""
    model = build("gpt2", final_norm=False)
    adapter = adapter_for(model)
    clean, corrupted = pairs()
    batches = eap.make_batches(clean, corrupted, 4, pad_id=0)
    scores = eap.attribute(model, adapter, batches, logit_diff, show_progress=False)
    exact = exact_effects(model, adapter, batches, logit_diff)
    assert np.corrcoef(scores, exact)[0, 1] >= 0.9


# --------------------------------------------------------------------------- invariance
@pytest.mark.parametrize("arch", ARCHS)
def test_batch_size_and_order_do_not_change_the_scores(arch):
    model = build(arch, dtype=torch.float32)
    adapter = adapter_for(model)
    clean, corrupted = pairs(n=16)
    reference = eap.attribute(
        model, adapter, eap.make_batches(clean, corrupted, 1, 0), logprob_diff, show_progress=False
    )
    rerun = eap.attribute(model, adapter, eap.make_batches(clean, corrupted, 1, 0), logprob_diff, show_progress=False)
    assert np.array_equal(reference, rerun)  # identical on reruns
    order = np.random.default_rng(0).permutation(len(clean))
    shuffled = eap.make_batches([clean[i] for i in order], [corrupted[i] for i in order], 16, 0, sort_by_length=False)
    together = eap.attribute(model, adapter, shuffled, logprob_diff, show_progress=False)
    np.testing.assert_allclose(together, reference, rtol=0, atol=1e-5 * max(1.0, np.abs(reference).max()))
    assert np.abs(reference).max() > 1e-4


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_full_graph_is_clean_and_empty_circuit_is_corrupted(arch, dtype):
    model = build(arch, dtype=dtype)
    adapter = adapter_for(model)
    clean, corrupted = pairs()  # includes pairs of different length
    batches = eap.make_batches(clean, corrupted, 5, pad_id=0)
    n = Graph(adapter.n_layers, adapter.n_heads).n_edges
    tol = 1e-10 if dtype == torch.float64 else 1e-5
    full, empty = eap.evaluate_graphs(model, adapter, batches, logprob_diff, [None, np.zeros(n, bool)])
    np.testing.assert_allclose(full, eap.evaluate_plain(model, adapter, batches, logprob_diff), atol=tol, rtol=0)
    np.testing.assert_allclose(empty, eap.evaluate_plain(model, adapter, batches, logprob_diff, True), atol=tol, rtol=0)
    assert np.abs(full - empty).max() > 1e-3


def test_left_padding_gives_the_unpadded_prediction():
    model = build("llama", dtype=torch.float32)
    adapter = adapter_for(model)
    clean, corrupted = pairs()
    batched = eap.evaluate_plain(
        model, adapter, eap.make_batches(clean, corrupted, 12, 0, sort_by_length=False), logprob_diff
    )
    single = [eap.evaluate_plain(model, adapter, eap.make_batches([c], [c], 1, 0), logprob_diff)[0] for c in clean]
    np.testing.assert_allclose(batched, single, atol=1e-5, rtol=0)


def test_eap_costs_two_forwards_and_one_backward_per_batch():
    model = build("gpt2", dtype=torch.float32)
    adapter = adapter_for(model)
    counts = {"forward": 0, "backward": 0}
    adapter.blocks[0].attn_norm.register_forward_pre_hook(
        lambda *_: counts.__setitem__("forward", counts["forward"] + 1)
    )
    model.lm_head.register_full_backward_hook(lambda *_: counts.__setitem__("backward", counts["backward"] + 1))
    clean, corrupted = pairs(n=12)
    batches = eap.make_batches(clean, corrupted, 4, 0)
    eap.attribute(model, adapter, batches, logprob_diff, show_progress=False)
    assert counts == {"forward": 2 * len(batches), "backward": len(batches)}
    assert all(p.requires_grad for p in model.parameters())  # restored after EAP


def test_vocabulary_scores_are_computed_for_the_last_position_only():
    """Metrics read the last position: no pass materialises [batch, seq, vocab] logits
    (a 128k vocabulary at 7B scale), in EAP, circuit evaluation and plain runs."""
    model = build("llama", dtype=torch.float32)
    adapter = adapter_for(model)
    shapes = []
    model.lm_head.register_forward_hook(lambda _m, _a, out: shapes.append(tuple(out.shape)))
    clean, corrupted = pairs(n=6)
    batches = eap.make_batches(clean, corrupted, 3, 0)
    eap.attribute(model, adapter, batches, logprob_diff, show_progress=False)
    eap.evaluate_graphs(model, adapter, batches, logprob_diff, [None])
    eap.evaluate_plain(model, adapter, batches, logprob_diff)
    assert shapes and {s[1] for s in shapes} == {1} and max(b.clean_ids.shape[1] for b in batches) > 1


# --------------------------------------------------------------------------- other layouts
@pytest.mark.parametrize(
    "model_cls,config",
    [
        (MistralForCausalLM, MistralConfig),
        (Qwen2ForCausalLM, Qwen2Config),  # q/k/v biases
    ],
)
def test_llama_layout_family_is_exact(model_cls, config):
    torch.manual_seed(0)
    cfg = config(
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        hidden_size=32,
        intermediate_size=64,
        vocab_size=VOCAB,
        max_position_embeddings=32,
        pad_token_id=0,
    )
    model = model_cls(cfg).double().eval()
    model.model.norm = nn.Identity()
    adapter = adapter_for(model)
    clean, corrupted = pairs()
    batches = eap.make_batches(clean, corrupted, 6, 0)
    scores = eap.attribute(model, adapter, batches, logit_diff, show_progress=False)
    table = Graph(2, 4).edges()
    into_logits = (table.child == "logits").to_numpy()
    exact = exact_effects(model, adapter, batches, logit_diff)
    np.testing.assert_allclose(scores[into_logits], exact[into_logits], atol=1e-8, rtol=0)
    full = eap.evaluate_graph(model, adapter, batches, logit_diff, None)
    assert full == pytest.approx(eap.evaluate_plain(model, adapter, batches, logit_diff).mean(), abs=1e-10)


# --------------------------------------------------------------------------- GQA mapping
GQA_HEADS, GQA_KV, GQA_T = 8, 2, 6  # 4 query heads per key/value head


def gqa_model() -> LlamaForCausalLM:
    """One Llama block with grouped-query attention and q/k/v/o biases (so a bias mapped
    to the wrong group shows too), float64."""
    torch.manual_seed(0)
    cfg = LlamaConfig(
        num_hidden_layers=1,
        num_attention_heads=GQA_HEADS,
        num_key_value_heads=GQA_KV,
        hidden_size=32,
        intermediate_size=64,
        max_position_embeddings=32,
        attention_bias=True,
        vocab_size=VOCAB,
        pad_token_id=0,
    )
    model = LlamaForCausalLM(cfg).double().eval()
    with torch.no_grad():  # biases start at zero: make them matter
        for proj in ("q_proj", "k_proj", "v_proj"):
            getattr(model.model.layers[0].self_attn, proj).bias.normal_()
    return model


def head_inputs(model, normed=None, adapter=None) -> torch.Tensor:
    """Per-head attention outputs z (the output projection's input) of layer 0,
    ``[B, T, H, d_head]``; with ``normed`` the adapter's split q/k/v inputs are active."""
    attn = model.model.layers[0].self_attn
    seen = {}
    handle = attn.o_proj.register_forward_pre_hook(lambda _m, args: seen.__setitem__("z", args[0].detach().clone()))
    ids = torch.arange(1, 1 + 2 * GQA_T).view(2, GQA_T) % VOCAB
    split = adapter.split_qkv(0, lambda: normed) if normed is not None else contextlib.nullcontext()
    try:
        with split, torch.no_grad():
            model(input_ids=ids, use_cache=False)
    finally:
        handle.remove()
    return seen["z"].view(2, GQA_T, GQA_HEADS, attn.head_dim)


def changed_heads(a: torch.Tensor, b: torch.Tensor) -> set[int]:
    return {h for h in range(a.shape[2]) if (a[:, :, h] - b[:, :, h]).abs().max() > 1e-9}


def test_gqa_split_inputs_match_a_hand_run_attention_built_on_repeat_kv():
    """Every query head h gets its own (normed) q, k and v input copy; the adapter's
    per-head outputs equal attention computed by hand in which head h takes its key and
    value from transformers' ``repeat_kv`` of the k/v projections of *its* copies (HF's
    own grouping, not the adapter's formula). A mapping h % kv_heads instead of
    h // (heads / kv_heads), of weights or of copies, fails this."""
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb, repeat_kv

    model = gqa_model()
    adapter = adapter_for(model)
    attn = model.model.layers[0].self_attn
    heads, dh, d = GQA_HEADS, attn.head_dim, adapter.d_model
    normed = torch.randn(2, GQA_T, 3 * heads, d, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    got = head_inputs(model, normed, adapter)

    positions = torch.arange(GQA_T)[None].expand(2, -1)
    cos, sin = model.model.rotary_emb(normed, positions)
    causal = torch.ones(GQA_T, GQA_T, dtype=torch.bool).tril()
    with torch.no_grad():
        for h in range(heads):
            q_in, k_in, v_in = normed[:, :, h], normed[:, :, heads + h], normed[:, :, 2 * heads + h]
            q = attn.q_proj(q_in).view(2, GQA_T, heads, dh).transpose(1, 2)[:, h : h + 1]
            k = repeat_kv(attn.k_proj(k_in).view(2, GQA_T, GQA_KV, dh).transpose(1, 2), heads // GQA_KV)[:, h : h + 1]
            v = repeat_kv(attn.v_proj(v_in).view(2, GQA_T, GQA_KV, dh).transpose(1, 2), heads // GQA_KV)[:, h : h + 1]
            q, k = apply_rotary_pos_emb(q, k, cos, sin)
            weights = (q @ k.transpose(-1, -2) * dh**-0.5).masked_fill(~causal, float("-inf")).softmax(-1)
            expected = (weights @ v)[:, 0]  # [B, T, d_head]
            torch.testing.assert_close(got[:, :, h], expected, rtol=0, atol=1e-10, msg=f"query head {h}")


def test_gqa_perturbing_one_kv_head_changes_the_same_query_heads_as_in_hf():
    """Perturb the k (then v) weights of one key/value head: the query heads whose
    outputs change in the unmodified HF model are the reference; the adapter's split pass
    must change exactly those. And a perturbed k/v input copy of head h changes head h only."""
    model = gqa_model()
    adapter = adapter_for(model)
    attn = model.model.layers[0].self_attn
    heads, dh = GQA_HEADS, attn.head_dim
    x = torch.randn(2, GQA_T, adapter.d_model, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    same = x[:, :, None].expand(-1, -1, 3 * heads, -1).clone()  # one residual stream, 3H identical copies
    plain, split = head_inputs(model), head_inputs(model, same, adapter)
    for proj in ("k_proj", "v_proj"):
        for group in range(GQA_KV):
            bumped = copy.deepcopy(model)
            with torch.no_grad():
                getattr(bumped.model.layers[0].self_attn, proj).weight[group * dh : (group + 1) * dh] += 0.5
            reference = changed_heads(plain, head_inputs(bumped))
            assert len(reference) == heads // GQA_KV, (proj, group, reference)
            assert changed_heads(split, head_inputs(bumped, same, adapter_for(bumped))) == reference, (proj, group)
    for part in (1, 2):  # k and v input copies
        for h in range(heads):
            other = same.clone()
            other[:, :, part * heads + h] += torch.randn_like(x)
            assert changed_heads(split, head_inputs(model, other, adapter)) == {h}, ("kv"[part - 1], h)


@pytest.mark.parametrize("config", [BertConfig(), GPTNeoXConfig()])
def test_unsupported_attention_layout_is_named_before_weights_load(config):
    with pytest.raises(UnsupportedModelError, match=f"model_type '{config.model_type}'"):
        check_supported(config, "model alias 'x'")


def test_prompt_longer_than_the_context_is_rejected_before_the_model_runs():
    class Tok:
        bos_token_id = 0

        def __call__(self, text, **_kwargs):
            return {"input_ids": [1] * len(text.split())}

    with pytest.raises(
        eap.PromptError, match=r"prompt 1 'a b c d e f' has 7 tokens, longer than the model's context of 6"
    ):
        eap.encode_pairs(Tok(), ["a b", "a b c d e f"], ["x y", "x y"], n_ctx=6, where="test prompts")


def test_same_length_alignment_drops_and_counts_mismatched_pairs():
    clean, corrupted = pairs(n=9)
    keep, stats = eap.select_aligned(clean, corrupted, "same_length")
    assert stats == {"pairs": 9, "length_differs": 3, "used": 6, "align": "same_length"}
    assert all(len(clean[i]) == len(corrupted[i]) for i in keep)
    assert eap.select_aligned(clean, corrupted, "left")[1]["used"] == 9
