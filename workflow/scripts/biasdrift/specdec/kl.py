"""KL between the main model and its assistant at the template prompts, per condition, and
over fine-tuning from the milestone dumps (specs/specdec.md §6, §10)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from biasdrift.data import DataError
from biasdrift.plots import save_table
from biasdrift.runtime import atomic_path
from biasdrift.specdec.divergence import divergences
from biasdrift.specdec.stats import percentile_ci
from biasdrift.specdec.templates import VIEWS

log = logging.getLogger(__name__)

TEMPLATE_COLUMNS = ("template_id", "prompt", "category", "identity", "raw", "in_clean_binary", "in_legacy_all")


def milestone_prompts(templates: pd.DataFrame) -> list[str]:
    """The distinct prompts of every view, sorted (what the milestone dumps hold)."""
    used = templates[templates[[f"in_{v}" for v in VIEWS]].any(axis=1)]
    return sorted(set(used["prompt"]))


def measure_kl(
    *, pair: dict[str, Any], templates_path: str | Path, out_path: str | Path, device: Any, batch_size: int = 32
) -> dict:
    """Rule measure_specdec_kl: divergences of main vs assistant at the last prompt
    position of every template used by a view."""
    from biasdrift.specdec.conditions import load_pair
    from biasdrift.specdec.decoding import disable_tf32
    from biasdrift.specdec.finetune import template_log_probs

    templates = pd.read_parquet(templates_path)
    prompts = milestone_prompts(templates)
    disable_tf32()
    main, assistant, tokenizer = load_pair(pair, device)
    tokenizer.padding_side = "right"
    lp = template_log_probs(main, tokenizer, prompts, batch_size)
    lq = template_log_probs(assistant, tokenizer, prompts, batch_size)
    div = {k: v.numpy() for k, v in divergences(lp, lq).items()}
    per_prompt = pd.DataFrame({"prompt": prompts, **div})
    frame = templates[list(TEMPLATE_COLUMNS)].merge(per_prompt, on="prompt", how="inner")
    frame["condition"] = pair["condition"]
    with atomic_path(out_path) as tmp:
        frame.to_parquet(tmp, index=False)
    info = {k: float(np.mean(v)) for k, v in div.items()}
    log.info("condition %s: mean prompt divergences %s", pair["condition"], info)
    return info


TERMS = (
    ("KL(M_t‖A_t)", "main", "assistant"),
    ("KL(M_t‖M_0)", "main", "main0"),
    ("KL(A_t‖A_0)", "assistant", "assistant0"),
    ("KL(M_t‖A_0)", "main", "assistant0"),
    ("KL(M_0‖A_t)", "main0", "assistant"),
)


def kl_curve(
    *,
    main_dir: str | Path,
    assistant_dir: str | Path,
    templates_path: str | Path,
    views: list[str],
    n_boot: int,
    ci: float,
    seed: int,
    out_path: str | Path,
) -> dict[str, Any]:
    """Rule curve_specdec_kl: the KL terms of :data:`TERMS` at every milestone step both
    roles share, per view and category (and "all"), with bootstrap CIs over templates."""
    import torch

    from biasdrift.specdec.finetune import load_milestones

    main, main_epochs = load_milestones(main_dir)
    asst, _ = load_milestones(assistant_dir)
    steps = sorted(set(main) & set(asst))
    if set(main) != set(asst):
        log.warning("milestone steps differ between the roles; using the %d shared ones", len(steps))
    if 0 not in steps:
        raise DataError(f"{main_dir} / {assistant_dir}: no step-0 milestone (the models before fine-tuning)")
    prompts = main[0]["prompts"]
    if any(d["prompts"] != prompts for d in (*main.values(), *asst.values())):
        raise DataError("milestone dumps hold different prompt lists; rerun fine-tuning of both roles")
    index = {p: i for i, p in enumerate(prompts)}
    templates = pd.read_parquet(templates_path)
    epoch_end = {step: epoch for epoch, step in main_epochs.items()}
    rng = np.random.default_rng(seed)
    rows = []
    for step in steps:
        sources = {
            "main": main[step]["log_probs"],
            "assistant": asst[step]["log_probs"],
            "main0": main[0]["log_probs"],
            "assistant0": asst[0]["log_probs"],
        }
        per_term = {name: divergences(sources[p].float(), sources[q].float())["kl_pq"].numpy() for name, p, q in TERMS}
        with torch.no_grad():
            div_t = divergences(sources["main"].float(), sources["assistant"].float())
        per_term["TV(M_t,A_t)"] = div_t["tv"].numpy()
        per_term["top-1 agreement(M_t,A_t)"] = div_t["top1_agree"].numpy()
        for view in views:
            rows_v = templates[templates[f"in_{view}"]]
            idx = rows_v["prompt"].map(index).to_numpy()
            if np.isnan(idx.astype(float)).any():
                raise DataError(f"view {view}: templates without a milestone distribution; rerun fine-tuning")
            for term, values in per_term.items():
                v_all = values[idx.astype(int)]
                for category, mask in [("all", np.ones(len(rows_v), bool))] + [
                    (c, (rows_v["category"] == c).to_numpy()) for c in sorted(set(rows_v["category"]))
                ]:
                    v = v_all[mask]
                    boots = v[rng.integers(0, v.size, size=(n_boot, v.size))].mean(axis=1)
                    lo, hi = percentile_ci(boots, ci)
                    rows.append(
                        {
                            "view": view,
                            "step": step,
                            "epoch": float(main[step]["epoch"]),
                            "epoch_end": epoch_end.get(step),
                            "term": term,
                            "category": category,
                            "mean": float(v.mean()),
                            "ci_lo": lo,
                            "ci_hi": hi,
                            "n": int(v.size),
                        }
                    )
    curve = pd.DataFrame(rows)
    save_table(curve, out_path)
    first = curve[(curve["term"] == "KL(M_t‖A_t)") & (curve["category"] == "all")]
    info = {
        "steps": steps,
        "kl_main_assistant": dict(
            zip(first["step"].astype(str) + "/" + first["view"], first["mean"].round(4), strict=True)
        ),
    }
    log.info("KL curve: %s", info)
    return info
