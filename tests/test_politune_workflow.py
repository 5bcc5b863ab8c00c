"""Study politune through Snakemake: the tiny end-to-end run (shared fixture tiny_run),
the paper tier's plan with user-supplied statements, mixes and merges in the plan, and
bad preference data failing before any training."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from tests.conftest import copy_workflow, snakemake
from tests.test_workflow import planned_jobs

pytestmark = pytest.mark.workflow

ROOT = "results/politune"
RUNS = [(side, method) for side in ("left", "right") for method in ("dpo", "sft")]


def test_tiny_run_trains_evaluates_and_summarises(tiny_run):
    work, _ = tiny_run
    root = work / ROOT
    for side, method in RUNS:
        run = root / "politune-llama" / side / method
        for sub in ("final", "step-4"):
            adapter = run / "adapters" / sub
            assert (adapter / "adapter_model.safetensors").is_file()
            meta = json.loads((adapter / "politune_adapter.json").read_text())
            assert meta["base"]["alias"] == "politune-llama" and meta["method"] == method
        metrics = json.loads((run / "train_metrics.json").read_text())
        assert metrics["global_step"] == 8 and not (run / ".scratch").exists()
        if method == "dpo":
            first = next(h for h in metrics["log_history"] if "loss" in h)
            assert "rewards/margins" in first
        for state in ("step4", "stepfinal"):
            prefs = pd.read_parquet(run / state / "preferences.parquet")
            assert set(prefs["side"]) == {side} and prefs["margin"].notna().all()
    base = pd.read_parquet(root / "politune-llama" / "base" / "preferences.parquet")
    assert set(base["side"]) == {"left", "right"} and base["margin"].isna().all()
    statements = pd.read_parquet(root / "politune-llama" / "base" / "statements.parquet")
    shipped = pd.read_csv(work / "resources/politune/statements.tsv", sep="\t")
    assert len(statements) == len(shipped) and statements["parse_method"].eq("logprob").all()

    summary = json.loads((root / "summary.json").read_text())
    assert summary["selection"]["rule"] == "best_heldout_pref_acc" and summary["judge"] == "lexicon"
    runs = summary["models"]["politune-llama"]["runs"]
    assert set(runs) == {f"{s}/{m}" for s, m in RUNS}
    for name, result in runs.items():
        assert result["selected_state"].startswith(name + "/step")
        assert {c["check"] for c in result["checks"]} == {
            f"economic shift towards {result['lean']}",
            f"social shift towards {result['lean']}",
            "held-out preference accuracy above chance",
        }
    assert isinstance(summary["all_checks_passed"], bool)
    scores = pd.read_csv(root / "scores.csv")
    assert set(scores["state"]) == {"base"} | {f"{s}/{m}/step{n}" for s, m in RUNS for n in ("4", "final")}
    assert scores.loc[scores["state"] != "base", "shift"].notna().all()
    judged = pd.read_csv(root / "judge.csv")
    assert judged["judge_mean"].dropna().between(0, 20).all() and len(judged) == 9
    for plot in ("axes", "trajectory", "items", "preference", "judge"):
        assert "<svg" in (root / "plots" / f"{plot}.svg").read_text()
        assert (root / "plots" / f"{plot}.csv").stat().st_size > 0
    report = (work / "results" / "report.html").read_text(errors="replace")
    assert "trajectory.svg" in report and "judge.svg" in report


PC_STATEMENTS = "resources/downloads/politune/pc_statements.tsv"  # where config/paper/politune.yaml looks


def test_paper_tier_plans_every_run_with_user_statements(repo, tmp_path):
    work = copy_workflow(tmp_path / "paper")
    statements = work / PC_STATEMENTS
    statements.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "id": ["s1", "s2"],
            "text": ["Taxes are good.", "Taxes are bad."],
            "axis": ["economic"] * 2,
            "direction": ["left", "right"],
            **{f"w{k}": [-w, w] for k, w in enumerate((-2.0, -1.0, 1.0, 2.0))},
        }
    ).to_csv(statements, sep="\t", index=False)
    config = yaml.safe_load((repo / "config" / "paper" / "politune.yaml").read_text())
    assert config["datasets"]["pc-statements"] == {"path": PC_STATEMENTS}
    assert config["studies"]["politune"]["probe"]["statements"] == "pc-statements"
    proc = snakemake(
        work, "-n", "--cores", "1", "--configfile", "config/paper/politune.yaml", "--replace-workflow-config"
    )
    jobs = planned_jobs(proc.stdout)
    trained = {wc for rule, wc in jobs if rule == "train_politune"}
    assert len(trained) == 8
    assert "model=llama3-8b-instruct, side=left, method=dpo" in trained
    assert "model=mistral-7b-instruct, side=right, method=sft" in trained
    assert ("prepare_dataset", "dataset=pc-statements") in jobs
    assert ("judge_answers", "model=llama3-8b-instruct") in jobs
    assert ("download_model", "model=qwen25-7b-instruct") in jobs
    assert ("plot_politune_compass", "") in jobs


def test_paper_tier_without_the_statements_fails_the_dry_run_naming_the_file(tmp_path):
    work = copy_workflow(tmp_path / "nostatements")
    (work / PC_STATEMENTS).unlink(missing_ok=True)  # a checkout where the user has not written it
    proc = snakemake(
        work,
        "-n",
        "--cores",
        "1",
        "--configfile",
        "config/paper/politune.yaml",
        "--replace-workflow-config",
        check=False,
    )
    assert proc.returncode != 0
    message = proc.stdout + proc.stderr
    assert f"studies.politune.probe.statements: the statements file {PC_STATEMENTS}" in message
    assert "columns id, text, axis (economic | social), direction" in message
    assert "Political Compass statements (paper tier)" in message
    assert "rule " not in proc.stdout and not (work / "results").exists(), "no job may be planned"


def test_mixes_and_merges_are_planned(tmp_path):
    work = copy_workflow(tmp_path / "mix")
    config = yaml.safe_load((work / "tests/config/tiny.yaml").read_text())
    study = config["studies"]["politune"]
    study["sides"]["mix-75l25r"] = {"mix": {"left": 0.75, "right": 0.25}}
    study["merge"] = True
    (work / "mix.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(work, "-n", "--cores", "1", "--configfile", "mix.yaml", "--replace-workflow-config")
    jobs = planned_jobs(proc.stdout)
    assert ("prepare_pairs", "side=mix-75l25r") in jobs
    assert ("merge_adapter", "model=politune-llama, side=mix-75l25r, method=dpo") in jobs
    assert sum(rule == "merge_adapter" for rule, _ in jobs) == 6


def test_bad_pairs_fail_naming_file_and_column_before_training(tmp_path):
    work = copy_workflow(tmp_path / "bad")
    bad = work / "bad_pairs.csv"
    pd.DataFrame({"prompt": ["Why?"], "chosen": ["Because."]}).to_csv(bad, index=False)
    config = yaml.safe_load((work / "tests/config/tiny.yaml").read_text())
    config["datasets"]["politune-left"] = {"path": "bad_pairs.csv"}
    (work / "bad.yaml").write_text(yaml.safe_dump(config))
    target = f"{ROOT}/data/left.parquet"  # what train_politune reads: it never starts
    proc = snakemake(work, "--cores", "1", "--configfile", "bad.yaml", "--replace-workflow-config", target, check=False)
    assert proc.returncode != 0
    log = (work / "logs/politune/data/left/prepare_pairs.log").read_text()
    assert "politune-left/data.parquet (dataset politune-left): missing column(s) ['rejected']" in log
    assert not (work / "logs/politune/politune-llama").exists(), "no training may start"
    assert not (work / ROOT / "data" / "left.parquet").exists()
