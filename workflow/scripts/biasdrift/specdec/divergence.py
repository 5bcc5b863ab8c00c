"""Divergences between the main model's next-token distribution p and the assistant's q,
computed per row (specs/specdec.md §6).

The original computed ``F.kl_div(q.log(), p, reduction="batchmean")`` on 1-D vectors:
that is KL(p‖q) divided by the vocabulary size V (``batchmean`` divides by ``size(0)``,
which is V for a 1-D tensor). Here every quantity is a per-row sum over the vocabulary,
in float32 from log-softmax (no ``log`` of underflowing probabilities); ``kl_legacy`` keeps
the original's scale (``kl_pq / V``) for comparison with its reported numbers.
"""

from __future__ import annotations

import math

import torch

METRICS = ("kl_pq", "kl_qp", "js", "tv", "top1_agree", "entropy_p", "entropy_q", "kl_legacy")


def _plogp_diff(p: torch.Tensor, lp: torch.Tensor, lq: torch.Tensor) -> torch.Tensor:
    """Σ_v p (lp − lq) per row, with 0·(anything) = 0 where p = 0 (masked tokens)."""
    terms = torch.where(p > 0, p * (lp - lq), torch.zeros_like(p))
    return terms.sum(-1)


def divergences(logits_p: torch.Tensor, logits_q: torch.Tensor) -> dict[str, torch.Tensor]:
    """Row-wise KL(p‖q), KL(q‖p), Jensen-Shannon, total variation, top-1 agreement and
    entropies (nats) of two [B, V] logit (or log-probability) tensors of any dtype."""
    if logits_p.shape != logits_q.shape:
        raise ValueError(f"p and q differ in shape: {tuple(logits_p.shape)} vs {tuple(logits_q.shape)}")
    if logits_p.dim() == 1:
        logits_p, logits_q = logits_p[None], logits_q[None]
    lp = torch.log_softmax(logits_p.float(), dim=-1)  # [B, V]
    lq = torch.log_softmax(logits_q.float(), dim=-1)
    p, q = lp.exp(), lq.exp()
    m = 0.5 * (p + q)
    lm = torch.log(m.clamp_min(torch.finfo(torch.float32).tiny))
    kl_pq = _plogp_diff(p, lp, lq).clamp_min(0)
    out = {
        "kl_pq": kl_pq,
        "kl_qp": _plogp_diff(q, lq, lp).clamp_min(0),
        "js": (0.5 * _plogp_diff(p, lp, lm) + 0.5 * _plogp_diff(q, lq, lm)).clamp(0, math.log(2)),
        "tv": (0.5 * (p - q).abs().sum(-1)).clamp(0, 1),
        "top1_agree": (lp.argmax(-1) == lq.argmax(-1)).float(),
        "entropy_p": -_plogp_diff(p, lp, torch.zeros_like(lp)),
        "entropy_q": -_plogp_diff(q, lq, torch.zeros_like(lq)),
        "kl_legacy": kl_pq / lp.shape[-1],
    }
    return out


def legacy_kl(logits_p_1d: torch.Tensor, logits_q_1d: torch.Tensor) -> float:
    """The original's formula, kept only to document its scale (tests compare it with
    ``kl_legacy``): ``kl_div(log q, p, reduction="batchmean")`` on 1-D vectors."""
    p = torch.softmax(logits_p_1d.double(), dim=0)
    q = torch.softmax(logits_q_1d.double(), dim=0)
    return float(torch.nn.functional.kl_div(q.log(), p, reduction="batchmean"))
