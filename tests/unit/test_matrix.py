"""The cross-study probe matrix: the registries the studies fill, the scoring of one cell
against a direct computation, the paired change, applicability, and the table."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import yaml

from biasdrift import config as bdc
from biasdrift.matrix import registry, report, scoring
from biasdrift.matrix import workflow as mx
from tests.conftest import REPO

pytestmark = pytest.mark.usefixtures("torch_one_thread")

SCHEMA = bdc.load_schema(REPO / "config" / "schema.yaml")
DEMO = bdc.validate_config(yaml.safe_load((REPO / "config" / "config.yaml").read_text()), SCHEMA)
STATS = {"bootstrap": 500, "confidence": 0.95, "seed": 0}


# --------------------------------------------------------------------------- registries
def test_every_study_registers_its_fine_tunes_against_their_base():
    rows = mx.rows(DEMO)
    fine_tunes = {name: row["base"] for name, row in rows.items() if row["base"]}
    assert fine_tunes["circuits-gpt2.positive"] == "circuits-gpt2"
    assert fine_tunes["politune-llama.left.dpo"] == "politune-llama"
    assert fine_tunes["specdec-main.finetune"] == "specdec-main"
    assert fine_tunes["tinystories-delete-f-lr0.001-seed0"] == "tinystories-all"
    assert rows["politune-llama.right.sft"]["adapter"].endswith("politune-llama/right/sft/adapters/final")
    assert rows["politune-llama"]["chat_template"] == rows["politune-llama.left.dpo"]["chat_template"] is not None
    assert rows["tinystories-all"]["tokenizer"]["kind"] == "sentencepiece"
    assert {r["study"] for r in rows.values()} == {"circuits", "politune", "specdec", "tinystories"}


def test_matrix_studies_chooses_whose_rows_and_probes_join():
    cfg = copy.deepcopy(DEMO)
    cfg["matrix"]["studies"] = ["circuits"]
    assert {r["study"] for r in mx.rows(cfg).values()} == {"circuits"}
    assert set(mx.probes(cfg)) == {"circuits-sentiment", "circuits-gender"}
    del cfg["studies"]["circuits"]
    assert "studies.circuits" in mx.problems(cfg)[0]


def test_the_circuits_probes_ask_about_the_groups_the_world_planted():
    from biasdrift.circuits.workflow import world_groups

    planted = world_groups(DEMO, "circuits-world")
    probes = mx.probes(DEMO)
    for name, bias, a, b in (
        ("circuits-sentiment", "demographic", "positive", "negative"),
        ("circuits-gender", "gender", "male", "female"),
    ):
        items = probes[name]["items"]
        for group, planted_names in (("a", planted[bias][a]), ("b", planted[bias][b])):
            prompts = " ".join(i["prompt"] for i in items if i["group"] == group)
            assert all(n in prompts for n in planted_names), (name, group)
    sentiment = probes["circuits-sentiment"]["items"][0]
    assert "wonderful" in sentiment["a"] and "lazy" in sentiment["b"]
    leaning = probes["politune-leaning"]
    assert leaning["needs"] == ["chat_template", "words"]
    assert {i["group"] for i in leaning["items"] if "public money" in i["prompt"]} == {"a"}


def test_a_config_probe_is_read_from_its_tsv_and_bad_ones_name_the_culprit(tmp_path):
    good = tmp_path / "toy.tsv"
    good.write_text("prompt\tgroup\toptions_a\toptions_b\nThe cat is\ta\tsoft|warm\tcold\nThe dog is\tb\tsoft\tcold\n")
    cfg = copy.deepcopy(DEMO)
    cfg["matrix"]["probes"] = {
        "toy": {"kind": "contrast", "items": str(good), "group_a": "cats", "group_b": "dogs", "needs": ["words"]}
    }
    cfg["matrix"]["probes"]["toy"]["description"] = ""
    probe = mx.probes(cfg)["toy"]
    assert probe["items"][0]["a"] == ["soft", "warm"] and probe["study"] == "config"
    bad = tmp_path / "bad.tsv"
    bad.write_text("prompt\tgroup\nThe cat is\ta\n")
    cfg["matrix"]["probes"]["toy"]["items"] = str(bad)
    problems = mx.problems(cfg)
    assert problems and "options_a" in problems[0] and "matrix.probes.toy" in problems[0]
    cfg["matrix"]["probes"] = {}
    cfg["matrix"]["models"] = ["no-such-model"]
    assert "no-such-model" in mx.problems(cfg)[0]


# --------------------------------------------------------------------------- scoring
@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    """A random 2-layer GPT-2 with a byte-level BPE tokenizer, saved as a path model."""
    from transformers import AutoTokenizer

    from biasdrift.config import from_schema
    from biasdrift.models import ModelSize, build_model
    from biasdrift.tokenization import TokenizerConfig, train_tokenizer

    root = tmp_path_factory.mktemp("matrix")
    texts = [f"the cat number {i} sat on the mat and the dog was kind or rude" for i in range(200)]
    train_tokenizer(texts, from_schema(TokenizerConfig, kind="bpe", vocab_size=300), root / "model")
    tokenizer = AutoTokenizer.from_pretrained(root / "model")
    size = from_schema(ModelSize, layers=2, heads=2, hidden=32, context=64)
    build_model("gpt2", size, tokenizer).save_pretrained(root / "model")
    ref = registry.path_ref("tiny", str(root / "model"))
    return registry.model_row("tiny", "test", model=ref, inputs=[], base=None, label="tiny")


def toy_probe(kind: str = "contrast", needs=("words",)) -> dict:
    items = [
        {"prompt": "the cat sat on the", "group": "a", "a": ["mat", "dog"], "b": ["cat"]},
        {"prompt": "the dog was", "group": "a", "a": ["kind"], "b": ["rude", "number"]},
        {"prompt": "the dog sat", "group": "b", "a": ["kind"], "b": ["rude"]},
        {"prompt": "a cat", "group": "b", "a": ["was"], "b": ["sat on"]},
    ]
    make = registry.contrast_probe if kind == "contrast" else registry.certainty_probe
    return make("toy", "test", items=items, groups={"a": "x", "b": "y"}, description="", needs=list(needs))


def direct_logp(model, ids: list[int], context: int) -> float:
    """log P(ids[context:] | ids[:context]), one unpadded sequence."""
    import torch

    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), -1)
    return float(sum(logp[p - 1, ids[p]] for p in range(context, len(ids))))


def test_item_values_equal_a_direct_computation(tiny_lm):
    """Batched, right-padded scoring = each (prompt, word) scored alone; the contrast is
    logsumexp over each side's words; certainty is the next token's entropy."""
    import torch

    model = scoring.load_row_model(tiny_lm, "cpu")
    codec = scoring.Codec(tiny_lm["tokenizer"], None)
    probe = toy_probe()
    values = scoring.item_values(model, codec, probe, "cpu", batch_size=3)
    for value, item in zip(values, probe["items"], strict=True):
        context = [codec.bos, *codec.encode(item["prompt"])]

        def side(words, context=context):
            lps = [direct_logp(model, context + codec.encode(" " + w), len(context)) for w in words]
            return float(torch.logsumexp(torch.tensor(lps), 0))

        assert value == pytest.approx(side(item["a"]) - side(item["b"]), abs=1e-4)
    entropy = scoring.item_values(model, codec, toy_probe("certainty"), "cpu", batch_size=3)
    with torch.no_grad():
        ids = [codec.bos, *codec.encode("the dog sat")]
        last = torch.log_softmax(model(torch.tensor([ids])).logits[0, -1], -1)
    assert entropy[2] == pytest.approx(float(-(last.exp() * last).sum()), abs=1e-4)


def test_a_cell_scores_its_gap_and_the_change_is_paired(tiny_lm):
    probe = toy_probe()
    base = scoring.score_cell(row=tiny_lm, probe=probe, base=None, stats=STATS, device="cpu", batch_size=8)
    values = np.asarray(base["values"])
    assert base["applicable"] and base["score"] == pytest.approx(values[:2].mean() - values[2:].mean())
    assert base["low"] <= base["score"] <= base["high"] and base["change"] is None
    same = scoring.score_cell(row=tiny_lm, probe=probe, base=base, stats=STATS, device="cpu", batch_size=8)
    assert same["change"] == pytest.approx(0.0, abs=1e-9) and same["significant"] is False
    groups = np.array([i["group"] for i in probe["items"]])
    shifted = dict(base, values=(values - np.where(groups == "a", 1.0, 0.0)).tolist())
    moved = scoring.change_against(values, groups, np.array([""] * len(groups)), shifted, STATS)
    assert moved["change"] == pytest.approx(1.0) and moved["significant"] is True
    assert moved["change_low"] == pytest.approx(1.0) and moved["change_high"] == pytest.approx(1.0)


def test_the_gap_is_taken_within_blocks():
    """Two frames with very different offsets: the within-frame gap is exactly 1 and its
    interval is tight; pooled over frames (unequal group sizes per frame) it would not be."""
    values = np.array([10.0, 10.0, 9.0, 0.0, -1.0, -1.0, -1.0])
    groups = np.array(["a", "a", "b", "a", "b", "b", "b"])
    blocks = np.array(["x", "x", "x", "y", "y", "y", "y"])
    gap, low, high = scoring.bootstrap_gap(values, groups, blocks, 500, 0.95, 0)
    assert gap == low == high == pytest.approx(1.0)
    pooled, low, high = scoring.bootstrap_gap(values, groups, np.array([""] * 7), 500, 0.95, 0)
    assert pooled != pytest.approx(1.0) and high - low > 1


def test_probes_that_do_not_apply_say_why(tiny_lm, tmp_path):
    chat = scoring.score_cell(
        row=tiny_lm,
        probe=toy_probe(needs=("words", "chat_template")),
        base=None,
        stats=STATS,
        device="cpu",
        batch_size=8,
    )
    assert chat["applicable"] is False and "chat template" in chat["reason"]
    template = tmp_path / "chat.jinja"
    template.write_text("{% for m in messages %}User: {{ m['content'] }}\n{% endfor %}Assistant:")
    with_template = dict(tiny_lm, chat_template=str(template))
    ok = scoring.score_cell(
        row=with_template,
        probe=toy_probe(needs=("words", "chat_template")),
        base=None,
        stats=STATS,
        device="cpu",
        batch_size=8,
    )
    assert ok["applicable"] is True

    class WordPiece:  # a codec whose vocabulary lacks "rude"
        unk, template = 0, None

        def encode(self, text):
            return [0 if "rude" in text else 5]

    reason = scoring.applicability(WordPiece(), toy_probe())
    assert "unknown token" in reason and "rude" in reason


def test_the_table_has_every_pair_and_refuses_a_missing_cell(tmp_path):
    cells = []
    for row in ("m", "m.ft"):
        for probe in ("p", "q"):
            path = tmp_path / f"{row}-{probe}.json"
            applicable = probe == "p"
            cell = {"row": row, "probe": probe, "applicable": applicable, "reason": None if applicable else "why"}
            cell.update(score=0.5, change=0.1 if row == "m.ft" and applicable else None, significant=row == "m.ft")
            path.write_text(json.dumps(cell))
            cells.append(str(path))
    out = report.summarize(cells=cells, rows=["m", "m.ft"], probes=["p", "q"], out_csv=str(tmp_path / "m.csv"))
    assert out == {"pairs": 4, "applicable": 2, "significant_changes": 1}
    with pytest.raises(ValueError, match="missing"):
        report.matrix_table(cells[:3], ["m", "m.ft"], ["p", "q"])
    figure = report.plot_matrix(str(tmp_path / "m.csv"), str(tmp_path / "m.svg"), str(tmp_path / "p.csv"), "t")
    assert figure == {"rows": 2, "probes": 2} and (tmp_path / "m.svg").stat().st_size > 0


def test_a_story_model_is_scored_through_its_sentencepiece_vocabulary(tmp_path):
    """tinystories' rows: a llama2c model saved like the study saves it, its tok.model."""
    from biasdrift.tinystories import architectures as arch
    from tests.unit.tinystories_helpers import build_world

    world = build_world(tmp_path / "w", n_shards=2, stories_per_shard=60, seed=1, vocab_size=400)
    config = arch.model_config(
        "tiny", {"dim": 32, "n_layers": 1, "n_heads": 2, "n_kv_heads": 2, "multiple_of": 16, "vocab_size": 400}
    )
    arch.Llama2cForCausalLM(config).save_pretrained(tmp_path / "story")
    tokenizer = {"kind": "sentencepiece", "path": str(world / "tok.model")}
    row = registry.model_row(
        "story",
        "tinystories",
        model=registry.path_ref("story", str(tmp_path / "story")),
        tokenizer=tokenizer,
        inputs=[],
        base=None,
        label="s",
    )
    cell = scoring.score_cell(row=row, probe=toy_probe(), base=None, stats=STATS, device="cpu", batch_size=8)
    assert cell["applicable"] and len(cell["values"]) == 4 and np.isfinite(cell["score"])
    chat = scoring.score_cell(
        row=row, probe=toy_probe(needs=("chat_template",)), base=None, stats=STATS, device="cpu", batch_size=8
    )
    assert chat["applicable"] is False
