"""The smoke tier's dataset fixtures of study specdec are in the hub formats, and the
study's readers take them as they come (split names, ClassLabel labels)."""

from __future__ import annotations

import pytest

from biasdrift.config import from_schema
from biasdrift.data import prepare_dataset
from biasdrift.smoke.fixtures import build_dataset_fixture, dataset_fixtures
from biasdrift.specdec import smoke
from biasdrift.specdec.templates import HONEST_CATEGORIES, TemplateConfig, build_templates, view_frame


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("specdec_smoke")
    names = ("ag_news.parquet", "honest-en_binary.parquet", "honest-en_queer_nonqueer.parquet")
    return {name: (build_dataset_fixture(name, root / name), root / name) for name in names}


def test_fixtures_are_registered_for_the_paper_datasets():
    fixtures = dataset_fixtures()
    assert fixtures["ag_news.parquet"].hub_id == "fancyzhx/ag_news"
    assert fixtures["honest-en_binary.parquet"].hub_id == fixtures["honest-en_queer_nonqueer.parquet"].hub_id
    assert fixtures["honest-en_binary.parquet"].hub_id == "MilaNLProc/honest"


def test_ag_news_fixture_has_the_hub_features_and_splits(files):
    import datasets

    _, path = files["ag_news.parquet"]
    loaded = datasets.Dataset.from_parquet(str(path))
    assert loaded.features["text"] == datasets.Value("string")
    assert loaded.features["label"] == datasets.ClassLabel(names=["World", "Sports", "Business", "Sci/Tech"])
    frame = loaded.to_pandas()
    assert sorted(frame["split"].unique()) == ["test", "train"]  # no validation split on the hub
    assert str(frame["label"].dtype) == "int64" and set(frame["label"]) == {0, 1, 2, 3}
    assert frame["text"].str.contains(r" - ").all()  # "Title (Source) Source - description"


@pytest.mark.parametrize(
    ("name", "categories"),
    [
        ("honest-en_binary.parquet", {"female", "male"}),
        ("honest-en_queer_nonqueer.parquet", set(HONEST_CATEGORIES) - {"female", "male"}),
    ],
)
def test_honest_fixtures_have_the_hub_columns_and_split(files, name, categories):
    import datasets

    _, path = files[name]
    frame = datasets.Dataset.from_parquet(str(path)).to_pandas()
    assert list(frame.columns) == [*smoke.HONEST_COLUMNS, "split"]
    assert set(frame["split"]) == {"honest"}
    assert set(frame["category"]) == categories
    assert frame["template_masked"].str.endswith(" [M].").all()
    assert (~frame["raw"].str.endswith(".")).all() and frame["raw"].str.startswith("[I] ").all()
    for row in frame.itertuples():
        assert row.template_masked == row.raw.replace("[I]", row.identity) + "."


def test_templates_from_the_prepared_honest_fixtures_keep_the_hub_pitfalls(files, tmp_path):
    sets = []
    for alias, name in (("honest", "honest-en_binary.parquet"), ("honest-queer", "honest-en_queer_nonqueer.parquet")):
        prepare_dataset({"alias": alias, "path": str(files[name][1])}, tmp_path / f"{alias}.parquet")
        sets.append((alias, tmp_path / f"{alias}.parquet"))
    templates = build_templates(sets, from_schema(TemplateConfig))
    clean, legacy = view_frame(templates, "clean_binary"), view_frame(templates, "legacy_all")
    assert {"the child", "the children"} <= set(templates.loc[templates["gender_neutral_identity"], "identity"])
    assert not set(clean["identity"]) & {"the child", "the children"}
    assert not clean.duplicated(["template_masked", "category"]).any()
    assert legacy["template_masked"].is_unique
    assert set(legacy.loc[legacy["identity"] == "the child", "category"]) == {"male"}  # last label wins
