"""Speculative sampling: the emitted text is distributed as the main model's own sampling,
and the measured acceptance matches the theory (1 − TV per judged draft) within its
interval. Two tiny random GPT-2s over 8 tokens, built locally (no downloads)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy import stats
from transformers import GPT2Config, GPT2LMHeadModel

from biasdrift.config import from_schema
from biasdrift.specdec import sampling
from biasdrift.specdec.sampling import SamplingConfig, acceptance_check, acceptance_table, speculative_sampling

pytestmark = pytest.mark.usefixtures("torch_one_thread")

VOCAB = 8


def tiny(seed: int, layers: int) -> GPT2LMHeadModel:
    """Weights wide enough (initializer_range 0.4) that the two models disagree a lot."""
    torch.manual_seed(seed)
    cfg = GPT2Config(
        vocab_size=VOCAB,
        n_layer=layers,
        n_head=2,
        n_embd=16,
        n_positions=32,
        initializer_range=0.4,
        bos_token_id=0,
        eos_token_id=0,
    )
    return GPT2LMHeadModel(cfg).eval()


@pytest.fixture(scope="module")
def pair():
    return tiny(0, 2), tiny(1, 1)


def next_probs(model, ids: list[int], temperature: float) -> np.ndarray:
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0, -1]
    return sampling.tempered(logits, temperature).numpy()


@pytest.mark.parametrize("temperature", [1.0, 0.7])
def test_first_token_is_distributed_as_the_main_models_sampling(pair, temperature):
    """K=1, N=2: the first token is a judged draft, accepted or replaced from the residual.
    Its frequencies over 2,000 draws fit p (chi-square), and differ from q's."""
    main, assistant = pair
    prompt = [1, 4, 2]
    p, q = next_probs(main, prompt, temperature), next_probs(assistant, prompt, temperature)
    assert 0.5 * np.abs(p - q).sum() > 0.2, "the two models must disagree for the test to mean anything"
    gen = torch.Generator().manual_seed(0)
    draws = 2000
    first = [speculative_sampling(main, assistant, prompt, 1, 2, temperature, gen)["new_ids"][0] for _ in range(draws)]
    counts = np.bincount(first, minlength=VOCAB)
    keep = p * draws >= 5  # chi-square needs expected counts >= 5; pool the rest

    def pooled(x: np.ndarray) -> np.ndarray:
        return np.append(x[keep], x[~keep].sum()) if (~keep).any() else x

    observed = pooled(counts)
    assert stats.chisquare(observed, pooled(p) * draws).pvalue > 1e-3, (counts, p * draws)
    assert stats.chisquare(observed, pooled(q) * draws).pvalue < 1e-6, (counts, q * draws)


def test_measured_acceptance_matches_one_minus_tv_within_its_interval(pair):
    main, assistant = pair
    gen = torch.Generator().manual_seed(1)
    flags, expected = [], []
    for i in range(150):
        prompt = [int(x) for x in torch.randint(0, VOCAB, (3,), generator=torch.Generator().manual_seed(i))]
        record = speculative_sampling(main, assistant, prompt, 3, 8, 1.0, gen)
        assert len(record["accepted_flags"]) == len(record["expected"]) > 0
        assert record["n_accepted"] == sum(record["accepted_flags"]) and record["n_new"] == 8
        flags += record["accepted_flags"]
        expected += record["expected"]
    a = np.asarray(expected)
    assert 0.2 < a.mean() < 0.9, "acceptance probabilities away from 0 and 1"
    check = acceptance_check(sum(flags), a.sum(), (a * (1 - a)).sum(), len(flags))
    assert check["within"], check
    assert check["ci_lo"] < check["expected"] < check["ci_hi"] and abs(check["z"]) < 1.96


def test_expected_acceptance_is_one_minus_total_variation(pair):
    """The recorded probability of the first judged draft equals 1 − TV of the two models'
    next-token distributions after the prompt, computed here directly."""
    main, assistant = pair
    prompt = [3, 3, 5]
    p, q = next_probs(main, prompt, 0.8), next_probs(assistant, prompt, 0.8)
    record = speculative_sampling(main, assistant, prompt, 2, 3, 0.8, torch.Generator().manual_seed(0))
    assert record["expected"][0] == pytest.approx(1 - 0.5 * np.abs(p - q).sum(), abs=1e-6)


def test_identical_models_accept_every_draft(pair):
    main, _ = pair
    record = speculative_sampling(main, main, [1, 2], 4, 9, 1.0, torch.Generator().manual_seed(0))
    assert all(record["accepted_flags"]) and record["expected"] == pytest.approx([1.0] * len(record["expected"]))
    assert record["n_rounds"] == 2  # 4 drafts + 1 bonus, then 3 drafts + 1


def test_the_check_fails_when_the_acceptances_do_not_follow_the_theory():
    rng = np.random.default_rng(0)
    a = rng.uniform(0.3, 0.8, 400)
    honest = rng.uniform(size=400) < a
    assert acceptance_check(honest.sum(), a.sum(), (a * (1 - a)).sum(), 400)["within"]
    biased = rng.uniform(size=400) < np.minimum(a + 0.15, 1)  # a wrong acceptance rule
    assert not acceptance_check(biased.sum(), a.sum(), (a * (1 - a)).sum(), 400)["within"]


def test_acceptance_table_per_category_and_contrast():
    frame = pd.DataFrame(
        {
            "condition": "base",
            "category": ["female"] * 3 + ["male"] * 3,
            "n_judged": [10] * 6,
            "n_accepted": [8, 7, 9, 4, 5, 3],
            "expected_sum": [8.0, 8.0, 8.0, 4.0, 4.0, 4.0],
            "variance_sum": [1.6, 1.6, 1.6, 2.4, 2.4, 2.4],
        }
    )
    table = acceptance_table(frame, ("female", "male"), n_boot=200, seed=0).set_index("category")
    assert table.loc["female", "acceptance"] == pytest.approx(0.8) and table.loc["male", "expected"] == 0.4
    contrast = table.loc["female − male"]
    assert contrast["acceptance"] == pytest.approx(0.4) and contrast["ci_lo"] > 0


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="temperature"):
        from_schema(SamplingConfig, k=5, n=10, temperature=0)
    with pytest.raises(ValueError, match="samples"):
        from_schema(SamplingConfig, k=5, n=10, samples=0)
