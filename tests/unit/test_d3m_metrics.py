"""d3m metrics on hand-built predictions (spec 9.3 item 8)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from biasdrift.d3m.metrics import (
    MetricWarning,
    balanced_accuracy,
    binary_rates,
    bootstrap_intervals,
    classification_metrics,
    flatten_metrics,
    roc_auc,
)


def frame(rows):
    """rows: (group, label, prob_1)"""
    out = pd.DataFrame(rows, columns=["group", "label", "prob_1"])
    out["uid"] = [f"u{i:03d}" for i in range(len(out))]
    out["cell"] = out["group"] + "|" + out["label"].astype(str)
    out["pred"] = (out["prob_1"] > 0.5).astype(int)
    p_true = np.where(out["label"] == 1, out["prob_1"], 1 - out["prob_1"])
    out["loss"] = -np.log(p_true)
    return out


# a|0: 1 of 4 right, a|1: 4 of 4, b|0: 3 of 4, b|1: 2 of 4
PREDS = frame(
    [("a", 0, p) for p in (0.9, 0.8, 0.6, 0.1)]
    + [("a", 1, p) for p in (0.9, 0.8, 0.7, 0.6)]
    + [("b", 0, p) for p in (0.2, 0.3, 0.4, 0.7)]
    + [("b", 1, p) for p in (0.9, 0.6, 0.4, 0.3)]
)


def test_worst_group_accuracy_over_cells_and_groups():
    m = classification_metrics(PREDS)
    assert m["cells"]["a|0"]["accuracy"] == 0.25 and m["cells"]["b|1"]["accuracy"] == 0.5
    assert m["wga_cell"] == 0.25 and m["worst_cell"] == "a|0"
    # groups: a = 5/8, b = 5/8: the cell view shows what the group view hides
    assert m["groups"]["a"]["accuracy"] == m["groups"]["b"]["accuracy"] == 0.625
    assert m["wga_group"] == 0.625
    assert m["accuracy"] == 10 / 16
    assert m["mean_group_accuracy"] == 0.625


def test_balanced_accuracy_fpr_fnr_and_cross_entropy():
    m = classification_metrics(PREDS)
    recall0 = (1 + 3) / 8  # label 0 right in a|0 and b|0
    recall1 = (4 + 2) / 8
    assert m["balanced_accuracy"] == pytest.approx((recall0 + recall1) / 2)
    assert m["groups"]["a"]["fpr"] == 0.75 and m["groups"]["a"]["fnr"] == 0.0
    assert m["groups"]["b"]["fpr"] == 0.25 and m["groups"]["b"]["fnr"] == 0.5
    assert m["ce"] == pytest.approx(PREDS["loss"].mean())


def test_auc_is_computed_on_probabilities_not_labels():
    from sklearn.metrics import roc_auc_score

    m = classification_metrics(PREDS)
    assert m["auc"] == pytest.approx(roc_auc_score(PREDS["label"], PREDS["prob_1"]))
    # the thesis's "AUC" on hard labels equals balanced accuracy; on probabilities it differs
    assert m["auc"] != pytest.approx(m["balanced_accuracy"])
    assert roc_auc([0, 0, 1, 1], [0.5, 0.5, 0.5, 0.5]) == 0.5  # ties count one half


def test_absent_class_gives_nan_with_a_warning():
    only_positive = PREDS[PREDS["label"] == 1]
    with pytest.warns(MetricWarning, match="FPR"):
        rates = binary_rates(only_positive["label"], only_positive["pred"], "positives")
    assert math.isnan(rates["fpr"]) and rates["fnr"] == 0.25
    with pytest.warns(MetricWarning, match="only one class"):
        assert math.isnan(roc_auc(only_positive["label"], only_positive["prob_1"]))
    with pytest.warns(MetricWarning):
        assert math.isnan(balanced_accuracy(only_positive["label"], only_positive["pred"]))
    with pytest.warns(MetricWarning):
        m = classification_metrics(only_positive)
    assert math.isnan(m["groups"]["a"]["fpr"]) and math.isnan(m["auc"])


def test_no_warning_when_every_class_is_present():
    with warnings.catch_warnings():
        warnings.simplefilter("error", MetricWarning)
        classification_metrics(PREDS)


def test_bootstrap_is_seeded_and_brackets_the_estimate():
    big = pd.concat([PREDS.assign(uid=PREDS["uid"] + f"-{i}") for i in range(10)], ignore_index=True)
    m = classification_metrics(big)
    ci = bootstrap_intervals(big, n_boot=300, seed=1)
    assert ci == bootstrap_intervals(big, n_boot=300, seed=1)
    assert ci != bootstrap_intervals(big, n_boot=300, seed=2)
    for name in ("accuracy", "balanced_accuracy", "wga_cell", "wga_group", "auc", "ce"):
        assert ci[name]["low"] <= m[name] <= ci[name]["high"], name
        assert ci[name]["low"] < ci[name]["high"], name


def test_bad_predictions_are_refused():
    with pytest.raises(ValueError, match="prob_1"):
        classification_metrics(PREDS.drop(columns="prob_1"))
    with pytest.raises(ValueError, match="NaN"):
        classification_metrics(PREDS.assign(loss=np.nan))


def test_flatten_metrics_keeps_every_scope():
    rows = pd.DataFrame(flatten_metrics(classification_metrics(PREDS)))
    assert set(rows["scope"]) == {"overall", "cell", "group"}
    assert rows.query("scope == 'cell' and name == 'a|0' and metric == 'accuracy'")["value"].item() == 0.25


def test_vectorised_bootstrap_auc_matches_the_scalar_one():
    from biasdrift.d3m.metrics import _auc_rows

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, size=(5, 30))
    scores = rng.integers(0, 4, size=(5, 30)) / 4  # many ties
    expected = [roc_auc(labels[i], scores[i]) for i in range(5)]
    assert np.allclose(_auc_rows(labels, scores), expected)
