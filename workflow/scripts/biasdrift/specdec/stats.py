"""Statistics of the group disparity (specs/specdec.md §9).

The unit of observation is a template (prompt), but the group effect is carried by the
identity terms and templates share raw patterns, so prompt-level tests are
anti-conservative. Three levels are reported:

* ``prompt``: difference of group means over templates; CI from a two-way cluster
  bootstrap (identities resampled within group, raw patterns resampled, the statistic
  recomputed with each template weighted by the product of its identity's and its
  pattern's multiplicities): the headline interval, generalising over both; permutation
  p over templates (anti-conservative); Mann-Whitney U.
* ``identity`` (primary test): templates averaged per identity first; CI from a bootstrap
  of identities within group and permutation p over identities (both treat the pattern
  set as fixed); Mann-Whitney U.
* ``pattern_paired``: per raw pattern, group a's mean minus group b's; CI from a
  bootstrap of patterns, sign-flip p and Wilcoxon signed-rank over patterns (these treat
  the identity set as fixed).

Before vs after fine-tuning is a difference-in-differences, DiD = (a − b)_cond −
(a − b)_reference, with the *same* bootstrap resample applied to both conditions (the
templates are the same). Multiplicity: Holm over every test of a table.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)

METRICS = ("assistant_share", "acceptance_rate", "agreement_rate", "ratio_maxnew", "acc_trunc", "tokens_per_main_call")
SUMMARY_EXTRA = ("acceptance_rate", "agreement_rate", "traj_kl_pq_mean", "traj_tv_mean", "n_rounds")


@dataclass
class StatsConfig:
    SCHEMA: ClassVar[str] = "studies.specdec.stats"  # the schema section it mirrors: its defaults
    metric: str = field(metadata={"help": "Per-template metric compared across groups."})
    n_boot: int = field(metadata={"help": "Bootstrap resamples."})
    n_perm: int = field(metadata={"help": "Permutations (or sign flips)."})
    ci: float = field(metadata={"help": "Confidence level of the percentile intervals."})
    seed: int = field(metadata={"help": "Seed of resampling and permutations."})

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"unknown metric {self.metric!r}; known: {', '.join(METRICS)}")
        if not 0 < self.ci < 1:
            raise ValueError(f"ci must be in (0, 1), got {self.ci}")
        if self.n_boot < 1 or self.n_perm < 1:
            raise ValueError("n_boot and n_perm must be positive")


# --------------------------------------------------------------------------- primitives
def percentile_ci(samples: np.ndarray, ci: float) -> tuple[float, float]:
    samples = np.asarray(samples, dtype=float)
    samples = samples[np.isfinite(samples)]
    if samples.size == 0:
        return float("nan"), float("nan")
    alpha = (1 - ci) / 2
    lo, hi = np.quantile(samples, [alpha, 1 - alpha])
    return float(lo), float(hi)


def holm(pvalues) -> np.ndarray:
    """Holm's step-down adjustment (NaNs stay NaN and are not counted)."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full_like(p, np.nan)
    valid = np.flatnonzero(np.isfinite(p))
    if valid.size == 0:
        return out
    order = valid[np.argsort(p[valid], kind="stable")]
    m = order.size
    running = 0.0
    for rank, idx in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[idx]))
        out[idx] = running
    return out


def _p_from_null(observed: float, null: np.ndarray) -> float:
    """Two-sided permutation p with the +1 correction (never exactly 0)."""
    extreme = np.sum(np.abs(null) >= abs(observed) - 1e-12)
    return float((extreme + 1) / (null.size + 1))


def permutation_p(values: np.ndarray, in_a: np.ndarray, n_perm: int, rng: np.random.Generator) -> float:
    """Two-sided p of mean(a) − mean(b) under random relabelling."""
    values, in_a = np.asarray(values, float), np.asarray(in_a, bool)
    n_a = int(in_a.sum())
    if n_a == 0 or n_a == values.size:
        return float("nan")
    observed = values[in_a].mean() - values[~in_a].mean()
    total = values.sum()
    perms = np.argsort(rng.random((n_perm, values.size)), axis=1)[:, :n_a]  # [n_perm, n_a]
    sum_a = values[perms].sum(axis=1)
    null = sum_a / n_a - (total - sum_a) / (values.size - n_a)
    return _p_from_null(observed, null)


def sign_flip_p(diffs: np.ndarray, n_perm: int, rng: np.random.Generator) -> float:
    """Two-sided p of mean(d) under random sign flips (paired differences)."""
    diffs = np.asarray(diffs, float)
    if diffs.size == 0:
        return float("nan")
    if np.allclose(diffs, 0):
        return 1.0
    signs = rng.choice((-1.0, 1.0), size=(n_perm, diffs.size))
    return _p_from_null(diffs.mean(), (signs * diffs).mean(axis=1))


def mann_whitney(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(p, rank-biserial r = 2U/(n_a n_b) − 1, positive when a tends to be larger)."""
    from scipy.stats import mannwhitneyu

    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.size == 0 or b.size == 0:
        return float("nan"), float("nan")
    if np.ptp(np.concatenate([a, b])) == 0:
        return 1.0, 0.0
    result = mannwhitneyu(a, b, alternative="two-sided")
    return float(result.pvalue), float(2 * result.statistic / (a.size * b.size) - 1)


def wilcoxon_p(diffs: np.ndarray) -> float:
    from scipy.stats import wilcoxon

    diffs = np.asarray(diffs, float)
    if diffs.size == 0 or np.allclose(diffs, 0):
        return 1.0 if diffs.size else float("nan")
    return float(wilcoxon(diffs).pvalue)


class ClusterBootstrap:
    """Row weights of a two-way cluster bootstrap: clusters (identities) are resampled
    with replacement within their stratum (group), patterns are resampled over all
    patterns, and a row's weight is the product of its cluster's and its pattern's
    multiplicity. Rows are the templates of one condition; apply the same weights to
    another condition over the same templates for paired statistics."""

    def __init__(self, clusters, strata, patterns, n_boot: int, rng: np.random.Generator):
        clusters = pd.Series(np.asarray(clusters).astype(str)) + "\x1f" + pd.Series(np.asarray(strata).astype(str))
        cluster_codes, cluster_names = pd.factorize(clusters)
        pattern_codes, pattern_names = pd.factorize(pd.Series(np.asarray(patterns).astype(str)))
        stratum_of = pd.Series(cluster_names).str.split("\x1f").str[1].to_numpy()
        w_cluster = np.zeros((n_boot, len(cluster_names)))
        for stratum in np.unique(stratum_of):
            members = np.flatnonzero(stratum_of == stratum)
            w_cluster[:, members] = rng.multinomial(members.size, np.full(members.size, 1 / members.size), size=n_boot)
        w_pattern = rng.multinomial(len(pattern_names), np.full(len(pattern_names), 1 / len(pattern_names)), n_boot)
        self.weights = w_cluster[:, cluster_codes] * w_pattern[:, pattern_codes]  # [n_boot, n_rows]

    def mean(self, values: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Weighted mean of ``values`` over ``mask`` rows per resample (NaN when no
        weight falls on them)."""
        values = np.asarray(values, float)
        w = self.weights if mask is None else self.weights[:, np.asarray(mask, bool)]
        v = values if mask is None else values[np.asarray(mask, bool)]
        total = w.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, (w * v).sum(axis=1) / total, np.nan)


def group_bootstrap_diff(values: np.ndarray, in_a: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """mean(a) − mean(b) with the units of each group resampled within their group."""
    values, in_a = np.asarray(values, float), np.asarray(in_a, bool)
    a, b = values[in_a], values[~in_a]
    return a[rng.integers(0, a.size, (n_boot, a.size))].mean(axis=1) - b[
        rng.integers(0, b.size, (n_boot, b.size))
    ].mean(axis=1)


def _rng(cfg: StatsConfig, *salt: Any) -> np.random.Generator:
    """A generator seeded by the config seed and a label, so each table is
    reproducible on its own."""
    text = "|".join(map(str, (cfg.seed, *salt)))
    return np.random.default_rng(int.from_bytes(text.encode(), "little") % (2**63))


# --------------------------------------------------------------------------- tables
def _clean(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    need = ["condition", "template_id", "category", "identity", "raw", metric]
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise ValueError(f"decode results lack column(s) {missing}")
    return frame[np.isfinite(frame[metric].astype(float))].reset_index(drop=True)


def identity_means(frame: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per condition, category and identity: the mean of ``metric`` over its templates."""
    frame = _clean(frame, metric)
    grouped = frame.groupby(["condition", "category", "identity"], sort=True)[metric]
    return grouped.agg(mean="mean", n="size").reset_index().assign(metric=metric)


def group_summary(frame: pd.DataFrame, cfg: StatsConfig) -> pd.DataFrame:
    """Per condition and category: mean of the metric with a two-way cluster bootstrap
    CI (identities and patterns), plus means of the other diagnostics."""
    frame = _clean(frame, cfg.metric)
    rows = []
    for (condition, category), part in frame.groupby(["condition", "category"], sort=True):
        boot = ClusterBootstrap(
            part["identity"], part["category"], part["raw"], cfg.n_boot, _rng(cfg, "summary", condition, category)
        )
        lo, hi = percentile_ci(boot.mean(part[cfg.metric].to_numpy()), cfg.ci)
        extra = {f"mean_{c}": float(part[c].mean()) for c in SUMMARY_EXTRA if c in part.columns}
        rows.append(
            {
                "condition": condition,
                "category": category,
                "metric": cfg.metric,
                "n": len(part),
                "n_identities": part["identity"].nunique(),
                "mean": float(part[cfg.metric].mean()),
                "ci_lo": lo,
                "ci_hi": hi,
                **extra,
            }
        )
    return pd.DataFrame(rows)


def _unpaired_row(level: str, values: np.ndarray, in_a: np.ndarray, ci: tuple[float, float], p_perm: float) -> dict:
    p_rank, effect = mann_whitney(values[in_a], values[~in_a])
    return {
        "level": level,
        "diff": float(values[in_a].mean() - values[~in_a].mean()),
        "ci_lo": ci[0],
        "ci_hi": ci[1],
        "p_perm": p_perm,
        "p_rank": p_rank,
        "rank_test": "mann-whitney",
        "effect": effect,
        "n_a": int(in_a.sum()),
        "n_b": int((~in_a).sum()),
    }


def _contrast_rows(part: pd.DataFrame, a: str, b: str, cfg: StatsConfig, condition: str) -> list[dict[str, Any]]:
    metric = cfg.metric
    part = part[part["category"].isin([a, b])].reset_index(drop=True)
    in_a = (part["category"] == a).to_numpy()
    values = part[metric].to_numpy(float)
    label = f"{a} − {b}"
    boot = ClusterBootstrap(
        part["identity"], part["category"], part["raw"], cfg.n_boot, _rng(cfg, "prompt", condition, label)
    )
    out = [
        _unpaired_row(
            "prompt",
            values,
            in_a,
            percentile_ci(boot.mean(values, in_a) - boot.mean(values, ~in_a), cfg.ci),
            permutation_p(values, in_a, cfg.n_perm, _rng(cfg, "perm-prompt", condition, label)),
        )
    ]
    ids = part.groupby(["category", "identity"], sort=True)[metric].mean().reset_index()
    ids_a, id_values = (ids["category"] == a).to_numpy(), ids[metric].to_numpy(float)
    out.append(
        _unpaired_row(
            "identity",
            id_values,
            ids_a,
            percentile_ci(
                group_bootstrap_diff(id_values, ids_a, cfg.n_boot, _rng(cfg, "identity", condition, label)), cfg.ci
            ),
            permutation_p(id_values, ids_a, cfg.n_perm, _rng(cfg, "perm-identity", condition, label)),
        )
    )
    # paired by raw pattern
    by_pattern = part.pivot_table(index="raw", columns="category", values=metric, aggfunc="mean").dropna()
    if a in by_pattern and b in by_pattern and len(by_pattern):
        d = (by_pattern[a] - by_pattern[b]).to_numpy(float)
        rng = _rng(cfg, "pattern", condition, label)
        lo, hi = percentile_ci(d[rng.integers(0, d.size, (cfg.n_boot, d.size))].mean(axis=1), cfg.ci)
        out.append(
            {
                "level": "pattern_paired",
                "diff": float(d.mean()),
                "ci_lo": lo,
                "ci_hi": hi,
                "p_perm": sign_flip_p(d, cfg.n_perm, _rng(cfg, "flip", condition, label)),
                "p_rank": wilcoxon_p(d),
                "rank_test": "wilcoxon",
                "effect": float(np.mean(np.sign(d))),
                "n_a": int(d.size),
                "n_b": int(d.size),
            }
        )
    return [{"condition": condition, "contrast": label, "metric": metric, **row} for row in out]


def disparity(frame: pd.DataFrame, contrast: tuple[str, str], cfg: StatsConfig) -> pd.DataFrame:
    """a − b at three levels per condition, and (with more than two categories) each
    category against the rest at the prompt level; Holm over the whole table."""
    frame = _clean(frame, cfg.metric)
    a, b = contrast
    rows: list[dict[str, Any]] = []
    for condition, part in frame.groupby("condition", sort=True):
        present = set(part["category"])
        if {a, b} <= present:
            rows += _contrast_rows(part, a, b, cfg, condition)
        if len(present) > 2:
            for category in sorted(present):
                relabelled = part.assign(category=np.where(part["category"] == category, category, "rest"))
                rows += [
                    r for r in _contrast_rows(relabelled, category, "rest", cfg, condition) if r["level"] == "prompt"
                ]
    table = pd.DataFrame(rows)
    if not table.empty:
        table["p_holm"] = holm(table["p_perm"])
    return table


def _paired(frame: pd.DataFrame, condition: str, reference: str, metric: str) -> pd.DataFrame:
    cols = ["template_id", "category", "identity", "raw", metric]
    ref = frame.loc[frame["condition"] == reference, cols]
    cur = frame.loc[frame["condition"] == condition, cols]
    merged = cur.merge(ref[["template_id", metric]], on="template_id", suffixes=("", "_ref"))
    return merged.dropna(subset=[metric, f"{metric}_ref"]).reset_index(drop=True)


def difference_in_differences(
    frame: pd.DataFrame, contrast: tuple[str, str], reference: str, cfg: StatsConfig
) -> pd.DataFrame:
    """DiD = (a − b)_condition − (a − b)_reference for every other condition, at the
    prompt level (paired two-way bootstrap CI, sign-flip p over raw patterns) and the
    identity level (paired bootstrap over identities, permutation p of group labels over
    the identities' changes); Holm over the table."""
    frame = _clean(frame, cfg.metric)
    a, b = contrast
    metric = cfg.metric
    if reference not in set(frame["condition"]):
        raise ValueError(
            f"reference condition {reference!r} has no results; present: {sorted(set(frame['condition']))}"
        )
    rows = []
    for condition in sorted(set(frame["condition"]) - {reference}):
        pair = _paired(frame, condition, reference, metric)
        pair = pair[pair["category"].isin([a, b])].reset_index(drop=True)
        if pair.empty or pair["category"].nunique() < 2:
            continue
        in_a = (pair["category"] == a).to_numpy()
        cur, ref = pair[metric].to_numpy(float), pair[f"{metric}_ref"].to_numpy(float)
        delta = cur - ref
        boot = ClusterBootstrap(
            pair["identity"], pair["category"], pair["raw"], cfg.n_boot, _rng(cfg, "did", condition)
        )
        boots = (boot.mean(cur, in_a) - boot.mean(cur, ~in_a)) - (boot.mean(ref, in_a) - boot.mean(ref, ~in_a))
        lo, hi = percentile_ci(boots, cfg.ci)
        by_pattern = (
            pair.assign(delta=delta)
            .pivot_table(index="raw", columns="category", values="delta", aggfunc="mean")
            .dropna()
        )
        d = (by_pattern[a] - by_pattern[b]).to_numpy(float) if {a, b} <= set(by_pattern.columns) else np.array([])
        diff_cur = cur[in_a].mean() - cur[~in_a].mean()
        diff_ref = ref[in_a].mean() - ref[~in_a].mean()
        rows.append(
            {
                "condition": condition,
                "reference": reference,
                "level": "prompt",
                "diff_condition": diff_cur,
                "diff_reference": diff_ref,
                "did": diff_cur - diff_ref,
                "ci_lo": lo,
                "ci_hi": hi,
                "p_perm": sign_flip_p(d, cfg.n_perm, _rng(cfg, "did-flip", condition)),
                "test": "sign flip over raw patterns",
                "n": len(pair),
            }
        )
        ids = (
            pair.assign(delta=delta, cur=cur, ref=ref)
            .groupby(["category", "identity"], sort=True)[["delta", "cur", "ref"]]
            .mean()
            .reset_index()
        )
        ids_a = (ids["category"] == a).to_numpy()
        dv = ids["delta"].to_numpy(float)
        lo, hi = percentile_ci(group_bootstrap_diff(dv, ids_a, cfg.n_boot, _rng(cfg, "did-id", condition)), cfg.ci)
        rows.append(
            {
                "condition": condition,
                "reference": reference,
                "level": "identity",
                "diff_condition": float(ids.loc[ids_a, "cur"].mean() - ids.loc[~ids_a, "cur"].mean()),
                "diff_reference": float(ids.loc[ids_a, "ref"].mean() - ids.loc[~ids_a, "ref"].mean()),
                "did": float(dv[ids_a].mean() - dv[~ids_a].mean()),
                "ci_lo": lo,
                "ci_hi": hi,
                "p_perm": permutation_p(dv, ids_a, cfg.n_perm, _rng(cfg, "did-perm", condition)),
                "test": "permutation of group labels over identities",
                "n": len(ids),
            }
        )
    table = pd.DataFrame(rows)
    if not table.empty:
        table["p_holm"] = holm(table["p_perm"])
        table.insert(2, "contrast", f"{a} − {b}")
    return table


def spread(frame: pd.DataFrame, cfg: StatsConfig) -> pd.DataFrame:
    """The original's informal "disparity": range (max − min) and standard deviation of
    the category means per condition, with two-way cluster bootstrap CIs."""
    frame = _clean(frame, cfg.metric)
    rows = []
    for condition, part in frame.groupby("condition", sort=True):
        categories = sorted(set(part["category"]))
        if len(categories) < 2:
            continue
        values = part[cfg.metric].to_numpy(float)
        boot = ClusterBootstrap(
            part["identity"], part["category"], part["raw"], cfg.n_boot, _rng(cfg, "spread", condition)
        )
        means = np.stack([boot.mean(values, (part["category"] == c).to_numpy()) for c in categories], axis=1)
        means = means[np.isfinite(means).all(axis=1)]  # resamples that left a category without weight
        point = np.array([values[(part["category"] == c).to_numpy()].mean() for c in categories])
        for stat, func in (
            ("range", lambda m: m.max(axis=-1) - m.min(axis=-1)),
            ("sd", lambda m: m.std(axis=-1, ddof=1)),
        ):
            lo, hi = percentile_ci(func(means), cfg.ci)
            rows.append(
                {
                    "condition": condition,
                    "statistic": stat,
                    "value": float(func(point[None])[0]),
                    "ci_lo": lo,
                    "ci_hi": hi,
                    "n_categories": len(categories),
                }
            )
    return pd.DataFrame(rows)
