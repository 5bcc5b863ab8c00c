"""tinystories: the LLM judge (reply parser, prompts, batching), feature rates that
count unparsed replies apart, and marker-vs-judge agreement (rates, agreement, kappa)."""

from __future__ import annotations

import json
import math
import random

import pytest
import torch

from biasdrift.config import from_schema
from biasdrift.tinystories import evaluation, synthetic
from biasdrift.tinystories.judge import (
    QUESTIONS,
    JudgeConfig,
    LMJudge,
    agreement,
    agreement_stats,
    confusion,
    load_judge,
    parse_verdict,
)
from biasdrift.tinystories.stories import FEATURES


# --------------------------------------------------------------------------- parser
@pytest.mark.parametrize(
    "reply,verdict",
    [
        ("Yes", True),
        ("yes.", True),
        ("No", False),
        ("No, the story does not have a twist.", False),
        ("Yes, the ball turns out to be a dragon.", True),
        ("**Yes**", True),
        ("Answer: No", False),
        ("The answer is yes.", True),
        ("<reasoning>The ball was a dragon, no one expected it.</reasoning><answer>Yes</answer>", True),
        ("<answer>yes</answer> ... <answer>No</answer>", False),  # the last tag decides
        ('\n  "No"  \n', False),
        ("Yes\nNo", True),  # the first line decides
    ],
)
def test_parser_reads_a_clear_leading_answer_or_an_answer_tag(reply, verdict):
    assert parse_verdict(reply) is verdict


@pytest.mark.parametrize(
    "reply",
    [
        "",
        "   ",
        None,
        "The story has a twist.",  # no yes/no at all
        "I think so",
        "Her eyes were wide.",  # "eyes" is no "yes" (the original's substring bug)
        "Nobody knows.",  # nor is "nobody" a "no"
        "Yes and no.",
        "yes/no",
        "Maybe",
        "<answer>Probably yes</answer>",  # a tag must hold exactly Yes or No
        "I'm sorry, I cannot answer that.",
        "Yeah",
    ],
)
def test_parser_leaves_everything_else_unparsed(reply):
    assert parse_verdict(reply) is None


# --------------------------------------------------------------------------- agreement
def test_kappa_of_a_textbook_table():
    # 50 pairs: 20 both yes, 5 marker-only, 10 judge-only, 15 both no (p_o = .7, p_e = .5)
    stats = agreement_stats({"both": 20, "marker_only": 5, "judge_only": 10, "neither": 15, "unparsed": 3})
    assert stats["n"] == 50 and stats["unparsed"] == 3
    assert stats["marker_rate"] == pytest.approx(25 / 50) and stats["judge_rate"] == pytest.approx(30 / 50)
    assert stats["agreement"] == pytest.approx(0.7) and stats["kappa"] == pytest.approx(0.4)


def test_kappa_matches_sklearn_and_unparsed_pairs_take_no_part():
    from sklearn.metrics import cohen_kappa_score

    rng = random.Random(0)
    markers = [rng.random() < 0.4 for _ in range(300)]
    judged = [m if rng.random() < 0.8 else not m for m in markers]
    judged_with_gaps = [None if i % 7 == 0 else j for i, j in enumerate(judged)]
    kept = [(m, j) for m, j in zip(markers, judged_with_gaps, strict=True) if j is not None]
    table = confusion(markers, judged_with_gaps)
    stats = agreement_stats(table)
    assert table["unparsed"] == len(markers) - len(kept) and stats["n"] == len(kept)
    expected = cohen_kappa_score([m for m, _ in kept], [j for _, j in kept])
    assert stats["kappa"] == pytest.approx(expected)
    assert stats["agreement"] == pytest.approx(sum(m == j for m, j in kept) / len(kept))


def test_kappa_edge_cases():
    perfect = agreement_stats(confusion([True, False, True], [True, False, True]))
    assert perfect["kappa"] == pytest.approx(1.0) and perfect["agreement"] == 1.0
    opposite = agreement_stats(confusion([True, False], [False, True]))
    assert opposite["kappa"] == pytest.approx(-1.0) and opposite["agreement"] == 0.0
    constant = agreement_stats(confusion([True, True], [True, True]))  # p_e = 1: undefined
    assert constant["agreement"] == 1.0 and math.isnan(constant["kappa"])
    nothing = agreement_stats(confusion([True, False], [None, None]))
    assert nothing["n"] == 0 and nothing["unparsed"] == 2 and math.isnan(nothing["judge_rate"])


def test_agreement_per_feature_over_judged_pairs():
    rows = [
        {"detected": ["Twist"], "judge": {"Twist": True, "Dialogue": None}},
        {"detected": ["Twist", "Dialogue"], "judge": {"Twist": False, "Dialogue": True}},
        {"detected": [], "judge": {"Twist": False, "Dialogue": True}},
    ]
    out = agreement(rows, ["Twist", "Dialogue"])
    assert (out["Twist"]["both"], out["Twist"]["marker_only"], out["Twist"]["neither"]) == (1, 1, 1)
    assert out["Twist"]["marker_rate"] == pytest.approx(2 / 3) and out["Twist"]["judge_rate"] == pytest.approx(1 / 3)
    assert out["Dialogue"]["n"] == 2 and out["Dialogue"]["unparsed"] == 1 and out["Dialogue"]["judge_only"] == 1


# --------------------------------------------------------------------------- rates
class StubJudge:
    """Replies by rule: Yes for stories with "dragon", an unparsable reply for stories
    with "fog", No otherwise; records every (story, feature) it is asked."""

    def __init__(self):
        self.asked: list[tuple[str, str]] = []

    def __call__(self, stories, features):
        self.asked += list(zip(stories, features, strict=True))
        replies = ["Yes" if "dragon" in s else "It is hard to say" if "fog" in s else "No" for s in stories]
        return [parse_verdict(r) for r in replies], replies


def test_judge_rates_every_story_for_every_feature_and_counts_unparsed_apart(monkeypatch):
    records = synthetic.generate_shard(from_schema(synthetic.SyntheticParams, stories_per_shard=200, seed=4), 0)
    texts = ["The box was a dragon.", "A fog came.", "They played.", 'Mom said, "Hi!"']

    def fake_sample(model, tokenizer, prompts, cfg, device):  # noqa: ARG001
        return [texts[i % len(texts)] for i in range(len(prompts))]

    monkeypatch.setattr(evaluation, "sample", fake_sample)
    cfg = evaluation.EvalConfig(prompts_per_feature=8, features=["Twist", "Dialogue"])
    judge = StubJudge()
    rates, rows = evaluation.feature_rates(None, None, records, cfg, "cpu", "Twist", judge)
    assert len(rows) == 3 * 8 and len(judge.asked) == len(rows) * 2  # each story x each feature
    assert {f for _, f in judge.asked} == {"Twist", "Dialogue"}
    twist = rates["requested"]["Twist"]
    # stories cycle dragon / fog / played / dialogue: 2 Yes, 2 unparsed, 4 No of 8
    assert (twist["k"], twist["n"], twist["unparsed"]) == (2, 6, 2) and twist["rate"] == pytest.approx(2 / 6)
    assert rates["detector"] == "judge" and rates["markers"]["requested"]["Twist"]["unparsed"] == 0
    assert all(r["shows_feature"] is r["judge"][r["feature"]] for r in rows)
    assert all(set(r["judge_replies"]) == {"Twist", "Dialogue"} for r in rows)
    # the marker rules see a dialogue in the quoted story, the judge never says Yes to it
    stats = agreement(rows, cfg.features)["Dialogue"]
    assert stats["marker_only"] > 0 and stats["unparsed"] == len(rows) // 4

    plain, _ = evaluation.feature_rates(None, None, records, cfg, "cpu", "Twist")
    assert plain["detector"] == "markers" and plain["requested"]["Dialogue"]["rate"] == pytest.approx(0.25)


# --------------------------------------------------------------------------- LMJudge
@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    """A random tiny GPT-2 with a locally trained BPE tokenizer, saved like a hub model."""
    from transformers import AutoTokenizer

    from biasdrift.models import ModelSize, build_model
    from biasdrift.tokenization import TokenizerConfig, train_tokenizer

    root = tmp_path_factory.mktemp("judge") / "lm"
    texts = [f"Yes or No? the cat {i} sat. Does the story have a twist? Answer: yes no maybe" for i in range(100)]
    train_tokenizer(texts, from_schema(TokenizerConfig, kind="bpe", vocab_size=300), root)
    tokenizer = AutoTokenizer.from_pretrained(root)
    torch.manual_seed(0)
    build_model("gpt2", from_schema(ModelSize, layers=1, heads=2, hidden=16, context=512), tokenizer).save_pretrained(
        root
    )
    return root


class EchoModel(torch.nn.Module):
    """generate() replies with the row's own prompt (left-padded with pad_token_id)."""

    def generate(self, input_ids, attention_mask, pad_token_id, **kwargs):  # noqa: ARG002
        return torch.cat([input_ids, torch.where(attention_mask.bool(), input_ids, pad_token_id)], dim=1)


def test_judge_prompts_in_the_chat_template_or_plain_and_keeps_the_order(tiny_lm):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_lm)
    cfg = JudgeConfig(batch_size=2, max_new_tokens=1, instruction="{story} | {question}")
    judge = LMJudge(EchoModel(), tokenizer, "cpu", cfg)
    assert not judge.chat and judge.prompt("A dog ran.", "Twist") == f"A dog ran. | {QUESTIONS['Twist']}\nAnswer:"
    # prompts of different lengths are batched by length; answers come back in order
    stories = ["yes the ball was a dragon all along", "no", "maybe it was a cat that sat", "yes"]
    verdicts, replies = judge(stories, ["Twist"] * 4)
    assert [r.split()[0] for r in replies] == ["yes", "no", "maybe", "yes"]
    assert verdicts == [True, False, None, True]

    tokenizer.chat_template = "{% for m in messages %}<|user|>{{ m['content'] }}{% endfor %}<|assistant|>"
    chat = LMJudge(EchoModel(), tokenizer, "cpu", cfg)
    assert chat.chat and chat.prompt("A dog ran.", "BadEnding") == (
        f"<|user|>A dog ran. | {QUESTIONS['BadEnding']}<|assistant|>"
    )
    with pytest.raises(ValueError, match=r"must contain \{question\}"):
        JudgeConfig(instruction="{story}")


def test_a_real_causal_lm_judges_through_the_foundation_loader(tiny_lm):
    ref = {"alias": "j", "source": "path", "path": str(tiny_lm)}
    judge = load_judge({"ref": ref, "batch_size": 3, "max_new_tokens": 3}, torch.device("cpu"))
    stories = ["The cat sat.", "The ball was really a dragon!", "A dog ran.", "Hi."]
    verdicts, replies = judge(stories, ["Twist", "Twist", "Dialogue", "BadEnding"])
    assert len(replies) == 4 and all(isinstance(r, str) for r in replies)
    assert verdicts == [parse_verdict(r) for r in replies]


def test_questions_cover_every_feature():
    assert set(QUESTIONS) == set(FEATURES)


# --------------------------------------------------------------------------- summary
def test_summary_pools_the_agreement_tables_of_every_checkpoint(tmp_path):
    from biasdrift.tinystories.report import agreement_table, detector_summary

    def stats(both, marker_only, judge_only, neither, unparsed):
        table = dict(both=both, marker_only=marker_only, judge_only=judge_only, neither=neither, unparsed=unparsed)
        return agreement_stats(table)

    (tmp_path / "a.json").write_text(json.dumps({"agreement": {"Twist": stats(10, 0, 0, 10, 1)}}))
    (tmp_path / "r.json").write_text(json.dumps({"steps": {"5": {"agreement": {"Twist": stats(0, 10, 10, 0, 2)}}}}))
    table = agreement_table({"pretrain/all": tmp_path / "a.json"}, {"recover/control/seed0": tmp_path / "r.json"})
    pooled = table[table.scope == "pooled"].iloc[0]
    assert (pooled.n, pooled.unparsed, pooled.agreement) == (40, 3, 0.5) and pooled.kappa == pytest.approx(0.0)
    assert list(table[table.scope == "run"].step.fillna(-1)) == [-1, 5]
    assert detector_summary(table)["agreement"]["Twist"]["kappa"] == pytest.approx(0.0)

    (tmp_path / "m.json").write_text(json.dumps({"agreement": None}))
    empty = agreement_table({"pretrain/all": tmp_path / "m.json"}, {})
    assert empty.empty and "kappa" in empty.columns and detector_summary(empty)["kind"] == "markers"
