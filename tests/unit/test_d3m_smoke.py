"""Smoke fixtures of study d3m: the hub formats (columns, dtypes, nesting, split names) the
preparers read, and the smoke config's sizes (proj_dim below each world's training rows)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml

from biasdrift import config as bdc
from biasdrift.d3m import workflow as wf
from biasdrift.d3m.data import prepare_world
from biasdrift.smoke.fixtures import build_dataset_fixture, dataset_fixtures

REPO = Path(__file__).resolve().parents[2]
SMOKE = yaml.safe_load((REPO / "config/smoke/d3m.yaml").read_text())
TOXIGEN_TRAIN = ["prompt", "generation", "generation_method", "group", "prompt_label", "roberta_prediction"]
TOXIGEN_ANNOTATED = ["text", "target_group", "factual?", "ingroup_effect", "lewd", "framing", "predicted_group"]
TOXIGEN_ANNOTATED += ["stereotyping", "intent", "toxicity_ai", "toxicity_human", "predicted_author", "actual_method"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("d3m-smoke")
    out = {}
    for name in ("toxigen-train.parquet", "toxigen-annotated.parquet", "hatexplain.parquet"):
        build_dataset_fixture(name, folder / name)
        out[name] = pd.read_parquet(folder / name)
    return out


def test_every_smoke_dataset_alias_has_a_registered_fixture():
    fixtures = dataset_fixtures()
    for alias, spec in SMOKE["datasets"].items():
        name = Path(spec["path"]).name
        assert name in fixtures, alias
    assert fixtures["hatexplain.parquet"].hub_id == "Hate-speech-CNERG/hatexplain"


def test_toxigen_fixtures_have_the_hub_columns_and_splits(built):
    train, annotated = built["toxigen-train.parquet"], built["toxigen-annotated.parquet"]
    assert list(train.columns) == [*TOXIGEN_TRAIN, "split"] and set(train["split"]) == {"train"}
    assert train["prompt_label"].dtype == "int64" and train["roberta_prediction"].dtype == "float64"
    assert set(train["generation_method"]) == {"ALICE", "top-k"}
    assert list(annotated.columns) == [*TOXIGEN_ANNOTATED, "split"] and set(annotated["split"]) == {"train", "test"}
    assert annotated["toxicity_human"].between(1, 5).all()
    assert set(train["group"]) == set(annotated["target_group"])


def test_hatexplain_fixture_is_the_parquet_conversion(built):
    frame = built["hatexplain.parquet"]
    assert list(frame.columns) == ["id", "annotators", "rationales", "post_tokens", "split"]
    assert set(frame["split"]) == {"train", "validation", "test"}
    first = frame.iloc[0]
    assert set(first["annotators"]) == {"label", "annotator_id", "target"}
    assert len(first["annotators"]["label"]) == len(first["annotators"]["target"]) == 3
    assert all(len(r) == len(first["post_tokens"]) for r in first["rationales"])


def test_smoke_worlds_prepare_with_the_smoke_sizes(built):
    """The smoke config's preparation runs on the fixtures, and its TRAK proj_dim stays
    below every world's training rows (the check the scoring job makes)."""
    cfg = bdc.validate_config(SMOKE, bdc.load_schema(REPO / "config" / "schema.yaml"))
    worlds = cfg["studies"]["d3m"]["worlds"]
    frames = {
        "toxigen": {"dataset": built["toxigen-train.parquet"], "test_dataset": built["toxigen-annotated.parquet"]},
        "hatexplain": {"dataset": built["hatexplain.parquet"]},
    }
    for name, world in worlds.items():
        table, manifest = prepare_world(
            world["prepare"], frames[name], world[world["prepare"]], world["imbalance"], world["seed"], name
        )
        n_train = manifest["rows_per_split"]["train"]
        assert min(manifest["cell_counts"]["train"].values()) >= 1  # the thinned cells are not empty
        assert wf.train_rows(cfg, world) in (None, n_train)
        assert wf.world_trak(cfg, name, "trak")["proj_dim"] < n_train
        assert set(table["split"]) == {"train", "val", "test"}
