"""Held-out preference pairs scored independently of trl: the summed log-probability
of each answer given the formatted prompt, under the policy (adapter on) and the
reference (the same model with the adapter off), and the DPO implicit-reward margin

    margin = beta * ((logp_chosen - ref_logp_chosen) - (logp_rejected - ref_logp_rejected)).

A pair counts as correct when its margin is positive. A base model (no adapter) has no
implicit reward; for it the raw preference ``logp_chosen - logp_rejected`` is kept.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from biasdrift.politune.formatting import FormatConfig, encode, format_pairs
from biasdrift.politune.logprobs import completion_logps


def _answer_logps(model, tokenizer, formatted: list[dict[str, str]], device, batch_size: int, desc: str):
    pairs = []
    for row in formatted:
        pairs.append(encode(tokenizer, row["prompt"], row["chosen"]))
        pairs.append(encode(tokenizer, row["prompt"], row["rejected"]))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    logps = np.asarray(completion_logps(model, pairs, pad, device, batch_size, desc=desc))
    return logps[0::2], logps[1::2]


def preference_margins(
    model, tokenizer, fmt: FormatConfig, pairs: pd.DataFrame, beta: float, device, batch_size: int = 16
) -> pd.DataFrame:
    """One row per pair: policy and reference log-probabilities, raw and implicit margins.
    ``model`` is a peft model (reference = adapter disabled) or a plain base model."""
    formatted = format_pairs(tokenizer, fmt, pairs[["prompt", "chosen", "rejected"]].to_dict("records"))
    chosen, rejected = _answer_logps(model, tokenizer, formatted, device, batch_size, "held-out pairs")
    has_adapter = hasattr(model, "disable_adapter")
    if has_adapter:
        with model.disable_adapter():
            ref_chosen, ref_rejected = _answer_logps(model, tokenizer, formatted, device, batch_size, "reference")
        margin = beta * ((chosen - ref_chosen) - (rejected - ref_rejected))
    else:
        ref_chosen, ref_rejected = chosen, rejected
        margin = np.full(len(chosen), np.nan)
    out = pairs[["prompt"]].copy().reset_index(drop=True)
    if "side" in pairs.columns:
        out.insert(0, "side", pairs["side"].to_numpy())
    out["logp_chosen"], out["logp_rejected"] = chosen, rejected
    out["ref_logp_chosen"], out["ref_logp_rejected"] = ref_chosen, ref_rejected
    out["raw_margin"] = chosen - rejected
    out["margin"] = margin
    out["correct"] = np.where(np.isnan(margin), np.nan, (margin > 0).astype(float))
    out["raw_correct"] = (out["raw_margin"] > 0).astype(float)
    return out


def wilson(successes: float, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion."""
    if n == 0:
        return math.nan, math.nan
    from scipy.stats import norm

    z = norm.ppf(0.5 + confidence / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def summarise(margins: pd.DataFrame, confidence: float = 0.95, n_boot: int = 1000, seed: int = 0) -> dict:
    """Accuracy (Wilson interval) and mean margin (bootstrap interval) of scored pairs;
    the raw preference accuracy of the base when there is no implicit reward."""
    from biasdrift.politune.probe import bootstrap_mean

    rng = np.random.default_rng(seed)
    out: dict[str, float | int] = {"n_pairs": len(margins)}
    correct = margins["correct"].dropna()
    if len(correct):
        low, high = wilson(float(correct.sum()), len(correct), confidence)
        out.update(accuracy=float(correct.mean()), accuracy_low=low, accuracy_high=high)
        mean, mlow, mhigh = bootstrap_mean(margins["margin"].to_numpy(float), n_boot, confidence, rng)
        out.update(margin=mean, margin_low=mlow, margin_high=mhigh)
    raw = margins["raw_correct"].dropna()
    if len(raw):
        low, high = wilson(float(raw.sum()), len(raw), confidence)
        out.update(raw_accuracy=float(raw.mean()), raw_accuracy_low=low, raw_accuracy_high=high)
    return out
