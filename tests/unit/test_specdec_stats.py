"""Statistics of the disparity: no difference between identical groups, a planted shift is
found, DiD of identical conditions is exactly 0, Holm, Wilson and McNemar."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from biasdrift.config import from_schema
from biasdrift.specdec import stats
from biasdrift.specdec.toxicity import mcnemar_exact, summarize, transitions, wilson

CFG = from_schema(stats.StatsConfig, n_boot=800, n_perm=2000, seed=3)


def synthetic(
    shift: float = 0.0, seed: int = 0, condition: str = "base", n_ids: int = 12, n_patterns: int = 10, id_sd=0.05
):
    """Templates of two groups with identity and pattern effects; group a shifted."""
    rng = np.random.default_rng(seed)
    id_effect = rng.normal(0, id_sd, size=2 * n_ids)
    pat_effect = rng.normal(0, 0.05, size=n_patterns)
    rows = []
    for g, category in enumerate(("female", "male")):
        for i in range(n_ids):
            for p in range(n_patterns):
                value = 0.5 + id_effect[g * n_ids + i] + pat_effect[p] + rng.normal(0, 0.08) + (shift if g == 0 else 0)
                rows.append(
                    {
                        "condition": condition,
                        "template_id": f"t{g}-{i}-{p}",
                        "category": category,
                        "identity": f"{category}-{i}",
                        "raw": f"[I] pattern {p} [M].",
                        "assistant_share": float(np.clip(value, 0, 1)),
                    }
                )
    return pd.DataFrame(rows)


def test_identical_groups_show_no_difference():
    """With identity and pattern effects, the intervals that let identities vary (prompt:
    two-way; identity) cover 0 and the primary identity-level test does not reject. The
    pattern-paired level holds the identities fixed, so it is checked where identities
    do not differ among themselves."""
    for seed in range(3):
        table = stats.disparity(synthetic(0.0, seed), ("female", "male"), CFG).set_index("level")
        assert set(table.index) == {"prompt", "identity", "pattern_paired"}
        for level in ("prompt", "identity"):
            assert table.loc[level, "ci_lo"] <= 0 <= table.loc[level, "ci_hi"], (seed, level)
        assert table.loc["identity", "p_perm"] > 0.05
        paired = stats.disparity(synthetic(0.0, seed, id_sd=0.0), ("female", "male"), CFG).set_index("level")
        assert paired.loc["pattern_paired", "ci_lo"] <= 0 <= paired.loc["pattern_paired", "ci_hi"], seed
        assert paired.loc["pattern_paired", "p_perm"] > 0.05


def test_a_planted_shift_is_found_at_every_level():
    table = stats.disparity(synthetic(0.3, 1), ("female", "male"), CFG)
    assert set(table["level"]) == {"prompt", "identity", "pattern_paired"}
    for row in table.itertuples():
        assert row.ci_lo > 0.15 and row.ci_hi < 0.45, row.level
        assert row.p_perm < 0.01 and row.p_holm < 0.05
        assert row.diff == pytest.approx(0.3, abs=0.06)


def test_cluster_bootstrap_is_wider_than_the_naive_one():
    """Identity effects make templates of one identity alike; resampling identities gives a
    wider interval than the prompt-level permutation would suggest."""
    frame = synthetic(0.0, 2)
    table = stats.disparity(frame, ("female", "male"), CFG).set_index("level")
    values = frame["assistant_share"].to_numpy()
    naive_se = np.sqrt(values[:120].var() / 120 + values[120:].var() / 120)
    assert table.loc["prompt", "ci_hi"] - table.loc["prompt", "ci_lo"] > 2 * 1.96 * naive_se


def test_did_of_identical_conditions_is_exactly_zero():
    base = synthetic(0.2, 4)
    frame = pd.concat([base, base.assign(condition="ft")], ignore_index=True)
    table = stats.difference_in_differences(frame, ("female", "male"), "base", CFG)
    assert set(table["level"]) == {"prompt", "identity"}
    assert (table["did"] == 0).all() and (table["ci_lo"] == 0).all() and (table["ci_hi"] == 0).all()
    assert (table["p_perm"] > 0.5).all()


def test_did_finds_a_shrinking_disparity():
    base = synthetic(0.3, 5)
    shrunk = synthetic(0.0, 5).assign(condition="ft")
    table = stats.difference_in_differences(pd.concat([base, shrunk]), ("female", "male"), "base", CFG)
    for row in table.itertuples():
        assert row.did == pytest.approx(-0.3, abs=0.06) and row.ci_hi < 0 and row.p_holm < 0.05


def test_summary_spread_and_identity_means():
    frame = synthetic(0.3, 6)
    summary = stats.group_summary(frame, CFG).set_index("category")
    assert summary.loc["female", "mean"] - summary.loc["male", "mean"] == pytest.approx(0.3, abs=0.06)
    assert (summary["ci_lo"] < summary["mean"]).all() and (summary["mean"] < summary["ci_hi"]).all()
    assert summary.loc["female", "n"] == 120 and summary.loc["female", "n_identities"] == 12
    spread = stats.spread(frame, CFG).set_index("statistic")
    assert spread.loc["range", "value"] == pytest.approx(0.3, abs=0.06) and spread.loc["range", "ci_lo"] > 0.1
    means = stats.identity_means(frame, "assistant_share")
    assert len(means) == 24 and (means["n"] == 10).all()


def test_holm_adjustment():
    adjusted = stats.holm([0.01, 0.04, 0.03, np.nan])
    assert adjusted[:3] == pytest.approx([0.03, 0.06, 0.06]) and np.isnan(adjusted[3])
    assert stats.holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])


def test_unknown_metric_and_bad_ci_are_refused():
    with pytest.raises(ValueError, match="unknown metric"):
        from_schema(stats.StatsConfig, metric="speed")
    with pytest.raises(ValueError, match="ci must be"):
        from_schema(stats.StatsConfig, ci=1.5)


def test_wilson_and_mcnemar():
    lo, hi = wilson(5, 20)
    assert lo == pytest.approx(0.1119, abs=1e-3) and hi == pytest.approx(0.4687, abs=1e-3)
    assert wilson(0, 10)[0] == 0 and np.isnan(wilson(0, 0)[0])
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(10, 0) == pytest.approx(2 * 0.5**10)


def test_toxicity_tables():
    scores = pd.DataFrame(
        {
            "condition": ["base"] * 4 + ["ft"] * 4,
            "template_id": ["a", "b", "c", "d"] * 2,
            "category": ["female", "female", "male", "male"] * 2,
            "source": "main",
            "unit": "sentence",
            "score": [1, 1, 0, 0, 0, 1, 0, 1],
        }
    )
    scores["is_toxic"] = scores["score"] >= 0.5
    summary = summarize(scores, 0.95).set_index(["condition", "category"])
    assert summary.loc[("base", "all"), "rate"] == 0.5 and summary.loc[("base", "female"), "n_toxic"] == 2
    paired = transitions(scores, "base").set_index("category")
    assert paired.loc["all", ["n_00", "n_01", "n_10", "n_11"]].tolist() == [1, 1, 1, 1]
    assert paired.loc["all", "p_mcnemar"] == 1.0
