"""Speculative *sampling* (rejection sampling of the assistant's drafts, temperature > 0)
beside the greedy study of :mod:`biasdrift.specdec.decoding`.

Per round the assistant samples ``kk = min(K, remaining − 1)`` drafts from its tempered
distribution q; the main model scores prompt + drafts in one forward (tempered p). Draft i
is accepted with probability ``min(1, p_i(x)/q_i(x))``; the first rejection is replaced by a
draw from ``norm(max(0, p_i − q_i))`` and ends the round, and a round whose drafts are all
accepted adds a draw from p after them. The emitted text is then distributed exactly as
sampling from the main model alone (Leviathan et al. 2023; Chen et al. 2023).

Given the text so far, draft i is accepted with probability ``a_i = Σ_x min(p_i, q_i) =
1 − TV(p_i, q_i)``. Every judged draft (those up to and including the first rejection)
records its acceptance and its ``a_i``; the acceptances minus the ``a_i`` sum to a
martingale with variance ``Σ a_i (1 − a_i)``, which gives the interval that the measured
acceptance of a group of templates is checked against (:func:`acceptance_table`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from statistics import NormalDist
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from biasdrift.runtime import atomic_path, progress
from biasdrift.specdec.decoding import _crop, _forward, check_request, disable_tf32, draft_tokens

log = logging.getLogger(__name__)


@dataclass
class SamplingConfig:
    """``studies.specdec.sampling`` plus K and N of one job (schema: config/schema/specdec.yaml)."""

    SCHEMA: ClassVar[str] = "studies.specdec.sampling"  # the schema section it mirrors: its defaults
    k: int = field(metadata={"help": "Draft length K."})
    n: int = field(metadata={"help": "Maximum new tokens N."})
    temperature: float = field(metadata={"help": "Sampling temperature of both models (> 0)."})
    samples: int = field(metadata={"help": "Sampled continuations per template."})
    seed: int = field(metadata={"help": "Seed of the draws (one generator per template)."})
    suppress_eos: bool = field(metadata={"help": "Mask EOS in both models."})

    def __post_init__(self) -> None:
        if self.k < 1 or self.n < 1:
            raise ValueError(f"need k >= 1 and n >= 1, got k={self.k}, n={self.n}")
        if not self.temperature > 0:
            raise ValueError(f"sampling.temperature must be > 0 (greedy is the decode study), got {self.temperature}")
        if self.samples < 1:
            raise ValueError(f"sampling.samples must be >= 1, got {self.samples}")


def tempered(logits, temperature: float):
    """float64 probabilities of ``logits / temperature`` (masked logits stay at 0)."""
    import torch

    return torch.softmax(logits.double() / temperature, dim=-1)


def _draw(probs, generator) -> int:
    import torch

    return int(torch.multinomial(probs.cpu(), 1, generator=generator))


def _tempered_draw(temperature: float, generator, row) -> tuple[int, Any]:
    """A draft token drawn from the tempered row, with that distribution (q)."""
    q = tempered(row, temperature)
    return _draw(q, generator), q


def speculative_sampling(
    main,
    assistant,
    prompt_ids: Sequence[int],
    k: int,
    n: int,
    temperature: float,
    generator,
    eos_id: int | None = None,
    suppress_eos: bool = False,
) -> dict[str, Any]:
    """One sampled continuation (batch size 1) of at most ``n`` tokens. ``generator`` is a
    CPU ``torch.Generator`` (every draw comes from it). Returns the new ids, the counts of
    :func:`biasdrift.specdec.decoding.speculative_greedy`, and per judged draft whether it
    was accepted (``accepted_flags``) and its acceptance probability ``expected`` (1 − TV)."""
    import torch
    from transformers import DynamicCache

    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    check_request(main, assistant, prompt_ids, k, n)
    seq = list(prompt_ids)
    start = len(seq)
    main_cache, asst_cache = DynamicCache(), DynamicCache()
    main_len = asst_len = 0
    flags: list[bool] = []
    expected: list[float] = []
    n_rounds = n_drafted = 0
    stopped = False
    with torch.inference_mode():
        while len(seq) - start < n and not stopped:
            budget = n - (len(seq) - start)
            kk = min(k, budget - 1)
            draft, q_rows, asst_len = draft_tokens(
                assistant,
                asst_cache,
                seq,
                asst_len,
                kk,
                eos_id,
                suppress_eos,
                partial(_tempered_draw, temperature, generator),
            )
            pending = seq[main_len:] + draft
            rows = _forward(main, main_cache, pending, eos_id, suppress_eos)[-(len(draft) + 1) :]
            main_len += len(pending)
            emitted: list[int] = []
            for i, token in enumerate(draft):
                p, q = tempered(rows[i], temperature), q_rows[i].to(rows.device)
                expected.append(float(torch.minimum(p, q).sum()))
                ok = float(torch.rand((), generator=generator)) * float(q[token]) < float(p[token])
                flags.append(ok)
                if ok:
                    emitted.append(token)
                    continue
                residual = (p - q).clamp_min(0)
                emitted.append(_draw(residual / residual.sum() if residual.sum() > 0 else p, generator))
                break
            else:  # every draft accepted (or none drafted): one draw from the main model
                emitted.append(_draw(tempered(rows[len(draft)], temperature), generator))
            if eos_id is not None and eos_id in emitted:
                emitted = emitted[: emitted.index(eos_id) + 1]
                stopped = True
            n_rounds += 1
            n_drafted += len(draft)
            seq += emitted
            main_len = _crop(main_cache, min(main_len, len(seq) - 1))
            asst_len = _crop(asst_cache, min(asst_len, len(seq) - 1))
    new = seq[start:]
    return {
        "new_ids": new,
        "n_new": len(new),
        "n_rounds": n_rounds,
        "n_drafted": n_drafted,
        "n_accepted": int(sum(flags)),
        "accepted_flags": flags,
        "expected": expected,
        "stopped_on_eos": stopped,
    }


def template_generator(seed: int, template_id: Any):
    """The draws of one template: the same whatever else the job samples."""
    import zlib

    import torch

    return torch.Generator().manual_seed(zlib.crc32(f"{seed}:{template_id}".encode()) + seed)


def sample_prompts(main, assistant, tokenizer, templates: pd.DataFrame, cfg: SamplingConfig) -> pd.DataFrame:
    """One row per template: the measured acceptances over ``cfg.samples`` continuations,
    the sum of their acceptance probabilities and its variance term."""
    eos_id = tokenizer.eos_token_id
    rows = []
    for template_id, prompt in progress(
        list(zip(templates["template_id"], templates["prompt"], strict=True)), desc="speculative sampling"
    ):
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        generator = template_generator(cfg.seed, template_id)
        flags: list[bool] = []
        expected: list[float] = []
        n_new = n_rounds = 0
        for _ in range(cfg.samples):
            record = speculative_sampling(
                main, assistant, prompt_ids, cfg.k, cfg.n, cfg.temperature, generator, eos_id, cfg.suppress_eos
            )
            flags += record["accepted_flags"]
            expected += record["expected"]
            n_new += record["n_new"]
            n_rounds += record["n_rounds"]
        a = np.asarray(expected, dtype=np.float64)
        rows.append(
            {
                "n_judged": len(flags),
                "n_accepted": int(sum(flags)),
                "expected_sum": float(a.sum()),
                "variance_sum": float((a * (1 - a)).sum()),
                "n_new": n_new,
                "n_rounds": n_rounds,
                "acceptance": sum(flags) / len(flags) if flags else math.nan,
                "expected_acceptance": float(a.mean()) if len(a) else math.nan,
                "assistant_share": sum(flags) / n_new if n_new else math.nan,
            }
        )
    return pd.concat([templates.reset_index(drop=True), pd.DataFrame(rows)], axis=1)


def acceptance_check(
    n_accepted: float, expected_sum: float, variance_sum: float, n_judged: float, level: float = 0.95
) -> dict[str, Any]:
    """Measured acceptance vs its expectation Σ(1 − TV): the measured rate with the
    ``level`` interval of the martingale (acceptances − probabilities), the z score, and
    whether the expectation lies inside the interval."""
    if n_judged <= 0:
        nan = math.nan
        return {"acceptance": nan, "expected": nan, "ci_lo": nan, "ci_hi": nan, "z": nan, "within": False}
    measured, theory = n_accepted / n_judged, expected_sum / n_judged
    half = NormalDist().inv_cdf(0.5 + level / 2) * math.sqrt(variance_sum) / n_judged
    z = (n_accepted - expected_sum) / math.sqrt(variance_sum) if variance_sum > 0 else math.nan
    return {
        "acceptance": measured,
        "expected": theory,
        "ci_lo": measured - half,
        "ci_hi": measured + half,
        "z": z,
        "within": bool(abs(measured - theory) <= half) if variance_sum > 0 else n_accepted == expected_sum,
    }


def acceptance_table(
    frame: pd.DataFrame, contrast: tuple[str, str], n_boot: int, seed: int, level: float = 0.95
) -> pd.DataFrame:
    """Per condition and category (and "all"): judged drafts, measured acceptance with its
    ``level`` interval, expected acceptance 1 − TV and whether it lies inside; then per
    condition the contrast's difference of measured acceptance with a 95 % bootstrap
    interval over templates."""
    rows: list[dict[str, Any]] = []
    rng = np.random.default_rng(seed)
    for condition, part in frame.groupby("condition", sort=True):
        groups = [(c, part[part["category"] == c]) for c in sorted(part["category"].unique())]
        for category, sub in [*groups, ("all", part)]:
            sums = sub[["n_accepted", "expected_sum", "variance_sum", "n_judged"]].sum()
            check = acceptance_check(*(float(sums[c]) for c in sums.index), level=level)
            rows.append(
                {
                    "condition": condition,
                    "category": category,
                    "n_templates": len(sub),
                    "n_judged": int(sums["n_judged"]),
                    **check,
                    "kind": "check",
                }
            )
        a, b = (part[part["category"] == c] for c in contrast)
        if len(a) and len(b):
            diff = _rate(a) - _rate(b)
            boots = [
                _rate(a.iloc[rng.integers(0, len(a), len(a))]) - _rate(b.iloc[rng.integers(0, len(b), len(b))])
                for _ in range(n_boot)
            ]
            lo, hi = np.nanpercentile(boots, [2.5, 97.5]) if n_boot else (math.nan, math.nan)
            rows.append(
                {
                    "condition": condition,
                    "category": f"{contrast[0]} − {contrast[1]}",
                    "n_templates": len(a) + len(b),
                    "n_judged": int(a["n_judged"].sum() + b["n_judged"].sum()),
                    "acceptance": diff,
                    "expected": _rate(a, "expected_sum") - _rate(b, "expected_sum"),
                    "ci_lo": float(lo),
                    "ci_hi": float(hi),
                    "z": math.nan,
                    "within": None,
                    "kind": "contrast",
                }
            )
    return pd.DataFrame(rows)


def _rate(part: pd.DataFrame, numerator: str = "n_accepted") -> float:
    judged = part["n_judged"].sum()
    return float(part[numerator].sum() / judged) if judged else math.nan


# --------------------------------------------------------------------------- jobs
def sample_acceptance(
    *,
    pair: dict[str, Any],
    templates_path: str | Path,
    view: str,
    cfg: SamplingConfig,
    out_path: str | Path,
    device: Any,
) -> dict[str, Any]:
    """Rule sample_specdec_acceptance: speculative sampling of every template of one view
    with one condition; one parquet row per template."""
    from biasdrift.specdec.conditions import load_pair
    from biasdrift.specdec.templates import view_frame

    templates = view_frame(pd.read_parquet(templates_path), view)
    disable_tf32()
    main, assistant, tokenizer = load_pair(pair, device)
    frame = sample_prompts(main, assistant, tokenizer, templates, cfg)
    frame["condition"], frame["view"], frame["k"], frame["n"] = pair["condition"], view, cfg.k, cfg.n
    frame["temperature"] = cfg.temperature
    with atomic_path(out_path) as tmp:
        frame.to_parquet(tmp, index=False)
    sums = frame[["n_accepted", "expected_sum", "variance_sum", "n_judged"]].sum()
    info = acceptance_check(*(float(sums[c]) for c in sums.index))
    log.info(
        "condition %s, view %s, K=%d, N=%d, T=%g: %s", pair["condition"], view, cfg.k, cfg.n, cfg.temperature, info
    )
    return info


def summarize_sampling(
    *, sampled: dict[str, str], contrast: list[str], n_boot: int, seed: int, level: float, out_csv: str | Path
) -> dict[str, Any]:
    """Rule summarize_specdec_sampling: :func:`acceptance_table` over the sampled conditions."""
    frame = pd.concat([pd.read_parquet(path) for _, path in sorted(sampled.items())], ignore_index=True)
    table = acceptance_table(frame, (contrast[0], contrast[1]), n_boot, seed, level)
    with atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    checks = table[table["kind"] == "check"]
    return {"rows": len(table), "checks_within": int(checks["within"].sum()), "checks": len(checks)}
