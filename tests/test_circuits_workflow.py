"""Study circuits end to end in the tiny config (the shared tiny_run), and targets that
must fail before any model runs."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
import yaml
from transformers import AutoConfig

from biasdrift.circuits.circuit import parse_top_edges, read_scores
from biasdrift.circuits.graph import Graph
from tests.conftest import TINY, copy_workflow, snakemake

pytestmark = pytest.mark.workflow

ROOT = "results/circuits"
MODELS = ("circuits-gpt2", "circuits-llama")
RUNS = ("demographic_dss1_c1_m2", "demographic_dss2_c1_m2", "gender_gss1_c1_g2", "gender_gss2_c1_g2")


def test_tiny_circuits_edge_scores_and_circuits(tiny_run):
    work, _ = tiny_run
    for model in MODELS:
        config = AutoConfig.from_pretrained(work / "results/models" / model / "model")
        n_edges = Graph.from_config(config).n_edges
        for run in RUNS:
            base = work / ROOT / model / "base/eap" / run
            table, meta = read_scores(base / "edge_scores.parquet")
            assert len(table) == n_edges and table.edge.is_unique and np.isfinite(table.score).all()
            assert (meta["n_layers"], meta["n_heads"]) == (2, config.num_attention_heads)
            top = (base / "top_edges.txt").read_text()
            assert len(top.splitlines()) == 12 and set(parse_top_edges(top)) <= set(table.edge)
            result = json.loads((base / "results.json").read_text())
            assert result["full_graph"] == pytest.approx(result["baseline"], abs=1e-5)
            assert "Graph Baseline Score:" in (base / "results.txt").read_text()
            circuit = json.loads((base / "circuit.json").read_text())
            assert 0 < len(circuit["edges"]) <= 10
        if config.model_type == "llama":
            assert meta["n_kv_heads"] == 2 and config.num_attention_heads == 4  # GQA mapped, not trimmed


def test_tiny_circuits_splits_and_bias_summary(tiny_run):
    work, _ = tiny_run
    for model in MODELS:
        for bias, template, splits in (("demographic", "dss1", ("pos", "neg")), ("gender", "gss2", ("mb", "fb"))):
            prompts = pd.read_csv(work / ROOT / f"prompts/{bias}_{template}_c1.csv")
            sizes = [len(pd.read_csv(work / ROOT / f"{model}/splits/{bias}_{template}_c1_{s}.csv")) for s in splits]
            assert sum(sizes) == len(prompts) == 16
            stats = pd.read_csv(work / ROOT / f"{model}/splits/{bias}_{template}_c1_stats.csv")
            assert len(stats) == 16 and "[" not in "".join(stats.sentence)
    summary = pd.read_csv(work / ROOT / "bias_summary.csv")
    assert {"base", "positive", "unrelated"} == set(summary.ft)
    assert {"split", "planted"} == set(summary.grouping) and (summary.lo <= summary["mean"]).all()


def test_tiny_circuits_comparisons_stability_and_ablation(tiny_run):
    work, _ = tiny_run
    for model in MODELS:
        for ft in ("positive", "unrelated"):
            text = (work / ROOT / f"{model}/{ft}/compare/demographic_dss1_c1_m2_finetuned_comparison.txt").read_text()
            assert f"Fine-tune: {ft}" in text and re.search(r"Overlap: \d+\.\d\d%", text)
            assert "Edges only in Pretrained Model:" in text and "Common Edges:" in text
            assert (work / ROOT / f"{model}/{ft}/model/model.safetensors").is_file()
        stability = work / ROOT / model / "stability"
        matrix = pd.read_csv(stability / "overlap_matrix.csv", index_col="run")
        assert len(matrix) == 4 and np.allclose(matrix.to_numpy(), matrix.to_numpy().T)
        assert "DSS1_vs_DSS2" in (stability / "grammatical_stability.txt").read_text()
        assert "C1_DSS1_M2_vs_GSS1_G2" in (stability / "bias_type_stability.txt").read_text()
        layers = pd.read_csv(stability / "layerwise.csv")
        assert (layers.groupby("run").edges.sum() == 10).all() and layers.layer.max() == 2
        ablation = pd.read_csv(work / ROOT / model / "base/eap/demographic_dss1_c1_m2/ablation.csv")
        assert ablation.edges_removed.tolist() == [0, 5, 20]
        assert ablation.score.iloc[0] == pytest.approx(ablation.full_graph.iloc[0], abs=1e-6)
        sizes = pd.read_csv(work / ROOT / model / "base/eap/demographic_dss1_c1_m2/faithfulness.csv")
        assert sizes.edges.tolist() == [5, 20] and (sizes.circuit_edges <= sizes.edges).all()
        task = json.loads((work / ROOT / model / "base/tasks/example/results.json").read_text())
        assert task["meta"]["metric"] == "logit_diff" and task["meta"]["examples"] == 16
        assert task["full_graph"] == pytest.approx(task["baseline"], abs=1e-5)
        assert pd.read_csv(work / ROOT / model / "base/tasks/example/faithfulness.csv").edges.tolist() == [5, 20]
        run = work / ROOT / model / "base/eap/demographic_dss1_c1_m2"
        check = json.loads((run / "exact_check.json").read_text())
        exact = pd.read_csv(run / "exact_check.csv")
        scores = pd.read_parquet(run / "edge_scores.parquet")
        # the check compares the saved EAP scores of every edge with exact patching, and
        # EAP ranks the edges as exact single-edge patching does (Spearman, not Pearson:
        # one outlying edge dominates Pearson on these tiny models)
        assert check["enabled"] and check["edges"] == len(exact) == len(scores)
        merged = exact.merge(scores[["edge", "score"]], on="edge", validate="one_to_one")
        np.testing.assert_allclose(merged.eap, merged.score, rtol=1e-6)
        assert exact.exact.std() > 0
        assert check["spearman"] == pytest.approx(exact.eap.rank().corr(exact.exact.rank()), abs=1e-9)
        assert check["spearman"] >= 0.6, check
    report = (work / "results/report.html").read_text(errors="replace")
    for figure in (
        "bias_shift.svg",
        "comparisons.svg",
        "stability_circuits-gpt2.svg",
        "ablation.svg",
        "exact_check.svg",
    ):
        assert figure in report


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    return copy_workflow(tmp_path_factory.mktemp("circuits-bad"))


@pytest.mark.parametrize(
    ("target", "named"),
    [
        (f"{ROOT}/circuits-gpt2/base/eap/demographic_gss1_c1_m2/edge_scores.parquet", "GSS1 is a gender template"),
        (f"{ROOT}/circuits-gpt2/shakespear/eap/demographic_dss1_c1_m2/edge_scores.parquet", "unknown fine-tune"),
    ],
)
def test_bad_targets_fail_before_any_job(fresh, target, named):
    proc = snakemake(fresh, *TINY, "-n", "--cores", "1", target, check=False)
    assert proc.returncode != 0 and named in proc.stdout + proc.stderr
    assert not (fresh / "results").exists()


def test_non_causal_model_in_the_study_fails_at_parse_time(fresh):
    cfg = yaml.safe_load((fresh / "tests/config/tiny.yaml").read_text())
    cfg["studies"]["circuits"]["models"] = ["circuits-gpt2", "tiny-bert"]
    (fresh / "bad.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(fresh, "-n", "--configfile", "bad.yaml", "--replace-workflow-config", check=False)
    assert (
        proc.returncode != 0 and "studies.circuits.models[1]: 'tiny-bert' is a bert model" in proc.stderr + proc.stdout
    )
