"""Rule-level glue of the statistics and figures: read the per-condition results of one
(view, K, N), write the tables, draw the figures."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pandas as pd

from biasdrift.data import DataError
from biasdrift.plots import save_table
from biasdrift.runtime import atomic_path
from biasdrift.specdec import figures
from biasdrift.specdec.stats import (
    StatsConfig,
    difference_in_differences,
    disparity,
    group_summary,
    identity_means,
    spread,
)

log = logging.getLogger(__name__)

DECODE_COLUMNS = (
    "template_id",
    "condition",
    "category",
    "identity",
    "raw",
    "prompt",
    "assistant_share",
    "acceptance_rate",
    "agreement_rate",
    "ratio_maxnew",
    "acc_trunc",
    "tokens_per_main_call",
    "n_rounds",
    "traj_kl_pq_mean",
    "traj_tv_mean",
)


def load_results(decoded: dict[str, str], kl: dict[str, str]) -> pd.DataFrame:
    """Decode results of every condition joined with that condition's prompt divergences."""
    frames = []
    for condition, path in sorted(decoded.items()):
        frame = pd.read_parquet(path, columns=list(DECODE_COLUMNS))
        if frame.empty:
            raise DataError(f"{path}: no decoded templates")
        if condition in kl:
            div = pd.read_parquet(kl[condition], columns=["template_id", "kl_pq", "kl_qp", "js", "tv", "top1_agree"])
            frame = frame.merge(div.rename(columns={"tv": "prompt_tv"}), on="template_id", how="left")
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def summarize_disparity(
    *,
    decoded: dict[str, str],
    kl: dict[str, str],
    contrast: list[str],
    reference: str,
    cfg: StatsConfig,
    outputs: dict[str, Any],
) -> dict[str, Any]:
    """Rule summarize_specdec_disparity: group means, identity means, a − b at three
    levels, difference-in-differences and spread, plus the per-template table."""
    frame = load_results(decoded, kl)
    tables = {
        "group_summary": group_summary(frame, cfg),
        "identity_means": identity_means(frame, cfg.metric),
        "disparity": disparity(frame, tuple(contrast), cfg),
        "did": difference_in_differences(frame, tuple(contrast), reference, cfg)
        if len(decoded) > 1
        else pd.DataFrame(),
        "spread": spread(frame, cfg),
    }
    for name, table in tables.items():
        save_table(table, outputs[name])
    with atomic_path(outputs["points"]) as tmp:
        frame.to_parquet(tmp, index=False)
    primary = tables["disparity"]
    primary = primary[primary["level"] == "identity"] if not primary.empty else primary
    info = {
        r.condition: {"diff": round(r.diff, 4), "ci": [round(r.ci_lo, 4), round(r.ci_hi, 4)], "p_holm": r.p_holm}
        for r in primary.itertuples()
        if r.contrast == f"{contrast[0]} − {contrast[1]}"
    }
    log.info("identity-level %s − %s of %s: %s", *contrast, cfg.metric, info)
    if not tables["did"].empty:
        did = tables["did"][tables["did"]["level"] == "identity"]
        log.info(
            "identity-level DiD vs %s: %s",
            reference,
            did[["condition", "did", "ci_lo", "ci_hi", "p_holm"]].to_dict("records"),
        )
    return {"identity_level": info}


def plot_disparity(
    *, stats_dir: str | Path, contrast: list[str], reference: str, title: str, outputs: dict[str, Any]
) -> dict:
    """Rule plot_specdec_disparity: the four figures of one (view, K, N)."""
    stats_dir = Path(stats_dir)
    summary = pd.read_csv(stats_dir / "group_summary.csv")
    means = pd.read_csv(stats_dir / "identity_means.csv")
    table = pd.read_csv(stats_dir / "disparity.csv")
    try:
        did = pd.read_csv(stats_dir / "did.csv")
    except pd.errors.EmptyDataError:  # a single condition: nothing to compare
        did = pd.DataFrame()
    points = pd.read_parquet(stats_dir / "per_template.parquet")
    metric = summary["metric"].iloc[0]
    cols = ["condition", "template_id", "category", "identity", "kl_pq", metric]
    out = {
        "share_by_category": figures.share_by_category(
            summary, reference, outputs["share_by_category_svg"], outputs["share_by_category_csv"], title
        ),
        "share_by_identity": figures.identity_distribution(
            means, contrast, reference, outputs["share_by_identity_svg"], outputs["share_by_identity_csv"], title
        ),
        "disparity_forest": figures.disparity_forest(
            table, did, contrast, outputs["disparity_forest_svg"], outputs["disparity_forest_csv"], title
        ),
        "kl_vs_share": figures.kl_vs_share(
            points[cols].dropna(), metric, reference, outputs["kl_vs_share_svg"], outputs["kl_vs_share_csv"], title
        ),
    }
    return out
