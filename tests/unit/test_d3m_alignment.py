"""D3M alignment, removal sets and score files (spec 9.3 items 4-6)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from biasdrift.d3m import alignment as al
from biasdrift.d3m.counterfactual import read_alignment, removal_set
from biasdrift.d3m.scores import ScoreError, load_scores, save_scores


def world(n_train=40, n_query=16, seed=0):
    rng = np.random.default_rng(seed)
    groups = np.array(["a", "b"])
    train = pd.DataFrame(
        {
            "uid": [f"t{i:03d}" for i in range(n_train)],
            "group": groups[np.arange(n_train) % 2],
            "label": (np.arange(n_train) // 2) % 2,
        }
    )
    train["cell"] = train["group"] + "|" + train["label"].astype(str)
    query = pd.DataFrame(
        {
            "uid": [f"q{i:03d}" for i in range(n_query)],
            "group": groups[np.arange(n_query) % 2],
            "label": (np.arange(n_query) // 2) % 2,
        }
    )
    query["cell"] = query["group"] + "|" + query["label"].astype(str)
    scores = rng.normal(size=(n_train, n_query))
    loss = rng.uniform(0.1, 2.0, size=n_query)
    return train, query, scores, loss


def test_alignment_is_the_loss_weighted_mean_over_cells():
    scores = np.array([[1.0, 3.0, -2.0, 0.0], [0.0, 0.0, 4.0, 2.0]])
    cells = ["x", "x", "y", "y"]
    loss = [1.0, 3.0, 0.5, 0.5]  # L_x = 2, L_y = 0.5
    values, table = al.alignment_scores(scores, cells, loss, ["x", "y"])
    # example 0: (2 * mean(1, 3) + 0.5 * mean(-2, 0)) / 2 = (4 - 0.5) / 2
    assert values == pytest.approx([1.75, 0.75])
    assert table.set_index("group")["loss"].to_dict() == {"x": 2.0, "y": 0.5}


def test_alignment_is_invariant_to_score_scale_and_query_order():
    train, query, scores, loss = world()
    base, _ = al.align(scores, train, query, loss)
    scaled, _ = al.align(scores * 7.5, train, query, loss)
    assert np.allclose(scaled["A"], 7.5 * base["A"])
    assert al.select_lowest(scaled, 10) == al.select_lowest(base, 10)
    assert al.select_heuristic(scaled) == al.select_heuristic(base)
    perm = np.random.default_rng(1).permutation(len(query))
    permuted, _ = al.align(scores[:, perm], train, query.iloc[perm].reset_index(drop=True), loss[perm])
    assert np.allclose(permuted["A"], base["A"])
    assert permuted["rank"].tolist() == base["rank"].tolist()


def test_alignment_raises_on_an_empty_cell_or_nan():
    train, query, scores, loss = world()
    keep = query["cell"] != "b|1"
    with pytest.raises(al.AlignmentError, match=r"b\|1.*no query examples"):
        al.align(scores[:, keep.to_numpy()], train, query[keep], loss[keep.to_numpy()])
    bad = scores.copy()
    bad[3, 2] = np.nan
    with pytest.raises(al.AlignmentError, match="NaN"):
        al.align(bad, train, query, loss)
    with pytest.raises(al.AlignmentError, match="NaN"):
        al.align(scores, train, query, np.where(np.arange(len(loss)) == 0, np.nan, loss))
    with pytest.raises(al.AlignmentError, match="shapes"):
        al.align(scores[:, :-1], train, query, loss)


def test_group_only_alignment_cancels_a_label_specific_signal():
    """The thesis's group-only variant: a training example that helps a group's label-1
    queries and hurts its label-0 queries equally looks neutral by group, not by cell."""
    train, query, _, _ = world()
    scores = np.zeros((len(train), len(query)))
    target = query["group"].eq("a").to_numpy()
    scores[0, target & query["label"].eq(1).to_numpy()] = 1.0
    scores[0, target & query["label"].eq(0).to_numpy()] = -1.0
    loss = np.where(query["cell"] == "a|0", 2.0, 0.5)
    table, _ = al.align(scores, train, query, loss)
    assert table.loc[0, "A_cell"] < 0
    assert table.loc[0, "A_group"] == pytest.approx(0.0)
    assert table.loc[0, "rank"] == 0  # cell grouping ranks it most harmful


def test_removal_sets_are_deterministic_nested_and_seeded():
    train, query, scores, loss = world()
    table, _ = al.align(scores, train, query, loss)
    assert al.select_lowest(table, 7) == al.select_lowest(table.sample(frac=1, random_state=3), 7)
    assert al.select_lowest(table, 7) == al.select_lowest(table, 12)[:7]
    uids = train["uid"]
    assert al.select_random(uids, 9, seed=4) == al.select_random(uids[::-1], 9, seed=4)
    assert al.select_random(uids, 5, seed=4) == al.select_random(uids, 9, seed=4)[:5]  # nested across k
    assert al.select_random(uids, 9, seed=4) != al.select_random(uids, 9, seed=5)  # drawn per seed
    balanced = al.select_balanced(train, seed=2)
    assert balanced == al.select_balanced(train, seed=2)
    assert al.select_balanced(train, seed=2) == sorted(balanced)
    heuristic = al.select_heuristic(table)
    assert set(heuristic) == set(table.loc[table["A"] < 0, "uid"])


def test_balancing_leaves_every_cell_at_the_smallest_size():
    train, *_ = world()
    train = train[~train["uid"].isin(train[train["cell"] == "a|0"]["uid"].iloc[:4])]
    removed = al.select_balanced(train, seed=0)
    kept = train[~train["uid"].isin(removed)]
    assert kept.groupby("cell").size().nunique() == 1
    assert kept.groupby("cell").size().iloc[0] == train.groupby("cell").size().min()


def test_k_is_checked_against_the_training_set_before_any_training():
    train, query, scores, loss = world()
    table, _ = al.align(scores, train, query, loss)
    assert al.resolve_k(0.25, "fraction", 40) == 10
    assert removal_set("lowest", train, 0, k=0.25, alignment=table)[1] == 10
    with pytest.raises(ValueError, match="training set has only 40"):
        removal_set("random", train, 0, k=40, unit="count")
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        removal_set("lowest", train, 0, k=1.5, unit="fraction", alignment=table)
    with pytest.raises(ValueError, match="needs an alignment"):
        removal_set("heuristic", train, 0)


def test_an_alignment_of_other_data_is_refused(tmp_path):
    train, query, scores, loss = world()
    table, _ = al.align(scores, train, query, loss)
    table.iloc[:-1].to_parquet(tmp_path / "short.parquet")
    with pytest.raises(ValueError, match="do not match the training split"):
        read_alignment(tmp_path / "short.parquet", train)


def test_scores_round_trip_and_reorder_by_uid(tmp_path):
    train, query, scores, _ = world()
    save_scores(tmp_path / "s.npy", tmp_path / "u.json", scores, train["uid"], query["uid"])
    loaded, rows, _ = load_scores(tmp_path / "s.npy", tmp_path / "u.json")
    assert rows == train["uid"].tolist()
    assert loaded.dtype == np.float32 and loaded.shape == (40, 16)
    assert np.allclose(loaded, scores, atol=1e-6)
    order = list(reversed(query["uid"]))
    reordered, _, cols = load_scores(tmp_path / "s.npy", tmp_path / "u.json", train["uid"], order)
    assert cols == order and np.allclose(reordered, scores[:, ::-1], atol=1e-6)


def test_scores_that_do_not_fit_the_data_are_refused(tmp_path):
    train, query, scores, _ = world(n_train=16, n_query=16)
    with pytest.raises(ScoreError, match="expected"):
        save_scores(tmp_path / "s.npy", tmp_path / "u.json", scores.T[:, :-1], train["uid"], query["uid"])
    with pytest.raises(ScoreError, match="non-finite"):
        save_scores(tmp_path / "s.npy", tmp_path / "u.json", scores * np.nan, train["uid"], query["uid"])
    save_scores(tmp_path / "s.npy", tmp_path / "u.json", scores, train["uid"], query["uid"])
    # square matrix: a transposed use (train uids as queries) must not load silently
    with pytest.raises(ScoreError, match="do not match"):
        load_scores(tmp_path / "s.npy", tmp_path / "u.json", query["uid"], train["uid"])
    with pytest.raises(ScoreError, match="do not match"):
        load_scores(tmp_path / "s.npy", tmp_path / "u.json", [*train["uid"][:-1], "other"])
