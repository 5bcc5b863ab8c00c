"""Study d3m through Snakemake: the tiny config end to end (shared tiny_run fixture), and
what a change of the k grid reruns."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml

from tests.conftest import snakemake
from tests.test_workflow import planned_jobs

pytestmark = pytest.mark.workflow

ROOT = "results/d3m/synth"


def manifest(path):
    return json.loads(path.read_text())


def test_world_has_uids_cells_and_per_cell_counts(tiny_run):
    work, _ = tiny_run
    world = pd.read_parquet(work / ROOT / "data.parquet")
    assert list(world.columns) == ["uid", "text", "label", "group", "cell", "split", "mislabeled"]
    assert world["uid"].is_unique and set(world["split"]) == {"train", "val", "test"}
    counts = manifest(work / ROOT / "manifest.json")["results"]["cell_counts"]
    assert counts["train"]["a|1"] == 60 and counts["train"]["a|0"] == 6
    assert counts["train"] == world[world["split"] == "train"].groupby("cell").size().to_dict()


def test_scores_are_train_by_query_with_uids_a_recorded_projector_and_label_structure(tiny_run):
    """Both attributions are (train × query) matrices keyed by uid, and they carry signal: for
    every query, training examples of its own label help it more on average than those of
    the other label (fails on shuffled uids, noise, or a constant classifier)."""
    work, _ = tiny_run
    world = pd.read_parquet(work / ROOT / "data.parquet")
    train = sorted(world.loc[world["split"] == "train", "uid"])
    query = sorted(world.loc[world["split"] == "val", "uid"])
    label = world.set_index("uid")["label"]
    for method in ("trak", "if"):
        folder = work / ROOT / "scores" / method
        scores = np.load(folder / "scores.npy")
        uids = json.loads((folder / "uids.json").read_text())
        assert scores.shape == (len(train), len(query))
        assert uids == {"train": train, "query": query}
        assert np.isfinite(scores).all() and scores.std() > 0
        same = label.loc[train].to_numpy()[:, None] == label.loc[query].to_numpy()[None, :]
        own = np.nanmean(np.where(same, scores, np.nan), axis=0)
        other = np.nanmean(np.where(~same, scores, np.nan), axis=0)
        assert (own > other).mean() >= 0.9, f"{method}: own-label help > other-label in {(own > other).mean():.0%}"
        assert not (folder / ".scratch").exists()  # each job's own store, removed afterwards
    trak = manifest(work / ROOT / "scores/trak/manifest.json")["results"]
    assert trak["projector"] == "BasicProjector" and trak["dtype"] == "float32"
    assert trak["checkpoints"] == 2  # the epoch-1 and epoch-2 snapshots of the base model
    influence = manifest(work / ROOT / "scores/if/manifest.json")["results"]
    assert len(influence["tracked_modules"]) > 1


def test_runs_record_their_removal_and_metrics(tiny_run):
    work, _ = tiny_run
    n_train = 60 + 6 + 6 * 40
    base = work / ROOT / "base/seed0/model"
    assert (base / "model.safetensors").is_file() and (base / "epoch-1").is_dir() and (base / "epoch-2").is_dir()
    for method in ("if", "trak", "random"):
        removed = (work / ROOT / f"cf/{method}/k0.1/seed0/removed.txt").read_text().split()
        assert len(removed) == round(0.1 * n_train) and len(set(removed)) == len(removed)
        metrics = manifest(work / ROOT / f"cf/{method}/k0.1/seed0/metrics.json")
        assert metrics["run"]["n_train"] == n_train - len(removed)
        assert {"wga_cell", "wga_group", "balanced_accuracy", "auc", "ce", "ci"} <= set(metrics["splits"]["test"])
    balance = manifest(work / ROOT / "cf/balance/seed0/metrics.json")["run"]
    assert balance["n_train"] == 8 * 6  # every cell down to the smallest (a|0 = 6)
    align = pd.read_parquet(work / ROOT / "align/if.parquet")
    heuristic = (work / ROOT / "cf/heuristic-if/seed0/removed.txt").read_text().split()
    assert set(heuristic) == set(align.loc[align["A"] < 0, "uid"])
    assert not list((work / ROOT).rglob(".scratch"))


def test_the_tiny_recipe_trains_classifiers_that_predict_both_classes(tiny_run):
    """A constant classifier (WGA 0, every gradient alike) would make every D3M check of
    the tiny config meaningless: base and retrained models predict both labels."""
    work, _ = tiny_run
    for run in ("base/seed0", "cf/if/k0.1/seed0", "cf/random/k0.1/seed0", "cf/balance/seed0"):
        preds = pd.read_parquet(work / ROOT / run / "preds.parquet")
        test = preds[preds["split"] == "test"]
        assert test["pred"].nunique() == 2, f"{run} predicts only {sorted(test['pred'].unique())}"


def test_summary_selection_and_figures(tiny_run):
    work, _ = tiny_run
    summary = pd.read_csv(work / ROOT / "summary.csv", dtype={"k": str})
    assert set(summary["method"]) == {"base", "if", "trak", "random", "balance", "heuristic-if"}
    selection = json.loads((work / ROOT / "selection.json").read_text())
    assert set(selection["methods"]) == {"if", "trak", "random"}
    assert selection["methods"]["if"]["k"] == "0.1" and "vs_random_same_k" in selection["methods"]["if"]
    assert set(selection["baselines"]) == {"base", "balance", "heuristic-if"}
    for figure in ("wga_vs_k", "accuracy_vs_k", "score_heatmap", "alignment_cells", "top_harmful", "alignment_scatter"):
        assert "<svg" in (work / ROOT / "plots" / f"{figure}.svg").read_text()
        assert (work / ROOT / "plots" / f"{figure}.csv").stat().st_size > 0
    report = (work / "results/report.html").read_text(errors="replace")
    assert "wga_vs_k.svg" in report and "alignment_scatter.svg" in report


def test_a_new_k_reruns_only_its_retrainings(tiny_run):
    work, env = tiny_run
    cfg = yaml.safe_load((work / "tests/config/tiny.yaml").read_text())
    cfg["studies"]["d3m"]["removal"]["k"] = [0.1, 0.2]
    (work / "more_k.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(work, "-n", "--cores", "2", "--configfile", "more_k.yaml", "--replace-workflow-config", env=env)
    jobs = planned_jobs(proc.stdout)
    assert sorted(j for j in jobs if j[0] == "retrain_d3m") == [
        ("retrain_d3m", f"world=synth, method={m}, k=0.2, seed=0") for m in ("if", "random", "trak")
    ]
    assert {rule for rule, _ in jobs} == {"retrain_d3m", "aggregate_d3m", "plot_d3m_counterfactual", "all"}


def test_a_world_trak_override_reruns_only_that_worlds_trak_scores(tiny_run):
    """worlds.<world>.trak reaches score_d3m_trak's params only: neither the data nor the
    base models nor the influence scores are redone."""
    work, env = tiny_run
    cfg = yaml.safe_load((work / "tests/config/tiny.yaml").read_text())
    cfg["studies"]["d3m"]["worlds"]["synth"]["trak"] = {"proj_dim": 32}
    (work / "world_trak.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(
        work, "-n", "--cores", "2", "--configfile", "world_trak.yaml", "--replace-workflow-config", env=env
    )
    jobs = planned_jobs(proc.stdout)
    assert ("score_d3m_trak", "world=synth, method=trak") in jobs
    assert not {rule for rule, _ in jobs} & {"prepare_d3m_world", "finetune_d3m_base", "score_d3m_if"}
    assert ("align_d3m", "world=synth, method=if") not in jobs
