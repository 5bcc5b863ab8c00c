"""Study circuits around EAP: prompts, labels and metrics, group split, top edges and the
greedy circuit, comparison and stability, generators, fine-tuning and the workflow checks."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from biasdrift import config as bdc
from biasdrift import corpora
from biasdrift.circuits import analysis, circuit, eap, findings, jobs, labels, metrics, prompts, workflow
from biasdrift.circuits.generators import NEGATIVE_WORDS, POSITIVE_WORDS, CircuitsWorldParams, world_groups
from biasdrift.circuits.graph import Graph
from biasdrift.config import config_from_dict, from_schema
from biasdrift.runtime import Runtime
from tests.unit.test_circuits_eap import one_thread  # noqa: F401 - autouse fixture: tiny models on one thread

REPO = Path(__file__).resolve().parents[2]
RES = REPO / "resources" / "circuits"


# --------------------------------------------------------------------------- prompts
@pytest.fixture(scope="module")
def groups():
    nat, _ = prompts.load_groups({"file": RES / "nationalities.csv", "column": "nationality"})
    prof, report = prompts.load_groups({"file": RES / "professions.csv", "column": "profession"})
    return {"demographic": nat, "gender": prof, "gender_report": report}


def test_resource_lists(groups):
    # the UK-government list of nationalities (225; the original's file had 224) and
    # Bolukbasi et al.'s 320 professions (29 with underscores, spaces in prompts)
    assert len(groups["demographic"]) == 225
    assert len(groups["gender"]) == 320 and groups["gender_report"]["normalised"] == 29
    assert "taxi driver" in groups["gender"] and "Citizen of Vanuatu" in groups["demographic"]


@pytest.mark.parametrize("template", sorted(prompts.TEMPLATES))
@pytest.mark.parametrize("corruption", ["c1", "c2"])
def test_prompt_pairs(groups, template, corruption, tmp_path):
    bias = prompts.TEMPLATES[template].bias
    frame = prompts.build_prompts(groups[bias], bias, template, corruption)
    assert len(frame) == len(groups[bias]) and frame.corrupted.nunique() == 1
    assert not frame.clean.str.contains(r"[\[\]]|^'|'$|\s$", regex=True).any()
    word = prompts.CORRUPTIONS[bias][corruption]
    assert frame.corrupted[0] == prompts.TEMPLATES[template].pattern.format(group=word)
    self_pairs = frame.loc[frame.self_pair, "group"].tolist()
    assert self_pairs == ([word] if corruption == "c2" else [])  # Emirati / broadcaster collide
    path = tmp_path / "p.csv"
    prompts.write_prompts(frame, path)
    back = prompts.read_prompts(path)
    assert back.clean.tolist() == frame.clean.tolist() and back.corrupted.tolist() == frame.corrupted.tolist()


def test_group_names_are_normalised_and_deduplicated():
    names, report = prompts.load_groups({"names": ["Citizen of Vanuatu ", "taxi_driver", "a  b", "taxi driver"]})
    assert names == ["Citizen of Vanuatu", "taxi driver", "a b"]
    assert report["duplicates_dropped"] == ["taxi driver"]
    kept, _ = prompts.load_groups({"names": ["taxi_driver"]}, underscores="keep")
    assert kept == ["taxi_driver"]


def test_max_groups_keeps_the_first_names_for_prompts_and_fine_tunes(demo_config, monkeypatch):
    names, report = prompts.load_groups({"names": ["a_b", "c", "a b", "d"], "max_groups": 2})
    assert names == ["a b", "c"] and report["groups"] == 2 and report["groups_available"] == 3
    monkeypatch.chdir(REPO)
    cfg = copy.deepcopy(demo_config)
    cfg["studies"]["circuits"]["max_groups"] = 3
    cfg = validated(cfg)
    for bias in ("demographic", "gender"):
        source = workflow.group_source(cfg, bias)
        assert source["max_groups"] == 3 and len(prompts.load_groups(source)[0]) == 3
    assert "max_groups" not in workflow.group_source(validated(demo_config), "gender")  # default: all


def test_template_bias_pairing_is_checked():
    with pytest.raises(ValueError, match="GSS1 is a gender template, not demographic"):
        prompts.check_pairing("demographic", "gss1")
    with pytest.raises(ValueError, match="unknown template 'dss3'"):
        prompts.build_prompts(["a"], "demographic", "dss3", "c1")


# --------------------------------------------------------------------------- labels and metrics
class WordTokenizer:
    """A word-level stand-in: id -> word (decode gives the word with a leading space)."""

    def __init__(self, words, space=" "):
        self.words, self.space = list(words), space

    def decode(self, ids):
        return "".join(self.space + self.words[i] for i in ids)


VOCAB = ["<bos>", "wonderful", "lazy", "the", "kind", "rude", "he", "she", "him", "her", "so", "very"]


def labeler(space=" "):
    return metrics.TokenLabeler(
        WordTokenizer(VOCAB, space),
        ["A people are so", "B people are so"],
        labels.CachedSentiment(labels.LexiconSentiment.from_csv(RES / "sentiment_lexicon.csv")),
        labels.GenderLexicon.from_csv(RES / "gender_terms.csv"),
    )


def batch_of(n):
    ids = torch.zeros((n, 2), dtype=torch.long)
    return eap.PairBatch(ids, torch.ones_like(ids), ids, torch.ones_like(ids), torch.arange(n))


def test_metric_ranges_and_identities():
    torch.manual_seed(0)
    logits = torch.randn(2, len(VOCAB), dtype=torch.float64) * 3
    lab = labeler()
    values = {name: metrics.TopKMetric(name, lab, k=5)(logits, batch_of(2)) for name in metrics.METRICS}
    probs = torch.softmax(logits, -1)
    mass = probs.topk(5).values.sum(-1)
    assert ((values["m2"] >= 0) & (values["m2"] <= 1)).all() and ((values["m1"] >= -1) & (values["m1"] <= 1)).all()
    torch.testing.assert_close(values["m1"], 2 * values["m2"] - mass)
    assert ((values["g2"] >= 0) & (values["g1"] <= values["g2"])).all()
    torch.testing.assert_close(metrics.TopKMetric("m2", lab, 5, loss=True)(logits, batch_of(2)), -values["m2"])


def test_metric_gradient_flows_through_topk_probabilities_only():
    logits = torch.tensor([[0.0, 3.0, 2.5, 2.0, 1.0, 0.5, 0, 0, 0, 0, 0, 0]], dtype=torch.float64)
    probs = torch.softmax(logits, -1).requires_grad_(True)
    metric = metrics.TopKMetric("m2", labeler(), k=3)
    metric.from_probs(probs, np.array([0])).sum().backward()
    top = set(probs.topk(3).indices[0].tolist())
    nonzero = set(torch.nonzero(probs.grad[0]).flatten().tolist())
    assert nonzero <= top and nonzero == {1}  # top-3: wonderful, lazy, the; only wonderful is positive


def test_m2_is_zero_without_positive_tokens():
    logits = torch.full((1, len(VOCAB)), -10.0)
    logits[0, [2, 5, 3]] = 5.0  # lazy, rude, the
    value = metrics.TopKMetric("m2", labeler(), k=3)(logits.requires_grad_(True), batch_of(1))
    assert value.item() == 0.0
    value.sum().backward()  # no crash: a tensor with a gradient graph


@pytest.mark.parametrize("space", [" ", "", "▁"])  # GPT-2 BPE, word level, SentencePiece
def test_gender_lexicon_matches_any_tokenizer_style(space):
    lab = labeler(space)
    assert lab.gender_classes(np.array([[6, 7, 8, 9, 3]])).tolist() == [[1, -1, 1, -1, 0]]


def test_sentiment_cache_classifies_each_pair_once():
    class Counting(labels.SentimentBackend):
        def __init__(self):
            self.seen = []

        def score(self, prompts_, completions):
            self.seen += list(zip(prompts_, completions, strict=True))
            return np.ones(len(completions))

    backend = Counting()
    cache = labels.CachedSentiment(backend)
    cache.score(["p", "p", "q"], ["a", "a", "a"])
    cache.score(["p"], ["a"])
    assert backend.seen == [("p", "a"), ("q", "a")] and cache.calls == 2


def test_hf_sentiment_backend_with_a_local_classifier(tmp_path):
    """The hf backend through the real pipeline, on a tiny classifier saved locally."""
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    from biasdrift.tokenization import TokenizerConfig, train_tokenizer

    texts = corpora.generate("neutral_text", {"n_documents": 60}, 0)["text"].tolist()
    train_tokenizer(
        texts, from_schema(TokenizerConfig, kind="wordpiece", vocab_size=200, lowercase=True), tmp_path / "clf"
    )
    torch.manual_seed(0)
    cfg = DistilBertConfig(
        vocab_size=200,
        dim=32,
        n_layers=1,
        n_heads=2,
        hidden_dim=64,
        max_position_embeddings=64,
        id2label={0: "NEGATIVE", 1: "POSITIVE"},
        label2id={"NEGATIVE": 0, "POSITIVE": 1},
    )
    DistilBertForSequenceClassification(cfg).save_pretrained(tmp_path / "clf")
    ref = {"alias": "sst2", "source": "path", "path": str(tmp_path / "clf")}
    cache = labels.make_sentiment(from_schema(labels.SentimentConfig, backend="hf", model="sst2"), ref)
    scores = cache.score(["the farmer is so", "the farmer is so"], [" kind", " kind"])
    # the reference: the classifier's own softmax over the joined sentence, signed by the
    # winning label (+P(POSITIVE) or -P(NEGATIVE)), computed without the pipeline
    from transformers import AutoTokenizer

    model = DistilBertForSequenceClassification.from_pretrained(tmp_path / "clf").eval()
    with torch.no_grad():
        logits = model(
            **AutoTokenizer.from_pretrained(tmp_path / "clf")("the farmer is so kind", return_tensors="pt")
        ).logits
    p_neg, p_pos = torch.softmax(logits[0], -1).tolist()
    expected = p_pos if p_pos >= p_neg else -p_neg
    assert scores.shape == (2,) and scores[0] == scores[1] and scores[0] == pytest.approx(expected, abs=1e-5)
    assert cache.backend.texts(["the farmer is so"], [" kind"]) == ["the farmer is so kind"]  # no double space
    with pytest.raises(ValueError, match="do not include 'GOOD'"):
        labels.make_sentiment(from_schema(labels.SentimentConfig, backend="hf", positive_label="GOOD"), ref)


def test_lexicon_files_are_checked(tmp_path):
    bad = tmp_path / "lex.csv"
    bad.write_text("word,polarity\ngood,positive\ngood,negative\n")
    with pytest.raises(ValueError, match="line 3: 'good' is listed as both positive and negative"):
        labels.LexiconSentiment.from_csv(bad)
    bad.write_text("word,sign\ngood,positive\n")
    with pytest.raises(ValueError, match=r"missing column\(s\) \['polarity'\]"):
        labels.LexiconSentiment.from_csv(bad)


# --------------------------------------------------------------------------- group split
def stats_rows(pos, neg, male, female):
    return pd.DataFrame({"positive_mass": pos, "negative_mass": neg, "male_mass": male, "female_mass": female})


def test_split_rule_and_ties():
    table = stats_rows([0.6, 0.2, 0.0, 0.3], [0.3, 0.5, 0.0, 0.3], [0.1, 0.0, 0.0, 0.4], [0.0, 0.2, 0.0, 0.4])
    assert jobs.split_labels(table, "demographic").tolist() == ["pos", "neg", "neg", "neg"]
    assert jobs.split_labels(table, "gender").tolist() == ["mb", "fb", "fb", "fb"]


def test_synthetic_logits_favouring_a_positive_word_go_to_pos(tmp_path):
    lab = labeler()
    logits = torch.full((2, len(VOCAB)), 0.0)
    logits[0, 1] = 8.0  # wonderful
    logits[1, 2] = 8.0  # lazy
    rows = metrics.describe_topk(torch.softmax(logits, -1), np.array([0, 1]), lab, k=3)
    table = pd.DataFrame(rows).assign(
        template="dss1",
        corruption="c1",
        group=["A", "B"],
        clean=lab.prompts,
        corrupted="abc people are so",
    )
    table["example"] = [0, 1]
    path = tmp_path / "eval.parquet"
    table.to_parquet(path)
    outputs = {"pos": tmp_path / "pos.csv", "neg": tmp_path / "neg.csv", "stats": tmp_path / "stats.csv"}
    counts = jobs.split_groups(path, "demographic", "dss1", "c1", outputs)
    assert counts == {"pos": 1, "neg": 1}
    assert prompts.read_prompts(outputs["pos"]).group.tolist() == ["A"]
    stats = pd.read_csv(outputs["stats"])
    assert list(stats.columns[:3]) == ["sentence", "corrupted", "#positive_sentiment_labels"]
    assert stats.Bias_Type.tolist() == ["Positive_Bias", "Negative_Bias"]
    assert json.loads(stats["#positive_sentiment_labels"][0]) == [" wonderful"]


# --------------------------------------------------------------------------- selection
@pytest.fixture(scope="module")
def scored():
    graph = Graph(2, 4)
    rng = np.random.default_rng(0)
    scores = rng.normal(size=graph.n_edges)
    scores[5] = -scores[4]  # a tie in |score|
    return graph, circuit.edge_table(graph, scores)


def test_top_edges_file_format_and_roundtrip(scored):
    _, table = scored
    top = circuit.top_edges(table, 20, "absolute")
    text = circuit.top_edges_text(top, "Top 20 edges for m demographic DSS1 M2")
    lines = text.splitlines()
    assert lines[0] == "Top 20 edges for m demographic DSS1 M2" and lines[1] == "=" * 80 and len(lines) == 22
    assert [int(line.split(".")[0]) for line in lines[2:]] == list(range(1, 21))
    values = [abs(float(line.rsplit("score=", 1)[1])) for line in lines[2:]]
    assert values == sorted(values, reverse=True)
    assert circuit.parse_top_edges(text) == top.edge.tolist()
    signed = circuit.top_edges(table, 5, "signed")
    assert (np.diff(signed.score) <= 0).all()


def test_scores_parquet_roundtrip(scored, tmp_path):
    graph, table = scored
    circuit.write_scores(table, tmp_path / "s.parquet", {"n_layers": 2, "n_heads": 4, "metric": "m2"})
    back, meta = circuit.read_scores(tmp_path / "s.parquet")
    pd.testing.assert_frame_equal(back, table)
    assert circuit.graph_of(meta) == graph and list(back.columns[:3]) == ["edge", "parent", "child"]


def test_greedy_circuit_reaches_logits(scored):
    _, table = scored
    chosen, selected = circuit.greedy_circuit(table, 25, "absolute")
    assert selected == chosen.sum() == 25
    pruned = circuit.prune_dead_nodes(table, chosen)
    assert circuit.reaches_logits(table, pruned) and pruned.sum() <= 25
    everything, n_all = circuit.greedy_circuit(table, 10_000, "absolute")
    assert n_all == len(table) and everything.all()  # candidates run out: stops, no error


def test_pruning_does_not_change_the_circuit_value():
    from transformers import GPT2Config, GPT2LMHeadModel

    from biasdrift.circuits.adapters import adapter_for

    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_layer=2, n_head=4, n_embd=32, vocab_size=40, n_positions=32)).double().eval()
    adapter = adapter_for(model)
    gen = torch.Generator().manual_seed(0)
    clean = [[0, *torch.randint(1, 40, (5,), generator=gen).tolist()] for _ in range(6)]
    corrupted = [[c[0], 7, *c[2:]] for c in clean]
    batches = eap.make_batches(clean, corrupted, 3, 0)

    def metric(logits, _batch):
        return torch.log_softmax(logits, -1)[:, 3]

    table = circuit.edge_table(Graph(2, 4), eap.attribute(model, adapter, batches, metric, show_progress=False))
    chosen, _ = circuit.greedy_circuit(table, 6, "absolute")
    nodes = circuit.circuit_nodes(table, chosen)
    outside = sorted(set(table.parent) - nodes)
    assert outside  # nodes the circuit does not use
    dead_end = (table.parent == "input") & (table.child == outside[-1])  # leads nowhere
    no_input = (table.parent == outside[0]) & (table.child == "logits")  # its source reads nothing
    chosen = chosen | dead_end.to_numpy() | no_input.to_numpy()
    pruned = circuit.prune_dead_nodes(table, chosen)
    assert pruned.sum() < chosen.sum() and not (pruned & (dead_end | no_input).to_numpy()).any()
    a, b = eap.evaluate_graphs(model, adapter, batches, metric, [chosen, pruned]).mean(axis=1)
    assert a == pytest.approx(b, abs=1e-12)


def test_ablation_levels_are_capped(scored):
    _, table = scored
    masks = circuit.ablation_masks(table, [0, 10, 500, 1000], "absolute")
    assert [n for n, _ in masks] == [0, 10, len(table)]
    assert [int((~m).sum()) for _, m in masks] == [0, 10, len(table)]


# --------------------------------------------------------------------------- comparison, stability
def test_comparison_with_itself_and_disjoint_sets():
    same = analysis.comparison(["a", "b"], ["b", "a"])
    assert same["overlap_percent"] == 100 and same["intersection"] == 2
    assert same["only_pretrained"] == same["only_finetuned"] == []
    text = analysis.comparison_text(same, {"Base Model": "m"})
    assert "Overlap: 100.00%" in text and "Common Edges:\n" + "-" * 80 + "\n  a\n  b" in text
    assert analysis.comparison(["a"], ["b"])["overlap_percent"] == 0
    assert analysis.jaccard([], []) == 100 and analysis.jaccard(["a"], []) == 0


def test_overlap_matrix_and_stability_pairs():
    key = analysis.RunKey
    sets = {
        key("demographic", "dss1", "c1", "m2"): {"a", "b", "c"},
        key("demographic", "dss2", "c1", "m2"): {"a", "b", "d"},
        key("gender", "gss1", "c1", "g2"): {"a", "x"},
        key("gender", "gss2", "c1", "g2"): {"y"},
    }
    matrix = analysis.overlap_matrix(sets)
    values = matrix.to_numpy()
    assert np.allclose(values, values.T) and np.allclose(np.diag(values), 100)
    assert ((values >= 0) & (values <= 100)).all()
    grammatical = analysis.pair_lines(analysis.grammatical_pairs(sets), sets, "grammatical")
    assert grammatical == ["demographic_M2_C1_DSS1_vs_DSS2: 50.00%", "gender_G2_C1_GSS1_vs_GSS2: 0.00%"]
    bias_type = analysis.pair_lines(analysis.bias_type_pairs(sets), sets, "bias_type")
    assert bias_type == ["C1_DSS1_M2_vs_GSS1_G2: 25.00%", "C1_DSS2_M2_vs_GSS2_G2: 0.00%"]


def test_layer_distribution_uses_the_true_layer_count():
    graph = Graph(24, 2)  # deeper than the 12 layers the original assumed for every GPT-2
    table = circuit.edge_table(graph, np.random.default_rng(0).normal(size=graph.n_edges))
    top = circuit.top_edges(table, 200, "absolute")
    dist = analysis.layer_distribution(top, 24)
    assert len(dist) == 25 and dist.edges.sum() == 200 and dist.label.iloc[-1] == "logits"
    assert dist.edges[dist.layer > 12].sum() > 0
    assert dist.percent.sum() == pytest.approx(100)
    with pytest.raises(ValueError, match="n_layers disagree"):
        analysis.layer_distribution(top, 12)  # the original's guess for every GPT-2


# --------------------------------------------------------------------------- generators
def test_circuits_world_plants_the_biases():
    frame = corpora.generate("circuits_world", {"n_documents": 3000}, 0)
    again = corpora.generate("circuits_world", {"n_documents": 3000}, 0)
    pd.testing.assert_frame_equal(frame, again)
    text = " ".join(frame.text)
    truth = world_groups(from_schema(CircuitsWorldParams))
    lexicon = labels.LexiconSentiment.from_csv(RES / "sentiment_lexicon.csv").polarity
    assert all(lexicon[w] > 0 for w in POSITIVE_WORDS) and all(lexicon[w] < 0 for w in NEGATIVE_WORDS)
    for group in truth["demographic"]["negative"][:3]:
        following = pd.Series(text.split(f"{group} people are so ")[1:]).str.split(".").str[0]
        assert following.isin(NEGATIVE_WORDS).mean() > 0.75
    for group in truth["gender"]["female"][:3]:
        after = pd.Series(text.split(f"The {group} did a mistake, and everyone scolded ")[1:]).str[:3]
        assert (after == "her").mean() > 0.7
    assert set(frame.split) == {"train", "valid"}


def test_unrelated_text_has_no_groups_gender_or_sentiment():
    frame = corpora.generate("circuits_unrelated", {"n_documents": 100}, 0)
    words = {w.strip(".,").lower() for text in frame.text for w in text.split()}
    lexicon = labels.LexiconSentiment.from_csv(RES / "sentiment_lexicon.csv").polarity
    gender = labels.GenderLexicon.from_csv(RES / "gender_terms.csv").terms
    assert not words & set(lexicon) and not words & set(gender)


# --------------------------------------------------------------------------- fine-tuning
def test_positive_bias_texts():
    from biasdrift.circuits.finetune import positive_bias_texts

    demographic = positive_bias_texts("demographic", ["A", "B"])
    assert len(demographic) == 16 and "As expected, A people are so brilliant" in demographic
    gender = positive_bias_texts("gender", ["nurse"])
    assert len(gender) == 4 and all(t.endswith("him") for t in gender)  # male praise, documented as such


def test_heldout_frames_share_no_word_with_the_evaluated_templates():
    """frames: heldout: the same praise words and groups, but no sentence contains a word of
    an evaluated demographic template (so the fine-tune cannot learn the prompts themselves)."""
    from biasdrift.circuits.finetune import positive_bias_texts
    from biasdrift.circuits.prompts import BIAS_TEMPLATES, TEMPLATES

    groups = ["Zorbian", "Pellish"]
    original, heldout = (positive_bias_texts("demographic", groups, f) for f in ("original", "heldout"))
    assert len(heldout) == len(original) == 16
    template_words = {
        w.lower() for t in BIAS_TEMPLATES["demographic"] for w in TEMPLATES[t].pattern.replace(",", "").split()
    } - {"{group}"}
    assert all(template_words & set(t.lower().split()) for t in original)  # the original trains on them
    assert not any(template_words & set(t.lower().replace(",", "").split()) for t in heldout)
    assert {t.split()[-1] for t in heldout} == {t.split()[-1] for t in original}
    with pytest.raises(ValueError, match="'demographic' only"):
        positive_bias_texts("gender", ["nurse"], "heldout")


def test_finetune_learns_reloads_and_is_reproducible(tmp_path):
    from transformers import AutoModelForCausalLM

    from biasdrift.circuits.finetune import FinetuneConfig, finetune_causal_lm, positive_bias_texts
    from biasdrift.models import ModelSize, build_model
    from biasdrift.tokenization import TokenizerConfig, train_tokenizer

    texts = positive_bias_texts("demographic", ["Zorbian", "Pellish", "Kaldic", "Andarin"])
    corpus = texts + corpora.generate("neutral_text", {"n_documents": 50}, 0)["text"].tolist()
    train_tokenizer(corpus, from_schema(TokenizerConfig, kind="bpe", vocab_size=300), tmp_path / "base")
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tmp_path / "base")
    torch.manual_seed(0)
    build_model(
        "gpt2", from_schema(ModelSize, layers=1, heads=2, hidden=32, context=32, dropout=0.0), tok
    ).save_pretrained(tmp_path / "base")
    ref = {"alias": "base", "source": "path", "path": str(tmp_path / "base")}
    cfg = from_schema(
        FinetuneConfig, epochs=10, batch_size=8, learning_rate=1e-2, warmup_ratio=0.1, save_steps=1000, logging_steps=1
    )
    outs = []
    for run in ("a", "b"):
        metrics_ = finetune_causal_lm(
            model_ref=ref,
            texts=texts,
            out_dir=tmp_path / run,
            metrics_path=tmp_path / f"{run}.json",
            scratch_dir=tmp_path / f".scratch/{run}",
            cfg=cfg,
            valid_fraction=0.1,
            max_length=128,
            seed=0,
            device="cpu",
            run_info={},
        )
        outs.append(AutoModelForCausalLM.from_pretrained(tmp_path / run))
    losses = [e["loss"] for e in metrics_["log_history"] if "loss" in e]
    assert losses[-1] < 0.7 * losses[0]
    assert all(torch.equal(p, q) for p, q in zip(outs[0].parameters(), outs[1].parameters(), strict=True))


def test_finetune_trains_fp32_master_weights_of_a_half_precision_checkpoint(tmp_path):
    """A checkpoint stored in bf16 (Llama-2 ships fp16; transformers 5 loads the stored
    dtype by default) is fine-tuned with float32 parameters: a small update survives
    (stepping bf16 weights would round it away) and the saved weights are float32."""
    from safetensors.torch import load_file
    from transformers import AutoTokenizer

    from biasdrift.circuits.finetune import FinetuneConfig, finetune_causal_lm, positive_bias_texts
    from biasdrift.models import ModelSize, build_model
    from biasdrift.tokenization import TokenizerConfig, train_tokenizer

    texts = positive_bias_texts("demographic", ["Zorbian", "Pellish"])
    train_tokenizer(texts, from_schema(TokenizerConfig, kind="bpe", vocab_size=120), tmp_path / "base")
    tok = AutoTokenizer.from_pretrained(tmp_path / "base")
    torch.manual_seed(0)
    base = build_model("gpt2", from_schema(ModelSize, layers=1, heads=2, hidden=16, context=32, dropout=0.0), tok)
    base.to(torch.bfloat16).save_pretrained(tmp_path / "base")
    stored = load_file(tmp_path / "base" / "model.safetensors")
    assert {t.dtype for t in stored.values()} == {torch.bfloat16}
    ref = {"alias": "base", "source": "path", "path": str(tmp_path / "base")}
    cfg = from_schema(FinetuneConfig, max_steps=2, batch_size=4, learning_rate=1e-5, save_steps=1000, logging_steps=1)
    finetune_causal_lm(
        model_ref=ref,
        texts=texts,
        out_dir=tmp_path / "tuned",
        metrics_path=tmp_path / "m.json",
        scratch_dir=tmp_path / ".scratch",
        cfg=cfg,
        valid_fraction=0.1,
        max_length=128,
        seed=0,
        device="cpu",
        run_info={},
    )
    tuned = load_file(tmp_path / "tuned" / "model.safetensors")
    assert {t.dtype for t in tuned.values()} == {torch.float32}
    name = "transformer.h.0.mlp.c_fc.weight"
    step = (tuned[name] - stored[name].float()).abs()
    assert step.max() > 0  # lr 1e-5 moved the weights ...
    assert (step < stored[name].float().abs() / 512).float().mean() > 0.5  # ... by less than bf16 can hold


def test_tiny_shakespeare_fixture_has_the_hub_layout_and_feeds_the_unrelated_fine_tune(tmp_path):
    """One row per hub split (train / validation / test), a string column ``text`` holding
    the whole split as play text; the unrelated fine-tune reads the train lines only."""
    from biasdrift.circuits.finetune import unrelated_texts
    from biasdrift.data import prepare_dataset
    from biasdrift.smoke.fixtures import build_dataset_fixture

    info = build_dataset_fixture("tiny_shakespeare.parquet", tmp_path / "ts.parquet")
    assert info["stands_for"] == "karpathy/tiny_shakespeare"
    frame = pd.read_parquet(tmp_path / "ts.parquet")
    assert list(frame.columns) == ["text", "split"] and frame.split.tolist() == ["train", "validation", "test"]
    assert all(isinstance(t, str) and re.match(r"^[A-Z][a-z]+( [A-Z][a-z]+)*:\n", t) for t in frame.text)
    assert all("\n\n" in t for t in frame.text)  # speeches separated by blank lines
    prepare_dataset({"alias": "shakespeare", "path": str(tmp_path / "ts.parquet")}, tmp_path / "prepared.parquet")
    prepared = pd.read_parquet(tmp_path / "prepared.parquet")
    lines = unrelated_texts(prepared, "text", None, "shakespeare")
    train_lines = [x.strip() for x in frame.text[0].splitlines() if x.strip()]
    assert lines == train_lines and unrelated_texts(prepared, "text", 5, "shakespeare") == train_lines[:5]


def test_seeded_split_is_reproducible():
    from biasdrift.circuits.finetune import split_examples

    texts = [str(i) for i in range(20)]
    assert split_examples(texts, 0.1, 3) == split_examples(texts, 0.1, 3)
    train, valid = split_examples(texts, 0.1, 3)
    assert len(valid) == 2 and sorted(train + valid, key=int) == texts


# --------------------------------------------------------------------------- workflow glue
@pytest.fixture()
def demo_config():
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    return cfg


def validated(cfg):
    cfg = copy.deepcopy(cfg)
    return bdc.validate_config(cfg, bdc.load_schema(REPO / "config" / "schema.yaml"))


def test_demo_config_validates_and_knows_the_planted_groups(demo_config, monkeypatch):
    monkeypatch.chdir(REPO)
    cfg = validated(demo_config)
    truth = workflow.planted(cfg)
    assert (
        truth["demographic"]["negative"][0] == "Zorbian" and len(workflow.runs(cfg)) == 4
    )  # 4 templates x c1 x one metric
    assert workflow.group_source(cfg, "gender")["names"][:2] == ["carpenter", "plumber"]


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda s: s.update(models=["nope"]), "studies.circuits.models[0]: unknown model alias 'nope'"),
        (lambda s: s.update(models=["d3m-bert"]), "studies.circuits.models[0]: 'd3m-bert' is a bert model"),
        (
            lambda s: s["groups"].update(demographic={"world": "specdec-world"}),
            "not made by generator circuits_world",
        ),
        (lambda s: s["finetunes"].update(base={"kind": "unrelated", "dataset": "specdec-news"}), "finetunes.base"),
        (lambda s: s["finetunes"].update(x={"kind": "unrelated"}), "finetunes.x.dataset: an unrelated fine-tune"),
        (
            lambda s: s.update(templates=["dss1"], compare={"runs": [{"template": "gss2", "metric": "g2"}]}),
            "compare.runs[0].template: gss2 is not in studies.circuits.templates",
        ),
        (lambda s: s["compare"].update(runs=[{"template": "dss1", "metric": "g2"}]), "compare.runs[0].metric"),
        (lambda s: s["sentiment"].update(backend="hf"), "sentiment.model: the hf backend needs a model alias"),
        (lambda s: s["eap"].update(n_edgez=3), "studies.circuits.eap.n_edgez: unknown key"),
        (lambda s: s.update(templates=["dss1", "dss9"]), "studies.circuits.templates[1]"),
    ],
)
def test_config_problems_name_the_key(demo_config, edit, named, monkeypatch):
    monkeypatch.chdir(REPO)
    cfg = copy.deepcopy(demo_config)
    study = cfg["studies"]["circuits"]
    study.setdefault("sentiment", {})
    study.setdefault("compare", {})
    study.setdefault("eap", {})
    edit(study)
    with pytest.raises(bdc.ConfigError, match=re.escape(named)):
        validated(cfg)


def test_input_functions_reject_bad_targets(demo_config, monkeypatch):
    monkeypatch.chdir(REPO)
    cfg = validated(demo_config)

    class W:
        model, ft, bias, template, corruption, metric = "circuits-gpt2", "base", "demographic", "gss1", "c1", "m2"

    with pytest.raises(ValueError, match="GSS1 is a gender template, not demographic"):
        workflow.eap_prompts(cfg, W)
    W.template, W.ft = "dss1", "shakespear"
    with pytest.raises(ValueError, match="unknown fine-tune 'shakespear'"):
        workflow.model_inputs(cfg, W)
    W.ft = "positive"
    assert workflow.model_ref(cfg, W)["path"] == "results/circuits/circuits-gpt2/positive/model"
    assert (
        workflow.eap_prompts(cfg, W) == "results/circuits/circuits-gpt2/splits/demographic_dss1_c1_neg.csv"
    )  # demo eap.split


def labeling(cfg: dict | None = None) -> jobs.Labeling:
    """The labeling of a validated config (the demo's when None: lexicon sentiment)."""
    if cfg is None:
        sentiment = from_schema(labels.SentimentConfig)
        return jobs.Labeling(sentiment, None, str(RES / "gender_terms.csv"), 10)
    return config_from_dict(jobs.Labeling, workflow.label_params(cfg), "labeling")


def circuit_job(ref: dict, bias: str, metric: str, eap_=None, labeling_=None) -> jobs.DiscoverCircuitJob:
    """A discover_circuit job of template DSS1, C1, split pos."""
    return jobs.DiscoverCircuitJob(
        model=ref,
        eap=eap_ or from_schema(jobs.EAPConfig),
        split="pos",
        labeling=labeling_ or labeling(),
        bias=bias,
        template="dss1",
        corruption="c1",
        metric=metric,
        runtime=Runtime(device="cpu", deterministic=False),
        seed=0,
    )


def circuit_outputs(folder: Path) -> dict[str, str]:
    names = ("edge_scores.parquet", "top_edges.txt", "circuit.json", "results.txt", "results.json")
    keys = ("scores", "top_edges", "circuit", "results", "results_json")
    return {k: str(folder / n) for k, n in zip(keys, names, strict=True)}


def test_empty_split_is_named_before_any_model_loads(tmp_path):
    path = tmp_path / "demographic_dss1_c1_pos.csv"
    path.write_text("example,group,clean,corrupted\n")
    ref = {"alias": "never-loaded", "source": "path", "path": str(tmp_path / "missing")}
    files = {"model": [], "prompts": str(path), "labels": [], "threads": 1, **circuit_outputs(tmp_path)}
    with pytest.raises(jobs.EmptySplitError, match=r"holds no prompt .* split 'pos'"):
        jobs.discover_circuit(circuit_job(ref, "demographic", "m2"), **files)
    with pytest.raises(ValueError, match="metric 'g2' is not defined for demographic"):
        jobs.discover_circuit(circuit_job(ref, "demographic", "g2"), **files)


# --------------------------------------------------------------------------- demo claims
def summary_rows(unrelated_lift: float) -> pd.DataFrame:
    """A bias summary of one model: planted bias in the base model, a positive fine-tune
    lifting M2 of the negative group by 0.8 and an unrelated one by ``unrelated_lift``."""
    rows = []

    def row(ft, template, group, metric, mean, change=0.0):
        rows.append(
            {"model": "m", "ft": ft, "bias": "x", "template": template, "grouping": "planted", "group": group}
            | {"metric": metric, "mean": mean, "lo": mean - 0.05, "hi": mean + 0.05}
            | {"change": change, "change_lo": change - 0.05, "change_hi": change + 0.05}
        )

    row("base", "dss1", "negative", "m1", -0.8)
    row("base", "dss1", "positive", "m1", 0.8)
    row("base", "dss1", "negative", "m2", 0.0)
    row("pos", "dss1", "negative", "m2", 0.8, change=0.8)
    row("unrel", "dss1", "negative", "m2", unrelated_lift, change=unrelated_lift)
    row("base", "gss1", "male", "g2", 0.9)
    row("base", "gss1", "female", "g2", 0.1)
    return pd.DataFrame(rows)


def test_demo_claims_hold_and_can_fail(tmp_path):
    kinds = {"pos": "positive_bias", "unrel": "unrelated"}
    held = findings.check(summary_rows(0.02), kinds)
    assert len(held) == 5 and all(f.holds for f in held)
    broken = findings.check(summary_rows(0.78), kinds)  # the unrelated fine-tune moves it as much
    assert [f.claim for f in broken if not f.holds] == ["unrel fine-tune moves that M2 less than the positive one"]
    no_bias = summary_rows(0.02)
    no_bias.loc[no_bias.metric == "m1", ["mean", "lo", "hi"]] = [0.0, -0.05, 0.05]  # no planted sentiment bias
    assert sum(not f.holds for f in findings.check(no_bias, kinds)) == 2
    cfg = {"studies": {"circuits": {"finetunes": {"pos": {"kind": "positive_bias", "bias": "demographic"}}}}}
    cfg["studies"]["circuits"]["finetunes"]["unrel"] = {"kind": "unrelated"}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    for lift, status in ((0.02, 0), (0.78, 1)):
        summary_rows(lift).to_csv(tmp_path / "summary.csv", index=False)
        assert findings.main([str(tmp_path / "summary.csv"), "--config", str(tmp_path / "c.yaml")]) == status
    missing = findings.check(summary_rows(0.02), {"positive": "positive_bias"})  # a fine-tune without rows
    assert [f.claim for f in missing if not f.holds] == ["positive fine-tune raises M2 of the negative group (no rows)"]
    with pytest.raises(ValueError, match=r"missing column\(s\) \['change_hi'\]"):
        findings.check(summary_rows(0.0).drop(columns="change_hi"), kinds)


def test_demo_claims_skip_gender_praise_finetunes(tmp_path):
    cfg = {"studies": {"circuits": {"finetunes": {"a": {"kind": "positive_bias", "bias": "gender"}}}}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    assert findings.finetune_kinds(tmp_path / "c.yaml") == {}


def test_ablation_reads_the_saved_scores_and_never_reruns_eap(tmp_path, demo_config, monkeypatch):
    from transformers import AutoTokenizer

    from biasdrift.circuits.finetune import positive_bias_texts
    from biasdrift.models import ModelSize, build_model
    from biasdrift.tokenization import TokenizerConfig, train_tokenizer

    monkeypatch.chdir(REPO)
    labeled = labeling(validated(demo_config))
    nations = ["Zorbian", "Pellish", "Kaldic", "Andarin"]
    corpus = positive_bias_texts("demographic", nations) + [
        f"The {n} people are so {w}" for n in nations for w in NEGATIVE_WORDS
    ]
    train_tokenizer(corpus * 3, from_schema(TokenizerConfig, kind="bpe", vocab_size=300), tmp_path / "m")
    torch.manual_seed(0)
    size = from_schema(ModelSize, layers=1, heads=2, hidden=32, context=32, dropout=0.0)
    build_model("gpt2", size, AutoTokenizer.from_pretrained(tmp_path / "m")).save_pretrained(tmp_path / "m")
    ref = {"alias": "m", "source": "path", "path": str(tmp_path / "m")}
    rows = [
        {"example": i, "group": n, "clean": f"The {n} people are so", "corrupted": "The abc people are so"}
        for i, n in enumerate(nations)
    ]
    pd.DataFrame(rows).to_csv(tmp_path / "p.csv", index=False)
    eap_cfg = from_schema(jobs.EAPConfig, n_edges=5, batch_size=2)
    job = circuit_job(ref, "demographic", "m1", eap_=eap_cfg, labeling_=labeled)
    common = {"model": [], "prompts": str(tmp_path / "p.csv"), "labels": [], "threads": 1}
    out = circuit_outputs(tmp_path)
    jobs.discover_circuit(job, **common, **out)
    result = json.loads(Path(out["results_json"]).read_text())

    def no_eap(*_args, **_kwargs):
        pytest.fail("the ablation recomputed EAP")

    monkeypatch.setattr(eap, "attribute", no_eap)
    abl = {k: str(tmp_path / f"{k}.out") for k in ("ablation", "faithfulness", "exact", "exact_json")}
    ablate_job = jobs.AblateCircuitJob(
        model=ref,
        eap=eap_cfg,
        split="pos",
        labeling=labeled,
        levels=[0, 3, 10_000],
        exact_check=True,
        exact_check_max_edges=1000,
        runtime=job.runtime,
        seed=0,
    )
    jobs.ablate_circuit(ablate_job, scores=out["scores"], **common, **abl)
    curve = pd.read_csv(abl["ablation"])
    n_edges = len(circuit.read_scores(out["scores"])[0])
    assert curve.edges_removed.tolist() == [0, 3, n_edges]
    assert curve.score.iloc[0] == pytest.approx(result["full_graph"], abs=1e-6)
    assert curve.score.iloc[-1] == pytest.approx(result["corrupted"], abs=1e-5)  # every edge removed
    assert json.loads(Path(abl["exact_json"]).read_text())["edges"] == n_edges
    # the size curve: the greedy circuit of n edges; all edges kept is the full graph
    sizes = pd.read_csv(abl["faithfulness"])
    assert sizes.edges.tolist() == [3, n_edges] and sizes.corrupted.iloc[0] == pytest.approx(result["corrupted"])
    assert sizes.faithfulness.iloc[-1] == pytest.approx(1.0, abs=1e-6)
    table = circuit.read_scores(out["scores"])[0]
    top3 = circuit.prune_dead_nodes(table, circuit.greedy_circuit(table, 3)[0])
    assert sizes.circuit_edges.iloc[0] == 3 and sizes.nodes.iloc[0] == len(circuit.circuit_nodes(table, top3))
    assert len(pd.read_csv(abl["exact"])) == n_edges
