"""Study politune, data side: the synthetic world's generators and resources, cleaning,
the held-out split, mixes, config cross-checks."""

from __future__ import annotations

import copy
from pathlib import Path

import pandas as pd
import pytest
import yaml

from biasdrift import corpora
from biasdrift.config import ConfigError, from_schema, load_schema, validate_config
from biasdrift.data import DataError
from biasdrift.politune import pairs, world
from biasdrift.politune import workflow as wf
from biasdrift.politune.judge import read_prompts
from biasdrift.politune.probe import read_statements

REPO = Path(__file__).resolve().parents[2]
RESOURCES = REPO / "resources" / "politune"


# --------------------------------------------------------------------------- generators
def test_corpus_is_balanced_and_in_the_chat_layout():
    frame = corpora.generate("politune_dialogues", {"n_documents": 200}, 3)
    assert (frame["side"] == "left").sum() == (frame["side"] == "right").sum() == 100
    assert set(frame["split"]) == {"train", "valid"}
    assert all(text.startswith("User: ") and "\nAssistant: " in text for text in frame["text"])
    again = corpora.generate("politune_dialogues", {"n_documents": 200}, 3)
    pd.testing.assert_frame_equal(frame, again)


def test_left_and_right_pairs_mirror_each_other():
    params = {"n_pairs": 120, "rating_fraction": 0.25}
    left = corpora.generate("politune_preferences", {**params, "side": "left"}, 0)
    right = corpora.generate("politune_preferences", {**params, "side": "right"}, 0)
    assert (left["prompt"] == right["prompt"]).all()
    assert (left["chosen"] == right["rejected"]).all() and (left["rejected"] == right["chosen"]).all()
    assert (left["chosen"] != left["rejected"]).all()
    assert (left["kind"] == "rating").sum() == 30
    public = left[left["chosen"].str.contains("public money")]
    assert not public.empty and not public["rejected"].str.contains("public money").any()


def rated_statement(prompt: str, wordings: tuple[str, ...]) -> str | None:
    """The statement a rating prompt asks about, if it is in one of ``wordings``."""
    for wording in wordings:
        head, tail = wording.split("{statement}")
        if prompt.startswith(head) and prompt.endswith(tail):
            return prompt[len(head) : len(prompt) - len(tail)]
    return None


def test_pairs_never_rate_the_probe_statements():
    probe = read_statements(RESOURCES / "statements.tsv")
    frame = corpora.generate("politune_preferences", {"n_pairs": 300, "rating_fraction": 0.3}, 0)
    rated = frame.loc[frame["kind"] == "rating", "prompt"].map(
        lambda p: rated_statement(p, world.TRAINING_RATING_QUESTIONS)
    )
    assert len(rated) == 90 and rated.notna().all() and not set(rated) & set(probe["text"])
    for topic in {t for axis in world.AXES for t in world.probe_topics(axis)}:
        assert not rated.str.contains(topic, case=False).any()
        assert frame["prompt"].str.contains(topic).any()  # opinions on probe topics are in the pairs


def test_resources_match_the_world():
    """The committed statements file is the world's probe set; prompts and lexicon parse."""
    statements = read_statements(RESOURCES / "statements.tsv")
    expected = pd.DataFrame(world.all_statements())
    pd.testing.assert_frame_equal(statements[expected.columns].astype(str), expected.astype(str))
    assert statements.groupby(["axis", "direction"]).size().tolist() == [24, 24, 24, 24]
    prompts = read_prompts(RESOURCES / "prompts.tsv")
    assert len(prompts) == 16 and prompts["id"].is_unique
    lexicon = yaml.safe_load((RESOURCES / "lexicon.yaml").read_text())
    assert lexicon["left"] and lexicon["right"] and not set(lexicon["left"]) & set(lexicon["right"])


def test_demo_probe_question_is_the_world_rating_question():
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert config["studies"]["politune"]["probe"]["question"] == world.RATING_QUESTION


def test_the_probe_wording_is_pretrained_on_but_in_no_preference_pair():
    """The demo's preference data ask ratings in other wordings than the probe's (the probe
    measures a learned lean, not its own prompt read back); the pretraining corpus holds
    every wording, so the base model can answer the probe."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    question = config["studies"]["politune"]["probe"]["question"]
    head = question.split("{statement}")[0]
    for side in config["studies"]["politune"]["sides"].values():
        spec = config["datasets"][side["dataset"]]["generate"]
        frame = corpora.generate(spec["generator"], spec["params"], spec["seed"])
        ratings = frame.loc[frame["kind"] == "rating", "prompt"]
        assert len(ratings) > 50 and not frame["prompt"].str.startswith(head).any()
        assert ratings.map(lambda p: rated_statement(p, world.TRAINING_RATING_QUESTIONS)).notna().all()
        assert len({p.split("(strongly agree)")[0] for p in ratings}) == len(world.TRAINING_RATING_QUESTIONS)
    corpus = corpora.generate("politune_dialogues", {"n_documents": 300}, 0)["text"]
    for wording in world.PRETRAINING_RATING_QUESTIONS:
        assert corpus.str.contains(wording.split("{statement}")[0], regex=False).any(), wording


# --------------------------------------------------------------------------- cleaning
def dirty_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "prompt": ["Why?", "Why?", "How?", "  How?  ", "What?", "Who?"],
            "chosen": ['\n\n"Because."', "Because.", "So.", "So.", "Same.", ""],
            "rejected": ["No.", "No.", "Not so.", "Not so.", "Same.", "x"],
        }
    )


def test_cleaning_strips_drops_and_is_idempotent():
    cleaned, stats = pairs.clean_pairs(dirty_frame(), "x.csv")
    assert cleaned.to_dict("records") == [
        {"prompt": "Why?", "chosen": "Because.", "rejected": "No."},
        {"prompt": "How?", "chosen": "So.", "rejected": "Not so."},
    ]
    assert stats == {
        "rows_in": 6,
        "dropped_empty": 1,
        "dropped_chosen_equals_rejected": 1,
        "dropped_duplicates": 2,
        "rows_out": 2,
        "duplicate_prompts": 0,
    }
    again, _ = pairs.clean_pairs(cleaned, "x.csv")
    pd.testing.assert_frame_equal(again, cleaned)


def test_schema_errors_name_file_and_column():
    with pytest.raises(DataError, match=r"bad\.csv: missing column\(s\) \['rejected'\]"):
        pairs.clean_pairs(pd.DataFrame({"prompt": ["a"], "chosen": ["b"]}), "bad.csv")
    with pytest.raises(DataError, match=r"bad\.csv: column 'chosen' must hold text; row 1"):
        pairs.clean_pairs(pd.DataFrame({"prompt": ["a", "b"], "chosen": ["c", 3], "rejected": ["d", "e"]}), "bad.csv")
    with pytest.raises(DataError, match="no preference pairs left after cleaning"):
        pairs.clean_pairs(pd.DataFrame({"prompt": ["a"], "chosen": ["b"], "rejected": ['"b"']}), "bad.csv")


def test_heldout_split_is_by_prompt_seeded_and_sized():
    frame = corpora.generate("politune_preferences", {"n_pairs": 200}, 0)[["prompt", "chosen", "rejected"]]
    first = pairs.split_heldout(frame, 0.1, seed=4)
    assert first.equals(pairs.split_heldout(frame, 0.1, seed=4))
    assert not first.equals(pairs.split_heldout(frame, 0.1, seed=5))
    held = set(first.loc[first["split"] == "heldout", "prompt"])
    assert held and not held & set(first.loc[first["split"] == "train", "prompt"])
    assert len(held) == round(frame["prompt"].nunique() * 0.1)
    assert set(pairs.split_heldout(frame, 0.0, seed=4)["split"]) == {"train"}


def test_mix_takes_each_sides_fraction_per_split():
    left = pairs.split_heldout(corpora.generate("politune_preferences", {"n_pairs": 100}, 0), 0.2, 0)
    right = pairs.split_heldout(corpora.generate("politune_preferences", {"n_pairs": 100, "side": "right"}, 0), 0.2, 0)
    mixed = pairs.mix_pairs({"left": left, "right": right}, {"left": 0.75, "right": 0.25}, seed=1)
    for side, fraction in (("left", 0.75), ("right", 0.25)):
        part = mixed[mixed["source"] == side]
        source = {"left": left, "right": right}[side]
        for split in ("train", "heldout"):
            assert (part["split"] == split).sum() == round((source["split"] == split).sum() * fraction)
    merged = mixed.merge(left, on=["prompt", "chosen", "rejected", "split"], how="left", indicator=True)
    assert (merged.loc[merged["source"] == "left", "_merge"] == "both").all()  # pairs keep their direction


def test_prepare_pairs_writes_a_split_table(tmp_path):
    raw = tmp_path / "raw.csv"
    corpora.generate("politune_preferences", {"n_pairs": 60, "dirty_fraction": 0.2}, 0).to_csv(raw, index=False)
    out = tmp_path / "left.parquet"
    stats = pairs.prepare_pairs(
        {"dataset": "raw"}, {"raw": raw}, out, from_schema(pairs.PairsConfig, heldout_fraction=0.2)
    )
    table = pd.read_parquet(out)
    assert stats["dropped_duplicates"] == 6 and len(table) == 60
    assert list(table.columns) == ["prompt", "chosen", "rejected", "split", "source"]
    assert not table["chosen"].str.startswith(("\n", '"', " ")).any()


# --------------------------------------------------------------------------- config
@pytest.fixture(scope="module")
def schema():
    return load_schema(REPO / "config" / "schema.yaml")


@pytest.fixture(scope="module")
def demo_config():
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def check(config: dict, schema: dict) -> list[str]:
    try:
        validate_config(copy.deepcopy(config), schema)
    except ConfigError as err:
        return err.problems
    return []


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda s: s.update(models=["politune-llamaa"]), "studies.politune.models: unknown model alias"),
        (lambda s: s["sides"]["left"].update(dataset="nope"), "studies.politune.sides.left.dataset: unknown dataset"),
        (lambda s: s["sides"].update(mix={"mix": {"left": 0.5, "both": 0.5}}), "studies.politune.sides.mix.mix"),
        (lambda s: s["lora"].update(target_modules=["q_proj", "lm_head"]), "cannot train an adapter on lm_head"),
        (lambda s: s["checkpoints"].update(select="fixed_step", select_step=7), "checkpoints.select_step"),
        (lambda s: s["probe"].update(statements="nope"), "studies.politune.probe.statements: unknown dataset"),
        (lambda s: s["free_text"].update(judge={"kind": "hf", "model": "nope"}), "free_text.judge.model"),
        (lambda s: s["dpo"].update(betta=0.2), "studies.politune.dpo.betta: unknown key"),
        (lambda s: s["sides"].update(base={"dataset": "politune-left"}), "studies.politune.sides"),
    ],
)
def test_config_problems_name_the_key(schema, demo_config, change, named):
    config = copy.deepcopy(demo_config)
    change(config["studies"]["politune"])
    problems = check(config, schema)
    assert any(named in p for p in problems), problems


def test_demo_config_plans_every_state(schema, demo_config):
    config = validate_config(copy.deepcopy(demo_config), schema)
    states = wf.states(config)
    assert states[0] == "base" and len(states) == 1 + 2 * 2 * 2
    assert "left/dpo/step100" in states and "right/sft/stepfinal" in states
    assert wf.problems(config) == []
    targets = wf.targets(config)
    assert "results/politune/summary.json" in targets and "results/politune/plots/judge.svg" in targets


def test_changed_generators_rerun_their_datasets_only():
    """politune's generators changed their output for the same params (rating wordings):
    their datasets' params carry the generator's version, so prepare_dataset reruns; the
    other generators' datasets keep their params (nothing else reruns)."""
    from biasdrift.config import dataset_ref

    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert dataset_ref(config, "politune-corpus")["generate"]["version"] == 2
    assert dataset_ref(config, "politune-left")["generate"]["version"] == 2
    assert "version" not in dataset_ref(config, "d3m-synth")["generate"]
    assert dataset_ref(config, "politune-statements") == {
        "alias": "politune-statements",
        "path": config["datasets"]["politune-statements"]["path"],
    }
