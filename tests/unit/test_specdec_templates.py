"""HONEST-format templates, their views, bad input, and the demo world's generators."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from biasdrift import corpora
from biasdrift.config import from_schema
from biasdrift.specdec import generators
from biasdrift.specdec.templates import TemplateConfig, TemplateError, build_templates, prompt_of, view_frame

REPO = Path(__file__).resolve().parents[2]
TSV = REPO / "resources" / "specdec" / "templates_en.tsv"
DEMO = from_schema(TemplateConfig, categories=["female", "male"], neutral_identities=["the spouse"])


@pytest.fixture(scope="module")
def templates():
    return build_templates([("demo", TSV)], DEMO)


def test_the_demo_templates_and_their_views(templates):
    assert len(templates) == 300 and templates["template_masked"].nunique() == 270
    legacy, clean = view_frame(templates, "legacy_all"), view_frame(templates, "clean_binary")
    assert legacy["category"].value_counts().to_dict() == {"male": 150, "female": 120}
    assert clean["category"].value_counts().to_dict() == {"female": 120, "male": 120}
    assert not clean["gender_neutral_identity"].any()
    assert set(legacy.loc[legacy["gender_neutral_identity"], "category"]) == {"male"}, "last label wins"
    assert legacy["template_masked"].is_unique and not clean.duplicated(["template_masked", "category"]).any()
    neutral = set(templates.loc[templates["gender_neutral_identity"], "identity"])
    assert neutral == {"the child", "the teen", "the spouse"}
    for row in templates.itertuples():
        assert row.prompt == row.template_masked.replace(" [M].", "")
        assert row.prompt == prompt_of(row.template_masked)
    assert templates["template_id"].is_unique


def test_max_per_category_is_a_seeded_sample():
    capped = build_templates(
        [("demo", TSV)], from_schema(TemplateConfig, categories=["female", "male"], max_per_category=7)
    )
    again = build_templates(
        [("demo", TSV)], from_schema(TemplateConfig, categories=["female", "male"], max_per_category=7)
    )
    for view in ("clean_binary", "legacy_all"):
        counts = view_frame(capped, view)["category"].value_counts()
        assert (counts == 7).all()
        assert view_frame(capped, view)["template_id"].tolist() == view_frame(again, view)["template_id"].tolist()


def _write(tmp_path, rows) -> Path:
    path = tmp_path / "t.tsv"
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)
    return path


def test_a_template_without_mask_is_named(tmp_path):
    path = _write(
        tmp_path,
        [
            {"template_masked": "the woman is [M].", "identity": "the woman", "category": "female"},
            {"template_masked": "the man is nice.", "identity": "the man", "category": "male"},
        ],
    )
    with pytest.raises(TemplateError, match=r"exactly one \[M\].*the man is nice"):
        build_templates([("bad", path)], DEMO)


def test_an_unknown_category_is_named(tmp_path):
    path = _write(
        tmp_path,
        [
            {"template_masked": "the woman is [M].", "identity": "the woman", "category": "female"},
            {"template_masked": "the robot is [M].", "identity": "the robot", "category": "robots"},
        ],
    )
    with pytest.raises(TemplateError, match=r"unknown categor\(ies\) \['robots'\].*the robot is"):
        build_templates([("bad", path)], DEMO)


def test_missing_columns_and_empty_views_are_named(tmp_path):
    path = _write(tmp_path, [{"template_masked": "the woman is [M].", "category": "female"}])
    with pytest.raises(ValueError, match=r"missing column\(s\) \['identity'\]"):
        build_templates([("bad", path)], DEMO)
    only_female = _write(
        tmp_path, [{"template_masked": "the woman is [M].", "identity": "the woman", "category": "female"}]
    )
    with pytest.raises(TemplateError, match=r"contrast categor\(ies\) \['male'\] have no templates"):
        build_templates([("f", only_female)], DEMO)
    with pytest.raises(ValueError, match="unknown template view"):
        view_frame(build_templates([("demo", TSV)], DEMO), "everything")


def test_the_committed_templates_match_the_generator():
    frame = pd.read_csv(TSV, sep="\t")
    people = {i for ids in generators.IDENTITIES.values() for i in ids}
    assert set(frame["identity"]) == people
    assert set(frame["raw"]) == {raw for raw, _ in generators.PATTERNS}
    for row in frame.itertuples():
        assert row.template_masked == row.raw.replace("[I]", row.identity)
        assert prompt_of(row.template_masked) == generators.template_sentence(row.identity, row.raw)


def test_the_world_plants_predictable_and_tied_continuations():
    frame = corpora.generate("specdec_world", {"n_documents": 1500, "sentences_per_document": 1}, 0)
    again = corpora.generate("specdec_world", {"n_documents": 1500, "sentences_per_document": 1}, 0)
    pd.testing.assert_frame_equal(frame, again)
    pattern = generators.template_sentence("", generators.PATTERNS[0][0]).strip()  # "should work as a"
    heads = {"female": [], "male": []}
    for text, category in zip(frame["text"], frame["category"], strict=True):
        if pattern in text and category in heads:
            heads[category].append(text.split(pattern)[1].split()[0])
    female, male = (
        pd.Series(heads["female"]).value_counts(normalize=True),
        pd.Series(heads["male"]).value_counts(normalize=True),
    )
    assert female.iloc[0] > 0.85, "one clear peak after the predictable group"
    assert len(male) == 3 and male.max() - male.min() < 0.1, "a tie between three values after the other group"
    assert female.index[0] not in male.index


def test_flipping_the_predictable_group():
    frame = corpora.generate(
        "specdec_world", {"n_documents": 800, "sentences_per_document": 1, "predictable": ["male"]}, 0
    )
    pattern = "should work as a"
    male = [
        t.split(pattern)[1].split()[0]
        for t, c in zip(frame["text"], frame["category"], strict=True)
        if pattern in t and c == "male"
    ]
    assert pd.Series(male).value_counts(normalize=True).iloc[0] > 0.85


def test_generator_params_are_checked():
    with pytest.raises(ValueError, match="unknown predictable"):
        corpora.generate("specdec_world", {"predictable": ["robots"]}, 0)
    with pytest.raises(ValueError, match="n_options"):
        corpora.generate("specdec_world", {"n_options": 11}, 0)
    news = corpora.generate("specdec_news", {"n_articles": 50}, 0)
    assert set(news["split"]) == {"train", "test"} and set(news["label"]) <= {0, 1, 2, 3}
    assert news["text"].str.endswith(".").all()
