"""The greedy draft-and-verify loop: identical to plain greedy decoding, honest counts,
agreement with transformers' assisted generation, and clear errors for unpairable models."""

from __future__ import annotations

import copy
import math

import pandas as pd
import pytest
import torch
from specdec_helpers import ASSISTANT_SIZE, MAIN_SIZE, make_model, make_tokenizer, one_thread, prompts

from biasdrift.config import from_schema
from biasdrift.specdec import decoding, pairing

pytestmark = pytest.mark.usefixtures(one_thread.__name__)

N = 12


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    tok = make_tokenizer(tmp_path_factory.mktemp("tok") / "tok")
    main = make_model(tok, MAIN_SIZE, seed=0)
    assistant = make_model(tok, ASSISTANT_SIZE, seed=1)
    return main, assistant, tok


@pytest.fixture(scope="module")
def trained_pair(pair):
    """The same pair after a few steps on the demo world, so that the assistant agrees
    with the main model on part of the text (random models almost never do)."""
    from specdec_helpers import world_texts

    main, assistant, tok = (copy.deepcopy(x) for x in pair)
    ids = tok(world_texts(200), add_special_tokens=False, truncation=True, max_length=48)["input_ids"]
    for model in (main, assistant):
        torch.manual_seed(0)
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
        for step in range(60):
            batch = [x for x in ids[(step * 8) % 192 : (step * 8) % 192 + 8]]
            width = max(len(x) for x in batch)
            x = torch.tensor([b + [tok.eos_token_id] * (width - len(b)) for b in batch])
            model(input_ids=x, labels=x).loss.backward()
            opt.step()
            opt.zero_grad()
        model.eval()
    return main, assistant, tok


def _ids(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize("k", [1, 3, 5])
def test_own_loop_equals_plain_greedy_and_counts_add_up(trained_pair, k):
    main, assistant, tok = trained_pair
    accepted_any = 0
    for text in prompts(24):
        ids = _ids(tok, text)
        record = decoding.speculative_greedy(main, assistant, ids, k, N, tok.eos_token_id)
        assert record["new_ids"] == decoding.hf_greedy(main, ids, N, tok.eos_token_id, tok.pad_token_id)
        for r in record["rounds"]:
            assert 0 <= r["accepted"] <= r["drafted"] <= k
            assert r["emitted"] == r["accepted"] + 1 or (record["stopped_on_eos"] and r is record["rounds"][-1])
            assert len(r["p"]) == len(r["q"]) == min(r["accepted"] + 1, r["drafted"])
        assert record["n_new"] == sum(r["emitted"] for r in record["rounds"]) <= N
        assert record["n_accepted"] == record["n_new"] - record["n_rounds"]
        accepted_any += record["n_accepted"]
    assert accepted_any > 0, "the trained assistant should get some drafts accepted"


def test_the_own_loop_would_notice_a_wrong_verification(trained_pair, monkeypatch):
    """The greedy-equality check can fail: accepting every draft unverified changes the output."""
    main, assistant, tok = trained_pair
    ids = _ids(tok, prompts(1)[0])
    reference = decoding.hf_greedy(main, ids, N, tok.eos_token_id, tok.pad_token_id)
    real_forward = decoding._forward

    def lying_main(model, cache, tokens, eos_id, suppress):
        logits = real_forward(model, cache, tokens, eos_id, suppress)
        if model is main:  # make the main model "agree" with whatever was drafted
            logits = logits.clone()
            logits[:-1].fill_(0.0)
            logits[torch.arange(len(tokens) - 1), torch.tensor(tokens[1:])] = 1.0
        return logits

    monkeypatch.setattr(decoding, "_forward", lying_main)
    record = decoding.speculative_greedy(main, assistant, ids, 3, N, tok.eos_token_id)
    assert record["new_ids"] != reference


@pytest.mark.parametrize("k", [1, 3, 5])
def test_an_identical_assistant_has_every_draft_accepted(pair, k):
    main, _, tok = pair
    twin = copy.deepcopy(main)
    for text in prompts(4):
        record = decoding.speculative_greedy(main, twin, _ids(tok, text), k, N, tok.eos_token_id, suppress_eos=True)
        assert record["n_new"] == N
        assert all(r["accepted"] == r["drafted"] for r in record["rounds"])
        assert record["n_accepted"] == N - math.ceil(N / (k + 1))


@pytest.mark.parametrize("k", [1, 3, 5])
def test_counts_equal_transformers_assisted_generate(trained_pair, k):
    main, assistant, tok = trained_pair
    before = assistant.generation_config.to_dict()
    for text in prompts(8):
        ids = _ids(tok, text)
        record = decoding.speculative_greedy(main, assistant, ids, k, N, tok.eos_token_id)
        sizes, hf_ids = decoding.hf_assisted_rounds(main, assistant, ids, k, N, tok.eos_token_id, tok.pad_token_id)
        assert sizes == [r["emitted"] for r in record["rounds"]]
        assert hf_ids == record["new_ids"]
    assert assistant.generation_config.to_dict() == before, "the draft settings are restored after each call"


def test_identical_assistant_counts_equal_transformers(pair):
    main, _, tok = pair
    twin = copy.deepcopy(main)
    ids = _ids(tok, prompts(1)[0])
    sizes, _ = decoding.hf_assisted_rounds(main, twin, ids, 3, N, tok.eos_token_id, tok.pad_token_id, suppress_eos=True)
    assert sizes == [4, 4, 4]


def test_measure_prompts_records_rates_and_checks(trained_pair):
    main, assistant, tok = trained_pair
    templates = pd.DataFrame({"template_id": [f"t{i}" for i in range(6)], "prompt": prompts(6)})
    cfg = from_schema(decoding.DecodeConfig, k=3, n=8, hf_check_prompts=3)
    frame = decoding.measure_prompts(main, assistant, tok, templates, cfg)
    assert frame["greedy_equal"].all() and frame["main_self_agree"].all()
    assert frame["hf_equal"].notna().sum() == 3 and frame["hf_equal"].dropna().all()
    assert ((frame["assistant_share"] >= 0) & (frame["assistant_share"] <= 1 - math.ceil(8 / 4) / 8 + 1e-9)).all()
    assert (frame["oracle_accepted"] >= frame["n_accepted"]).all(), "a finite K cannot beat the oracle"
    info = decoding.check_consistency(frame, cfg)
    assert info["hf_checked"] == 3 and info["hf_mismatches"] == 0


def test_a_transformers_disagreement_fails_the_job(trained_pair):
    main, assistant, tok = trained_pair
    templates = pd.DataFrame({"template_id": ["t0"], "prompt": prompts(1)})
    cfg = from_schema(decoding.DecodeConfig, k=3, n=8, hf_check_prompts=1, near_tie_margin=0.0)
    frame = decoding.measure_prompts(main, assistant, tok, templates, cfg)
    frame.at[0, "hf_equal"] = False
    with pytest.raises(decoding.SpecdecError, match="disagrees with the own loop"):
        decoding.check_consistency(frame, cfg)


def test_different_tokenizers_are_refused(pair, tmp_path):
    from specdec_helpers import world_texts

    main, assistant, tok = pair
    other = make_tokenizer(tmp_path / "other", [t.upper() for t in world_texts(100)], vocab_size=280)
    with pytest.raises(decoding.SpecdecError, match="the tokenizers differ"):
        pairing.check_pair(main, assistant, tok, other, ("m", "a"))
    small = make_model(other, ASSISTANT_SIZE, seed=2)
    with pytest.raises(decoding.SpecdecError, match="output vocabularies differ"):
        pairing.check_pair(main, small, tok, tok, ("m", "a"))
    pairing.check_pair(main, assistant, tok, tok, ("m", "a"))


def test_a_prompt_longer_than_the_context_is_an_error(pair):
    main, assistant, tok = pair
    with pytest.raises(decoding.SpecdecError, match="exceeds the model context"):
        decoding.speculative_greedy(main, assistant, list(range(60)), 3, 10, tok.eos_token_id)
    with pytest.raises(ValueError, match="k >= 1"):
        decoding.speculative_greedy(main, assistant, [1, 2], 0, 10)
