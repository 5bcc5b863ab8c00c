"""tinystories through Snakemake: the tiny config end to end (shared ``tiny_run``), bad
configs that fail before any job naming the key, and targeted reruns."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from tests.conftest import copy_workflow, snakemake
from tests.test_workflow import planned_jobs

pytestmark = pytest.mark.workflow

ROOT = "results/tinystories"


def test_tiny_run_delivers_every_stage(tiny_run):
    work, _ = tiny_run
    root = work / ROOT
    manifest = json.loads((root / "corpus/manifest.json").read_text())
    assert manifest["n_shards"] == 3 and manifest["records"] == 900
    assert set(manifest["features"]) == {"Dialogue", "Conflict", "Twist", "Foreshadowing", "MoralValue", "BadEnding"}
    assert json.loads((root / "vocab/meta.json").read_text())["vocab_size"] == 512
    metas = {p.parent.name: json.loads(p.read_text()) for p in root.glob("tokens/*/meta.json")}
    assert set(metas) == {
        "F_none_MM_none_AT_none_RF_none_IS_none",
        "F_features_x_Twist_MM_none_AT_none_RF_none_IS_none",
        "F_features_x_Twist_MM_none_AT_features_Twist_1.0_RF_none_IS_none",
        "F_features_Twist_MM_none_AT_none_RF_none_IS_none",
    }
    for meta in metas.values():
        assert meta["totals"]["bos"] == meta["totals"]["rendered"] > 0
    # every model loads through the foundation's loader
    import biasdrift.tinystories.architectures as arch
    from biasdrift.models import load_model

    for model_dir in [
        root / "pretrain/all/model",
        root / "delete/f-at/lr0.001/seed0/model",
        root / "recover/control/seed0/step3/model",
        root / "recover/f-at-lr0.001/seed0/step6/model",
    ]:
        model = load_model({"alias": "m", "source": "path", "path": str(model_dir)})
        assert isinstance(model, arch.Llama2cForCausalLM) and model.config.dim == 32
    assert not list(root.rglob(".scratch"))
    results = pd.read_csv(root / "summary/results.csv")
    assert set(results.run) == {"pretrain/all", "pretrain/control", "delete/f-at/lr0.001/seed0"}
    recovery = pd.read_csv(root / "summary/recovery.csv")
    assert sorted(set(recovery.step)) == [0, 3, 6] and set(recovery.source) == {"control", "f-at-lr0.001"}
    checks = json.loads((root / "summary/checks.json").read_text())
    assert {"base", "deletion", "recovery", "probes", "detector"} <= set(checks)
    # no judge in the tiny config: the marker rules decide and the agreement table is empty
    assert checks["detector"]["kind"] == "markers" and set(results.detector) == {"markers"}
    agreement = pd.read_csv(root / "summary/agreement.csv")
    assert agreement.empty and {"feature", "marker_rate", "judge_rate", "agreement", "kappa"} <= set(agreement)
    for name in ("recovery", "probes", "deletion_grid"):
        assert "<svg" in (root / f"plots/{name}.svg").read_text()
        assert len(pd.read_csv(root / f"plots/{name}.csv")) > 0
    report = (work / "results/report.html").read_text(errors="replace")
    assert "deletion_grid.svg" in report and "recovery.svg" in report
    generations = (root / "delete/f-at/lr0.001/seed0/generations.jsonl").read_text().splitlines()
    assert len(generations) == 7 * 4 and {"prompt", "story", "detected"} <= set(json.loads(generations[0]))


def _tiny_config(work):
    return yaml.safe_load((work / "tests/config/tiny.yaml").read_text())


def _schema_typos(s):
    s["recovery"]["stepz"] = [0, 3]
    s["model"]["preset"] = "base92M"
    s["feature"] = "Plot"


def _bad_references(s):
    s["datasets"]["filter"] = {"filtering": "features!=twist"}
    s["deletion"]["protocols"]["f-at"] = "filter-advv"


def _bad_overrides(s):
    s["model"]["overrides"].update(n_layer=2, dim="wide")


def _window_too_long(s):
    s["block_size"] = 512


@pytest.mark.parametrize(
    "edit,messages",
    [
        (
            _schema_typos,
            [
                "studies.tinystories.recovery.stepz: unknown key",
                "studies.tinystories.model.preset: 'base92M' is not one of",
                "studies.tinystories.feature: 'Plot' is not one of",
            ],
        ),
        (
            _bad_references,
            [
                "studies.tinystories.datasets.filter: filtering: unknown feature 'twist' in 'features!=twist' "
                "(feature names are case-sensitive: did you mean 'Twist'?)",
                "studies.tinystories.deletion.protocols.f-at: unknown dataset 'filter-advv'",
            ],
        ),
        (
            _bad_overrides,
            [
                "studies.tinystories.model.overrides.n_layer: unknown key (did you mean 'n_layers'?)",
                "studies.tinystories.model.overrides.dim: 'wide' is not of type 'integer'",
            ],
        ),
        (
            _window_too_long,
            [
                "studies.tinystories.block_size: 512 exceeds the model's max_seq_len=256 "
                "(studies.tinystories.model.overrides.max_seq_len)"
            ],
        ),
    ],
    ids=["schema", "references", "overrides", "context"],
)
def test_bad_config_fails_before_any_job_naming_every_key(tmp_path, edit, messages):
    work = copy_workflow(tmp_path / "bad")
    cfg = _tiny_config(work)
    edit(cfg["studies"]["tinystories"])
    (work / "bad.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(work, "-n", "--configfile", "bad.yaml", "--replace-workflow-config", check=False)
    assert proc.returncode != 0
    for message in messages:
        assert message in proc.stdout + proc.stderr
    assert not (work / "results").exists()


def test_changing_the_recovery_learning_rate_reruns_only_recovery(tiny_run):
    work, env = tiny_run
    cfg = _tiny_config(work)
    cfg["studies"]["tinystories"]["recovery"]["train"]["learning_rate"] = 5.0e-4
    (work / "changed-ts.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(
        work, "-n", "--cores", "2", "--configfile", "changed-ts.yaml", "--replace-workflow-config", env=env
    )
    rules = sorted({rule for rule, _ in planned_jobs(proc.stdout)})
    assert rules == ["all", "evaluate_recovery", "plot_tinystories", "recover_feature", "summarize_tinystories"]
