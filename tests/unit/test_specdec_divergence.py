"""KL and friends, per row: zero for identical models, never negative, a hand-computed case,
and the original's scale (off by the vocabulary size)."""

from __future__ import annotations

import math

import pytest
import torch
from specdec_helpers import one_thread

from biasdrift.specdec.divergence import divergences, legacy_kl

pytestmark = pytest.mark.usefixtures(one_thread.__name__)


def test_identical_distributions_have_zero_divergence():
    logits = torch.randn(5, 50)
    d = divergences(logits, logits.clone())
    for name in ("kl_pq", "kl_qp", "js", "tv"):
        assert torch.all(d[name].abs() < 1e-6), name
    assert torch.all(d["top1_agree"] == 1)


def test_divergences_are_non_negative_and_finite_for_bf16_logits():
    torch.manual_seed(0)
    p, q = (torch.randn(64, 1000) * 8).to(torch.bfloat16), (torch.randn(64, 1000) * 8).to(torch.bfloat16)
    d = divergences(p, q)
    for name in ("kl_pq", "kl_qp", "js", "tv", "entropy_p", "entropy_q"):
        assert torch.all(torch.isfinite(d[name])), name
        assert torch.all(d[name] >= 0), name
    assert torch.all(d["kl_pq"] > 0)
    assert torch.allclose(divergences(q, p)["js"], d["js"], atol=1e-6), "JS is symmetric"


def test_masked_tokens_do_not_give_nan():
    p = torch.tensor([[0.0, 1.0, -math.inf]])
    d = divergences(p, torch.tensor([[1.0, 0.0, -math.inf]]))
    assert all(torch.isfinite(v).all() for v in d.values())


def test_a_hand_computed_three_token_case():
    p, q = torch.tensor([0.5, 0.25, 0.25]), torch.tensor([0.25, 0.5, 0.25])
    d = divergences(p.log()[None], q.log()[None])
    # KL(p||q) = 0.5 ln 2 + 0.25 ln(1/2) + 0 = 0.25 ln 2, symmetric here
    assert d["kl_pq"].item() == pytest.approx(0.25 * math.log(2), abs=1e-6)
    assert d["kl_qp"].item() == pytest.approx(0.25 * math.log(2), abs=1e-6)
    assert d["tv"].item() == pytest.approx(0.25, abs=1e-6)
    m = [0.375, 0.375, 0.25]
    js = 0.5 * sum(a * math.log(a / b) for a, b in zip([0.5, 0.25, 0.25], m, strict=True)) + 0.5 * sum(
        a * math.log(a / b) for a, b in zip([0.25, 0.5, 0.25], m, strict=True)
    )
    assert d["js"].item() == pytest.approx(js, abs=1e-6)
    assert d["entropy_p"].item() == pytest.approx(1.5 * math.log(2), abs=1e-6)
    assert d["top1_agree"].item() == 0


def test_the_original_formula_is_kl_divided_by_the_vocabulary():
    torch.manual_seed(1)
    p, q = torch.randn(1, 257), torch.randn(1, 257)
    d = divergences(p, q)
    legacy = legacy_kl(p[0], q[0])
    assert legacy * 257 == pytest.approx(d["kl_pq"].item(), rel=1e-5)
    assert d["kl_legacy"].item() == pytest.approx(legacy, rel=1e-5)


def test_shapes_must_match():
    with pytest.raises(ValueError, match="differ in shape"):
        divergences(torch.zeros(2, 3), torch.zeros(2, 4))
