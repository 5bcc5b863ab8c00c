"""Study politune, evaluation side: the one prompt format, the statement probe and its
scorer, the strict answer parser, judges, and the summary's checks."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from biasdrift.config import from_schema
from biasdrift.data import DataError
from biasdrift.politune import formatting, judge, probe, summary, world
from biasdrift.politune.adapters import LoraSettings, load_policy
from biasdrift.politune.formatting import FormatConfig, FormatError
from biasdrift.politune.logprobs import completion_logps
from biasdrift.politune.tiny import tiny_chat_model
from biasdrift.runtime import set_threads

REPO = Path(__file__).resolve().parents[2]
RESOURCES = REPO / "resources" / "politune"
CHAT = from_schema(FormatConfig, template="chat")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    set_threads(1)
    ref = tiny_chat_model(tmp_path_factory.mktemp("tiny"), RESOURCES / "chat_template.jinja")
    model, tokenizer = load_policy(ref, None, from_schema(LoraSettings), "cpu")
    return model, formatting.prepare_tokenizer(tokenizer, CHAT)


# --------------------------------------------------------------------------- formatting
def test_chat_template_renders_the_world_layout(tiny):
    _, tokenizer = tiny
    turns = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Give your view on the harbour."},
        {"role": "assistant", "content": "It should stay in public hands."},
    ]
    assert tokenizer.apply_chat_template(turns, tokenize=False) == world.render_dialogue(turns)
    assert tokenizer.apply_chat_template(turns[:2], tokenize=False, add_generation_prompt=True) == (
        world.render_dialogue(turns[:2], add_generation_prompt=True)
    )


def test_prompt_tokens_are_a_prefix_and_completions_end_with_eos(tiny):
    _, tokenizer = tiny
    prompt = "What should the town do about the harbour?"
    prompt_text = formatting.render_prompt(tokenizer, CHAT, prompt)
    completion = formatting.render_completion(tokenizer, CHAT, prompt, "Keep it public.")
    assert prompt_text == f"User: {prompt}\nAssistant:" and completion == " Keep it public.\n" + tokenizer.eos_token
    full = tokenizer(text=prompt_text + completion)["input_ids"]
    prompt_ids, completion_ids = formatting.encode(tokenizer, prompt_text, completion)
    assert full == prompt_ids + completion_ids and prompt_ids == tokenizer(text=prompt_text)["input_ids"]
    assert completion_ids[-1] == tokenizer.eos_token_id


def test_alpaca_layout_is_byte_exact(tiny):
    _, tokenizer = tiny
    alpaca = from_schema(FormatConfig, template="alpaca")
    assert formatting.render_prompt(tokenizer, alpaca, "Say hi.") == (
        "Below is an instruction that describes a task. Write a response that appropriately completes the request."
        "\n\n### Instruction:\nSay hi.\n\n### Response:\n"
    )
    assert formatting.render_completion(tokenizer, alpaca, "Say hi.", "Hi.") == "Hi." + tokenizer.eos_token


def test_no_double_bos_when_the_tokenizer_adds_one(tiny):
    _, base_tokenizer = tiny
    from tokenizers import processors

    tokenizer = type(base_tokenizer).from_pretrained(base_tokenizer.name_or_path)
    tokenizer.add_special_tokens({"bos_token": "<s>"})
    tokenizer._tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tokenizer.bos_token_id)]
    )
    tokenizer.chat_template = "{{ bos_token }}" + base_tokenizer.chat_template
    text = formatting.render_prompt(tokenizer, CHAT, "Hi?")
    assert text == "User: Hi?\nAssistant:"  # the template's BOS text is dropped ...
    ids = tokenizer(text=text)["input_ids"]
    assert ids[0] == tokenizer.bos_token_id and ids[1] != tokenizer.bos_token_id  # ... the tokenizer adds one


def test_missing_chat_template_is_an_error(tiny, tmp_path):
    _, tokenizer = tiny
    saved = tokenizer.chat_template
    try:
        tokenizer.chat_template = None
        with pytest.raises(FormatError, match=r"has no chat template: set format\.chat_template"):
            formatting.prepare_tokenizer(tokenizer, CHAT, "model 'x'")
        with pytest.raises(FormatError, match=r"format\.chat_template: no such file"):
            formatting.prepare_tokenizer(
                tokenizer, from_schema(FormatConfig, chat_template=str(tmp_path / "none.jinja"))
            )
    finally:
        tokenizer.chat_template = saved


# --------------------------------------------------------------------------- parser
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2 - I agree with this.", (2, "regex_leading_int")),
        ("**3**", (3, "regex_leading_int")),
        ("Answer: 1. Because it costs too much.", (1, "regex_leading_int")),
        ("0", (0, "regex_leading_int")),
        ("I strongly disagree.", (0, "regex_phrase")),
        ("Agree, mostly.", (2, "regex_phrase")),
        ("0 means you Strongly Disagree… 3 means you Strongly Agree", (None, "unparsed")),
        ("0 = Strongly Disagree, 1 = Disagree, 2 = Agree, 3 = Strongly Agree. 2", (None, "unparsed")),
        ("Strongly Disagree, Disagree, Agree, or Strongly Agree", (None, "unparsed")),
        ("I cannot answer that as I have no opinions.", (None, "unparsed")),
        ("As an AI, I do not take sides.", (None, "unparsed")),
        ("I agree with some parts and disagree with others.", (None, "unparsed")),
        ("10", (None, "unparsed")),
        ("3.5", (None, "unparsed")),
        ("The harbour should stay public.", (None, "unparsed")),
        ("", (None, "unparsed")),
    ],
)
def test_parser_never_guesses(text, expected):
    assert probe.parse_choice(text) == expected


# --------------------------------------------------------------------------- scorer
def responses(values: dict[tuple[str, str], float]) -> pd.DataFrame:
    rows = [
        {"id": f"{axis}-{d}", "axis": axis, "direction": d, "sign": probe.SIGN[(axis, d)], "sample": 0, "value": v}
        for (axis, d), v in values.items()
    ]
    return pd.DataFrame(rows)


def test_agreeing_with_a_right_coded_item_moves_right():
    neutral = {("economic", "left"): 1.5, ("economic", "right"): 1.5, ("social", "libertarian"): 1.5}
    base = probe.axis_scores(probe.item_scores(responses(neutral)), 100, 0.95).set_index("axis")["score"]
    assert base["economic"] == 0 and base["social"] == 0
    agree_right = probe.axis_scores(
        probe.item_scores(responses({**neutral, ("economic", "right"): 3.0})), 100, 0.95
    ).set_index("axis")["score"]
    assert agree_right["economic"] == pytest.approx(0.5)  # (+1 + 0) / 2 items: towards the right
    agree_left = probe.item_scores(responses({**neutral, ("economic", "left"): 3.0}))
    assert agree_left.set_index("id").loc["economic-left", "score"] == -1.0
    disagree_lib = probe.item_scores(responses({**neutral, ("social", "libertarian"): 0.0}))
    assert disagree_lib.set_index("id").loc["social-libertarian", "score"] == 1.0  # towards authoritarian


def test_unparsed_samples_are_skipped_and_counted():
    frame = pd.concat(
        [responses({("economic", "right"): 3.0}), responses({("economic", "right"): float("nan")}).assign(sample=1)]
    )
    items = probe.item_scores(frame)
    assert items.loc[0, "value"] == 3.0 and items.loc[0, "n_unparsed"] == 1
    axes = probe.axis_scores(items, 100, 0.95)
    assert axes.loc[0, "n_unparsed"] == 1 and axes.loc[0, "score"] == 1.0


def test_bootstrap_intervals_and_paired_shifts():
    rng = np.random.default_rng(0)
    mean, low, high = probe.bootstrap_mean(np.array([0.1, 0.2, 0.3, 0.4, np.nan]), 500, 0.95, rng)
    assert mean == pytest.approx(0.25) and low < mean < high
    base = probe.item_scores(responses({("economic", "left"): 1.5, ("economic", "right"): 1.5}))
    moved = probe.item_scores(responses({("economic", "left"): 3.0, ("economic", "right"): 0.0}))
    shift = probe.shift_scores(moved, base, 200, 0.95).iloc[0]
    assert shift["shift"] == -1.0 and shift["shift_low"] == shift["shift_high"] == -1.0


def test_statement_file_errors_name_the_row(tmp_path):
    path = tmp_path / "s.tsv"
    pd.DataFrame({"id": ["a"], "text": ["x"], "axis": ["economic"], "direction": ["libertarian"]}).to_csv(
        path, sep="\t", index=False
    )
    with pytest.raises(DataError, match=r"s\.tsv: row 0 \(id 'a'\): axis/direction economic/libertarian"):
        probe.read_statements(path)
    pd.DataFrame({"id": ["a"], "text": ["x"], "axis": ["economic"]}).to_csv(path, sep="\t", index=False)
    with pytest.raises(DataError, match=r"missing column\(s\) \['direction'\]"):
        probe.read_statements(path)


# --------------------------------------------------------------------------- logprob mode on a model
def test_logprob_probe_is_deterministic_and_normalised(tiny):
    model, tokenizer = tiny
    statements = probe.read_statements(RESOURCES / "statements.tsv").head(6)
    cfg = from_schema(probe.ProbeConfig, question=world.RATING_QUESTION, bootstrap=50)
    first = probe.probe_logprob(model, tokenizer, CHAT, statements, cfg, "cpu")
    second = probe.probe_logprob(model, tokenizer, CHAT, statements, cfg, "cpu")
    pd.testing.assert_frame_equal(first, second)
    assert ((first["option_mass"] > 0) & (first["option_mass"] <= 1 + 1e-6)).all()
    assert first[[f"p_{o}" for o in probe.OPTIONS]].sum(axis=1).to_numpy() == pytest.approx(1.0)
    assert first["choice"].isin([0, 1, 2, 3]).all() and first["value"].between(0, 3).all()
    assert probe.option_prefixes(tokenizer, CHAT, "Rate it.") == [" 0", " 1", " 2", " 3"]


class FullLogitsOnly(torch.nn.Module):
    """A causal LM whose forward has no logits_to_keep (the fallback path)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask)


def reference_logps(model, pairs) -> list[float]:
    """Summed completion log-probs, one unpadded sequence at a time, from the full logits."""
    out = []
    for prompt, completion in pairs:
        ids = torch.tensor([prompt + completion])
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=ids).logits.float()[0, :-1], dim=-1)
        out.append(sum(logp[len(prompt) - 1 + t, tok].item() for t, tok in enumerate(completion)))
    return out


def test_completion_logps_keep_only_the_scored_positions_and_match_full_logits(tiny):
    model, tokenizer = tiny
    pairs = [
        formatting.encode(tokenizer, formatting.render_prompt(tokenizer, CHAT, q), a)
        for q, a in [
            ("What about the harbour?", " Keep it public.\n"),
            ("Give your view on the rail line and the schools, please.", " Sell it."),
            ("Why?", " Because the town needs it, and soon.\n"),
        ]
    ]
    expected = reference_logps(model, pairs)
    pad = tokenizer.pad_token_id
    assert completion_logps(model, pairs, pad, "cpu", batch_size=3) == pytest.approx(expected, abs=1e-4)
    assert completion_logps(FullLogitsOnly(model), pairs, pad, "cpu", batch_size=2) == pytest.approx(expected, abs=1e-4)


def test_one_pass_option_scores_equal_scoring_each_option(tiny, monkeypatch):
    model, tokenizer = tiny
    statements = probe.read_statements(RESOURCES / "statements.tsv").head(5)
    encoded = []
    for text in statements["text"]:
        question = world.RATING_QUESTION.format(statement=text)
        prompt = formatting.render_prompt(tokenizer, CHAT, question)
        encoded.append(
            [formatting.encode(tokenizer, prompt, o) for o in probe.option_prefixes(tokenizer, CHAT, question)]
        )
    each = reference_logps(model, [pair for options in encoded for pair in options])
    two_tokens = [[(p, o + o) for p, o in options] for options in encoded]  # no shared stem: one pass per option
    expected = reference_logps(model, [pair for options in two_tokens for pair in options])
    general = probe._option_logps(model, two_tokens, tokenizer.pad_token_id, "cpu", batch_size=3)
    assert general.ravel().tolist() == pytest.approx(expected, abs=1e-4)

    def one_pass_only(*_args, **_kwargs):
        raise AssertionError("the options share a stem: one forward pass per statement")

    monkeypatch.setattr(probe, "completion_logps", one_pass_only)
    fast = probe._option_logps(model, encoded, tokenizer.pad_token_id, "cpu", batch_size=2)
    assert fast.shape == (5, 4) and fast.ravel().tolist() == pytest.approx(each, abs=1e-4)
    single = [[(p + o[:-1], o[-1:]) for p, o in options] for options in encoded]  # one-token options
    assert probe._option_logps(model, single, tokenizer.pad_token_id, "cpu", 4).ravel().tolist() == pytest.approx(
        reference_logps(model, [pair for options in single for pair in options]), abs=1e-4
    )


def test_logprob_probe_scores_the_compass_from_its_answers(tiny):
    model, tokenizer = tiny
    statements = probe.read_statements(RESOURCES / "statements.tsv").head(4)
    for k, column in enumerate(probe.WEIGHT_COLUMNS):  # made-up weights: agreeing moves the coded way
        statements[column] = statements["sign"] * (k - 1.5)
    cfg = from_schema(
        probe.ProbeConfig,
        question=world.RATING_QUESTION,
        bootstrap=20,
        compass=from_schema(probe.CompassConfig, statements=None),
    )
    result = probe.run_probe(model, tokenizer, CHAT, statements, cfg, seed=0, device="cpu")
    table = result["responses"]
    assert (
        table[list(probe.WEIGHT_COLUMNS)].to_numpy().tolist()
        == statements[list(probe.WEIGHT_COLUMNS)].to_numpy().tolist()
    )
    picked = [row[f"w{int(row['choice'])}"] for _, row in table.iterrows()]
    economic = 0.38 + sum(w for w, axis in zip(picked, table["axis"], strict=True) if axis == "economic") / 8.0
    assert result["compass"]["economic"] == pytest.approx(economic) and result["compass"]["n_samples"] == 1
    assert result["compass"]["social"] == pytest.approx(2.41)  # the four are economic: social is the offset


def test_generate_mode_parses_every_sample(tiny):
    model, tokenizer = tiny
    statements = probe.read_statements(RESOURCES / "statements.tsv").head(2)
    gen = from_schema(probe.GenerationConfig, samples=2, max_new_tokens=4, temperature=1.0, top_k=20, stop=("\n",))
    cfg = from_schema(probe.ProbeConfig, question=world.RATING_QUESTION, mode="generate", generation=gen, bootstrap=20)
    result = probe.run_probe(model, tokenizer, CHAT, statements, cfg, seed=0, device="cpu")
    table = result["responses"]
    assert len(table) == 4 and set(table["parse_method"]) <= {"regex_leading_int", "regex_phrase", "unparsed"}
    assert table.loc[table["parse_method"] == "unparsed", "value"].isna().all()


# --------------------------------------------------------------------------- judges
@pytest.mark.parametrize(
    ("reply", "score"),
    [("15", 15.0), ("Score: 7", 7.0), ("**12**", 12.0), ("0", 0.0), ("20/20", 20.0)],
)
def test_judge_scores_parse(reply, score):
    assert judge.parse_score(reply) == score


@pytest.mark.parametrize("reply", ["N/A", "25", "-1", "I think 10", "7 or 8", "", "ten"])
def test_unusable_judge_replies_are_na_never_the_midpoint(reply):
    assert math.isnan(judge.parse_score(reply))


def test_stub_judge_means_skip_na():
    answers = pd.DataFrame({"state": ["base"] * 4, "prompt_id": list("abcd"), "response": ["x"] * 4})
    stub = judge.make_judge(from_schema(judge.JudgeConfig, kind="stub", replies=("15", "Score: 7", "N/A", "25")))
    judged = judge.judge_answers(answers, stub)
    assert judged["judge_score"].tolist()[:2] == [15.0, 7.0] and judged["judge_score"].isna().sum() == 2
    assert judged["judge_score"].mean() == 11.0


def test_lexicon_judge_reads_the_coded_words():
    lexicon = judge.make_judge(from_schema(judge.JudgeConfig, kind="lexicon", lexicon=str(RESOURCES / "lexicon.yaml")))
    replies = lexicon.replies(
        [
            "The harbour should stay in public hands because it serves everyone.",
            "The harbour should be sold to private firms.",
            "The harbour should be sold to private firms, paid for with public money.",
            "Nice weather today.",
        ]
    )
    assert replies == ["0", "20", "10", judge.NA_REPLY]


def test_judge_config_checks():
    with pytest.raises(ValueError, match=r"judge\.kind must be one of"):
        from_schema(judge.JudgeConfig, kind="gpt")
    with pytest.raises(ValueError, match="a lexicon judge needs `lexicon`"):
        judge.make_judge(from_schema(judge.JudgeConfig, kind="lexicon"))
    with pytest.raises(ValueError, match="an hf judge needs `model`"):
        judge.make_judge(from_schema(judge.JudgeConfig, kind="hf"))


# --------------------------------------------------------------------------- summary
def test_checkpoint_selection_rules():
    states = pd.DataFrame(
        {
            "state": ["l/dpo/step10", "l/dpo/step20", "l/dpo/stepfinal"],
            "step": ["10", "20", "final"],
            "accuracy": [0.9, 0.9, 0.8],
            "step_number": [10, 20, 30],
        }
    )
    assert summary.select_state(states, "final", None) == "l/dpo/stepfinal"
    assert summary.select_state(states, "best_heldout_pref_acc", None) == "l/dpo/step10"
    assert summary.select_state(states, "fixed_step", 20) == "l/dpo/step20"


def test_run_checks_follow_the_lean():
    shifts = [{"axis": "economic", "shift": -0.3, "shift_low": -0.5, "shift_high": -0.1}]
    heldout = {"accuracy": 0.9, "accuracy_low": 0.7, "accuracy_high": 0.97}
    assert [c["passed"] for c in summary.run_checks("left", shifts, heldout)] == [True, True]
    assert [c["passed"] for c in summary.run_checks("right", shifts, heldout)] == [False, True]
    wide = [{"axis": "economic", "shift": -0.3, "shift_low": -0.5, "shift_high": 0.1}]
    weak = {"accuracy": 0.6, "accuracy_low": 0.4, "accuracy_high": 0.8}
    assert [c["passed"] for c in summary.run_checks("left", wide, weak)] == [False, False]
    assert summary.run_checks(None, shifts, heldout) == []


def test_missing_judge_is_reported_as_skipped_never_scored():
    layout = {"judge_kind": None, "free_text": True, "select": "final", "select_step": None, "states": {}, "runs": []}
    tables = {"judge": pd.DataFrame()}
    assert summary.build_summary(layout, tables)["judge"] == "skipped: no judge configured"
    layout["free_text"] = False
    assert summary.build_summary(layout, tables)["judge"] == "no free-text prompts configured"
    layout["judge_kind"] = "lexicon"
    assert summary.build_summary(layout, tables)["judge"] == "lexicon"
