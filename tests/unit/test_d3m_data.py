"""d3m world preparation: the synthetic generator, the table checks, and the ToxiGen /
HateExplain preparers with the thesis's bugs fixed (spec 9.3 item 7)."""

from __future__ import annotations

import pandas as pd
import pytest

from biasdrift.config import from_schema, repo_schema_defaults
from biasdrift.corpora import generate
from biasdrift.d3m import data as dd
from biasdrift.d3m.generators import SyntheticParams, cell_counts
from biasdrift.data import DataError

SMALL = {"n_majority": 30, "n_minority": 3, "n_other": 20, "val_per_cell": 5, "test_per_cell": 10}


def test_synthetic_world_has_the_configured_cells_and_planted_ratio():
    frame = generate("d3m_synthetic", SMALL, 0)
    world, manifest = dd.finalize_world(frame, "synth")
    train = manifest["cell_counts"]["train"]
    assert train["a|1"] == 30 and train["a|0"] == 3
    assert all(train[c] == 20 for c in train if not c.startswith("a|"))
    assert manifest["cell_counts"]["val"] == dict.fromkeys(train, 5)
    assert manifest["cell_counts"]["test"] == dict.fromkeys(train, 10)
    assert manifest["rows_per_split"] == {"train": 33 + 6 * 20, "val": 40, "test": 80}
    assert list(world.columns) == [*dd.COLUMNS, *dd.OPTIONAL_COLUMNS]  # the synthetic world knows its mislabeled rows
    assert generate("d3m_synthetic", SMALL, 0).equals(frame)
    assert not generate("d3m_synthetic", SMALL, 1)["text"].equals(frame["text"])


def test_synthetic_text_structure_and_label_noise():
    clean = generate("d3m_synthetic", SMALL, 0)
    words = clean["text"].str.split()
    assert words.map(len).eq(5).all()  # group word, core word, 3 fillers
    # the core word alone decides the label when there is no noise
    core = {}
    for tokens, label in zip(words, clean["label"], strict=True):
        for token in tokens:
            core.setdefault(token, set()).add(label)
    ambiguous = {t for t, labels in core.items() if len(labels) > 1}
    group_and_filler = len(ambiguous)
    noisy = generate("d3m_synthetic", {**SMALL, "label_noise": 0.3}, 0)
    noisy_core = {}
    for tokens, label in zip(noisy["text"].str.split(), noisy["label"], strict=True):
        for token in tokens:
            noisy_core.setdefault(token, set()).add(label)
    assert len({t for t, labels in noisy_core.items() if len(labels) > 1}) > group_and_filler


@pytest.mark.parametrize(("effect", "minority"), [(1.0, 3), (0.5, 16), (0.0, 30)])
def test_effect_grades_the_biased_groups_skew_down_to_a_balanced_group(effect, minority):
    train = generate("d3m_synthetic", {**SMALL, "effect": effect}, 0).query("split == 'train'")
    counts = train["cell"].value_counts()
    assert counts["a|1"] == 30 and counts["a|0"] == minority
    assert all(counts[c] == 20 for c in counts.index if not c.startswith("a|"))
    if effect == 1.0:  # the default world, drawn as without the parameter
        assert generate("d3m_synthetic", {**SMALL, "effect": effect}, 0).equals(generate("d3m_synthetic", SMALL, 0))
    with pytest.raises(ValueError, match="effect"):
        generate("d3m_synthetic", {**SMALL, "effect": 1.5}, 0)


def test_synthetic_params_are_checked():
    with pytest.raises(ValueError, match="biased_group"):
        generate("d3m_synthetic", {"biased_group": "z"}, 0)
    with pytest.raises(ValueError, match="at least 1"):
        generate("d3m_synthetic", {"n_minority": 0}, 0)
    with pytest.raises(ValueError, match="unknown key"):
        generate("d3m_synthetic", {"n_minorty": 3}, 0)
    assert sum(cell_counts(from_schema(SyntheticParams))["train"].values()) == 300 + 30 + 6 * 200


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns="group"), "missing column.*group"),
        (lambda f: f.drop(columns="label"), "missing column.*label"),
        (lambda f: f.assign(label=f["label"].where(f.index != 3)), "missing 'label'"),
        (lambda f: f.assign(label=f["label"] + 1), "labels must be 0 or 1"),
        (lambda f: f.assign(uid="same"), "duplicate uid"),
        (lambda f: f.assign(split=f["split"].replace("val", "dev")), "unknown split"),
        (lambda f: f[f["split"] != "test"], "hold no rows"),
        (
            lambda f: f.assign(text=f["text"].where(f["split"] != "test", f["text"].iloc[0].upper())),
            "more than one split",
        ),
    ],
)
def test_bad_world_tables_fail_naming_the_problem(change, message):
    frame = generate("d3m_synthetic", SMALL, 0)
    with pytest.raises(DataError, match=message):
        dd.finalize_world(change(frame), "studies.d3m.worlds.x")


# --------------------------------------------------------------------------- toxigen
GROUPS = ["black", "asian", "women"]


def fake_toxigen(n_per=30):
    rows = []
    for g in GROUPS:
        for y in (0, 1):
            for method in ("ALICE", "top-k"):
                for i in range(n_per):
                    rows.append(
                        {
                            "prompt": "p",
                            "generation": f"{g} {y} {method} text number {i}",
                            "generation_method": method,
                            "group": g,
                            "prompt_label": y,
                            "roberta_prediction": 0.5,
                        }
                    )
    rows.append(
        {
            "prompt": "p",
            "generation": None,
            "generation_method": "ALICE",
            "group": "black",
            "prompt_label": 1,
            "roberta_prediction": 0.5,
        }
    )
    annotated = []
    for g in GROUPS:
        for i in range(12):
            text = f"annotated {g} {i}"
            annotated.append(
                {"text": f"b'{text}'" if i % 2 else text, "target_group": g, "toxicity_human": 1.0 + (i % 4)}
            )
    annotated.append({"text": "black 1 ALICE text number 0", "target_group": "black", "toxicity_human": 5.0})
    return pd.DataFrame(rows), pd.DataFrame(annotated)


def test_toxigen_preparation_fixes_the_thesis_bugs():
    train_raw, annotated = fake_toxigen()
    params = from_schema(dd.ToxigenParams, train_per_cell=20, val_per_cell=8, test_per_cell=3)
    imbalance = from_schema(dd.Imbalance, biased_groups=["women"], biased_label=0, biased_ratio=0.25)
    frame = dd.prepare_toxigen(train_raw, annotated, params, imbalance, seed=1)
    world, manifest = dd.finalize_world(frame, "toxigen")  # asserts disjointness by text
    train = manifest["cell_counts"]["train"]
    assert train["women|0"] == 5 and train["women|1"] == 20 and train["black|0"] == 20
    assert set(manifest["cell_counts"]["val"].values()) == {8}  # val stays balanced
    assert set(manifest["cell_counts"]["test"].values()) == {3}
    test = world[world["split"] == "test"]
    assert not test["text"].str.startswith("b'").any()  # unwrapped when the pattern matches
    assert "black 1 ALICE text number 0" not in set(test["text"])  # a generated text never reaches test
    # uid-based split: a different seed gives a different but still disjoint split
    other = dd.prepare_toxigen(train_raw, annotated, params, imbalance, seed=2)
    assert set(other[other["split"] == "val"]["uid"]) != set(frame[frame["split"] == "val"]["uid"])
    assert frame.equals(
        dd.prepare_toxigen(train_raw.sample(frac=1, random_state=0), annotated, params, imbalance, seed=1).loc[
            frame.index
        ]
    )


def test_bytes_wrapper_is_only_removed_when_it_matches():
    assert dd.unwrap_bytes_repr("b'it\\xe2\\x80\\x99s fine'") == "it\u2019s fine"
    assert dd.unwrap_bytes_repr('b"quoted"') == "quoted"
    assert dd.unwrap_bytes_repr("plain text stays") == "plain text stays"
    assert dd.unwrap_bytes_repr("bob's text'") == "bob's text'"  # the thesis's [2:-1] would cut it


def test_toxigen_needs_enough_rows_per_cell():
    train_raw, annotated = fake_toxigen(n_per=5)
    with pytest.raises(DataError, match="needs"):
        dd.prepare_toxigen(
            train_raw, annotated, from_schema(dd.ToxigenParams, train_per_cell=20), from_schema(dd.Imbalance), seed=0
        )


# --------------------------------------------------------------------------- hatexplain
def post(pid, labels, targets, split, text=None):
    return {
        "id": pid,
        "annotators": {"label": labels, "annotator_id": [1, 2, 3], "target": targets},
        "post_tokens": (text or f"post {pid}").split(),
        "split": split,
    }


def fake_hatexplain():
    rows = []
    for split, n in (("train", 12), ("validation", 4), ("test", 4)):
        for g in ("African", "Women"):
            for i in range(n):
                rows.append(post(f"{split}-{g}-h{i}", [0, 0, 1], [[g], [g], ["None"]], split))
                rows.append(post(f"{split}-{g}-n{i}", [1, 1, 2], [[g], [g, "Islam"], []], split))
    rows.append(post("nomajority", [0, 1, 2], [["Women"], ["Women"], []], "train"))
    rows.append(post("onevote", [1, 1, 1], [["Women"], [], []], "train"))
    rows.append(post("dup", [1, 1, 1], [["Women"], ["Women"], []], "test", text="post train-Women-n0"))
    return pd.DataFrame(rows)


def test_hatexplain_drops_no_majority_posts_and_keeps_one_group_per_post():
    raw = fake_hatexplain()
    imbalance = from_schema(dd.Imbalance, biased_groups=["African"], biased_label=0, biased_ratio=0.25)
    params = from_schema(dd.HatexplainParams, groups=["African", "Women", "Islam"])
    frame = dd.prepare_hatexplain(raw, params, imbalance, seed=0)
    world, manifest = dd.finalize_world(frame, "hatexplain")
    assert "hx-nomajority" not in set(world["uid"])  # the thesis made it label 0
    assert "hx-onevote" not in set(world["uid"])  # a group named by one annotator only
    assert "hx-dup" not in set(world["uid"])  # its text is in train
    assert world["uid"].is_unique
    assert manifest["cell_counts"]["train"]["African|0"] == 3  # int(0.25 * 12)
    assert manifest["cell_counts"]["train"]["African|1"] == 12
    assert len(set(manifest["cell_counts"]["val"].values())) == 1  # val balanced
    assert dd.majority_label([0, 1, 2], 2) is None
    assert dd.majority_label([2, 2, 1], 2) == 1 and dd.majority_label([1, 1, 0], 2) == 0


def test_prepare_world_from_hub_datasets(monkeypatch, tmp_path):
    """The hub path end to end with load_dataset monkeypatched (no download)."""
    import datasets

    from biasdrift.data import prepare_dataset, read_dataset

    train_raw, annotated = fake_toxigen()
    tables = {"train": train_raw, "annotated": annotated}

    def fake_load_dataset(hf_id, name, revision, token):  # noqa: ARG001 - the real signature
        assert hf_id == "toxigen/toxigen-data" and revision == "main"
        return datasets.DatasetDict({"train": datasets.Dataset.from_pandas(tables[name])})

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    paths = {}
    for key, name in (("dataset", "train"), ("test_dataset", "annotated")):
        ref = {"alias": f"toxigen-{name}", "hf_id": "toxigen/toxigen-data", "revision": "main", "name": name}
        paths[key] = tmp_path / f"{name}.parquet"
        prepare_dataset(ref, paths[key])
    frames = {k: read_dataset(p) for k, p in paths.items()}
    world, manifest = dd.prepare_world(
        "toxigen",
        frames,
        {
            **repo_schema_defaults("$defs.d3m_world.toxigen"),
            "train_per_cell": 10,
            "val_per_cell": 4,
            "test_per_cell": 2,
        },
        {**repo_schema_defaults("$defs.d3m_world.imbalance"), "biased_groups": ["black"]},
        0,
        "studies.d3m.worlds.toxigen",
    )
    assert manifest["cell_counts"]["train"]["black|0"] == 2 and manifest["prepare"] == "toxigen"
    assert world["uid"].str.startswith(("tg-", "tga-")).all()
    assert "label_note" in manifest
    with pytest.raises(ValueError, match="unknown key"):
        dd.prepare_world("toxigen", frames, {"train_per_cel": 3}, {}, 0, "w")


def test_toxigen_groups_fix_the_training_rows_and_biased_groups_must_exist():
    train_raw, annotated = fake_toxigen()
    imbalance = from_schema(dd.Imbalance, biased_groups=["women"], biased_label=0, biased_ratio=0.25)
    params = from_schema(
        dd.ToxigenParams, train_per_cell=20, val_per_cell=8, test_per_cell=3, groups=["women", "black"]
    )
    frame = dd.prepare_toxigen(train_raw, annotated, params, imbalance, seed=1)
    train = frame[frame["split"] == "train"]
    assert set(frame["group"]) == {"women", "black"} and len(train) == 20 + 5 + 20 + 20
    one_label = train_raw[~((train_raw["group"] == "asian") & (train_raw["prompt_label"] == 0))]
    with pytest.raises(DataError, match=r"toxigen\.groups: group\(s\) without rows of both labels.*'asian': \[1\]"):
        dd.prepare_toxigen(
            one_label, annotated, from_schema(dd.ToxigenParams, groups=["asian", "black"]), from_schema(dd.Imbalance), 0
        )
    # a biased group that is not in the data would plant no bias at all
    typo = from_schema(dd.Imbalance, biased_groups=["Women"])
    with pytest.raises(DataError, match=r"imbalance\.biased_groups: \['Women'\] are not groups of the data"):
        dd.prepare_toxigen(train_raw, annotated, from_schema(dd.ToxigenParams, train_per_cell=20), typo, seed=1)
    with pytest.raises(DataError, match=r"imbalance\.biased_groups: \['african'\]"):
        dd.prepare_hatexplain(
            fake_hatexplain(), from_schema(dd.HatexplainParams), from_schema(dd.Imbalance, biased_groups=["african"]), 0
        )
