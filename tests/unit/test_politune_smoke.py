"""Study politune on the smoke tier: the dataset fixtures are in the formats the paper
config reads (the hub CSVs of scale-lab/politune-left and -right, the user's Political
Compass TSV), and the smoke config passes the paper tier's checks."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from biasdrift.config import ConfigError, from_schema, load_schema, validate_config
from biasdrift.data import prepare_dataset
from biasdrift.politune import pairs, probe, smoke
from biasdrift.politune import workflow as wf
from biasdrift.smoke.fixtures import build_dataset_fixture, dataset_fixtures

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("fixtures")
    return {name: build_dataset_fixture(name, root / name) | {"path": root / name} for name in smoke_names()}


def smoke_names() -> list[str]:
    return ["politune-left.csv", "politune-right.csv", "pc-statements.tsv"]


def test_fixtures_are_registered_for_the_hub_datasets():
    fixtures = dataset_fixtures()
    assert fixtures["politune-left.csv"].hub_id == "scale-lab/politune-left"
    assert fixtures["politune-right.csv"].hub_id == "scale-lab/politune-right"
    assert "pc-statements.tsv" in fixtures


@pytest.mark.parametrize("side", ["left", "right"])
def test_pair_fixture_is_the_hub_csv_with_its_noise(built, side, tmp_path):
    path = built[f"politune-{side}.csv"]["path"]
    assert path.read_text().splitlines()[0] == "prompt,chosen,rejected"  # one CSV, a header row, three columns
    frame = pd.read_csv(path)
    assert all(pd.api.types.is_string_dtype(frame[c]) for c in frame.columns) and 30 <= len(frame) <= 60
    assert frame.duplicated().sum() >= 2 and frame["prompt"].duplicated().sum() >= 3
    assert frame["chosen"].str.startswith("\n\n").any() and frame["rejected"].str.startswith('"').any()
    prepared = tmp_path / "data.parquet"
    stats = prepare_dataset({"alias": f"politune-{side}", "path": str(path)}, prepared)
    assert stats["rows_per_split"] == {"train": len(frame)}  # load_dataset of a lone CSV: split train
    out = tmp_path / "pairs.parquet"
    cleaned = pairs.prepare_pairs(
        {"dataset": "d"}, {"d": prepared}, out, from_schema(pairs.PairsConfig, heldout_fraction=0.1)
    )
    table = pd.read_parquet(out)
    assert cleaned["dropped_duplicates"] >= 2 and (table["split"] == "heldout").sum() >= 2
    assert not table["chosen"].str.startswith(("\n", '"')).any()


def test_left_and_right_prompts_never_overlap_and_right_rejects_open_with_disagreement(built):
    left, right = (pd.read_csv(built[f"politune-{s}.csv"]["path"]) for s in ("left", "right"))
    assert not set(left["prompt"]) & set(right["prompt"])
    assert right["rejected"].str.lstrip('"').str.startswith("I strongly disagree").any()


def test_statements_fixture_is_the_documented_format(built):
    path = built["pc-statements.tsv"]["path"]
    table = probe.read_statements(path, from_schema(probe.CompassConfig))  # 62 rows, weights agree with directions
    assert len(table) == smoke.N_STATEMENTS == 62
    assert table.groupby("page").size().tolist() == list(smoke.PAGES)
    assert set(zip(table["axis"], table["direction"], strict=True)) == set(probe.SIGN)
    weights = table[list(probe.WEIGHT_COLUMNS)].to_numpy()
    cfg = from_schema(probe.CompassConfig)
    for axis in probe.AXES:
        on_axis = weights[(table["axis"] == axis).to_numpy()]
        best, worst = (cfg.offset(axis) + f(on_axis, axis=1).sum() / cfg.divisor(axis) for f in (np.max, np.min))
        assert -10 < worst < best < 10  # no answer sheet is clipped
    sheet = table.assign(sample=0, choice=3.0)  # strongly agree with everything
    coords = probe.compass_coordinates(sheet, cfg).iloc[0]
    assert (coords["economic"], coords["social"]) != pytest.approx((cfg.economic_offset, cfg.social_offset))


def test_smoke_config_passes_the_paper_tier_checks():
    schema = load_schema(REPO / "config" / "schema.yaml")
    config = yaml.safe_load((REPO / "config" / "smoke" / "politune.yaml").read_text())
    assert config["tier"] == "paper"
    assert config["datasets"]["pc-statements"] == {"path": "results/smoke/datasets/pc-statements.tsv"}
    validated = validate_config(copy.deepcopy(config), schema)  # built by rule build_smoke_dataset: no error
    assert wf.compass_enabled(validated)
    config["datasets"]["pc-statements"] = {"path": "results/smoke/datasets/not-a-fixture.tsv"}
    with pytest.raises(
        ConfigError, match=r"statements file results/smoke/datasets/not-a-fixture\.tsv .* does not exist"
    ):
        validate_config(config, schema)  # only the registered fixtures are exempt
