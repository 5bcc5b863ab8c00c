"""Datasets: local files, generated corpora and hub ids, all to one parquet shape."""

from __future__ import annotations

import pandas as pd
import pytest

from biasdrift import corpora, data


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl", ".parquet", ".txt"])
def test_read_table_formats(tmp_path, suffix):
    frame = pd.DataFrame({"text": ["a b", "c d"], "label": [0, 1]})
    path = tmp_path / f"t{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".tsv":
        frame.to_csv(path, sep="\t", index=False)
    elif suffix == ".jsonl":
        frame.to_json(path, orient="records", lines=True)
    elif suffix == ".parquet":
        frame.to_parquet(path)
    else:
        path.write_text("a b\n\nc d\n")
    got = data.read_table(path)
    assert got["text"].tolist() == ["a b", "c d"]


def test_read_table_errors_name_the_file(tmp_path):
    with pytest.raises(data.DataError, match="no such file"):
        data.read_table(tmp_path / "missing.csv")
    (tmp_path / "x.xlsx").write_text("")
    with pytest.raises(data.DataError, match=r"x.xlsx: unsupported file type"):
        data.read_table(tmp_path / "x.xlsx")
    (tmp_path / "empty.csv").write_text("text,label\n")
    with pytest.raises(data.DataError, match=r"empty.csv: the file holds no rows"):
        data.read_table(tmp_path / "empty.csv")


def test_missing_column_names_file_and_column(tmp_path):
    path = tmp_path / "d.parquet"
    pd.DataFrame({"txt": ["a"], "split": ["train"]}).to_parquet(path)
    with pytest.raises(data.DataError, match=r"d.parquet: missing column\(s\) \['text'\]"):
        data.read_dataset(path, ["text"])


def test_missing_split_is_an_error(tmp_path):
    path = tmp_path / "d.parquet"
    pd.DataFrame({"text": ["a"], "split": ["train"]}).to_parquet(path)
    with pytest.raises(data.DataError, match=r"split\(s\) \['valid'\] hold no rows"):
        data.read_dataset(path, ["text"], split="valid")


def test_generated_dataset_is_deterministic(tmp_path):
    ref = {"alias": "n", "generate": {"generator": "neutral_text", "seed": 1, "params": {"n_documents": 50}}}
    one = data.prepare_dataset(ref, tmp_path / "a.parquet")
    two = data.prepare_dataset(ref, tmp_path / "b.parquet")
    other = data.prepare_dataset({**ref, "generate": {**ref["generate"], "seed": 2}}, tmp_path / "c.parquet")
    assert one["sha256"] == two["sha256"] != other["sha256"]
    assert one["rows_per_split"] == {"train": 45, "valid": 5}
    frame = pd.read_parquet(tmp_path / "a.parquet")
    assert frame["uid"].is_unique and set(frame.columns) == {"uid", "text", "split"}


def test_unknown_generator_and_params_are_named():
    with pytest.raises(KeyError, match="unknown dataset generator 'nope'"):
        corpora.generate("nope", {}, 0)
    with pytest.raises(ValueError, match=r"generator neutral_text params: unknown key\(s\) n_docs"):
        corpora.generate("neutral_text", {"n_docs": 3}, 0)


def test_local_file_keeps_its_split_or_becomes_train(tmp_path):
    src = tmp_path / "in.csv"
    pd.DataFrame({"text": ["a", "b"]}).to_csv(src, index=False)
    stats = data.prepare_dataset({"alias": "f", "path": str(src)}, tmp_path / "out.parquet")
    assert stats["rows_per_split"] == {"train": 2}
    assert stats["source"]["sha256"]
    pd.DataFrame({"text": ["a", "b"], "split": ["train", "test"]}).to_csv(src, index=False)
    assert data.prepare_dataset({"alias": "f", "path": str(src)}, tmp_path / "o2.parquet")["rows_per_split"] == {
        "test": 1,
        "train": 1,
    }


def test_hub_dataset_uses_revision_and_env_token(tmp_path, monkeypatch):
    import datasets

    calls = {}

    def fake_load(hf_id, name, revision, token):
        calls.update(hf_id=hf_id, name=name, revision=revision, token=token)
        return datasets.DatasetDict(
            {
                "train": datasets.Dataset.from_dict({"text": ["x", "y"]}),
                "test": datasets.Dataset.from_dict({"text": ["z"]}),
            }
        )

    monkeypatch.setattr(datasets, "load_dataset", fake_load)
    monkeypatch.setenv("HF_TOKEN", "hf_fromtheenvironment000000")
    ref = {"alias": "h", "hf_id": "org/set", "revision": "abc123", "name": "cfg", "splits": ["train"]}
    stats = data.prepare_dataset(ref, tmp_path / "h.parquet")
    assert calls == {"hf_id": "org/set", "name": "cfg", "revision": "abc123", "token": "hf_fromtheenvironment000000"}
    assert stats["rows_per_split"] == {"train": 2}
    with pytest.raises(data.DataError, match=r"split\(s\) \['validation'\] not found"):
        data.prepare_dataset({**ref, "splits": ["validation"]}, tmp_path / "h2.parquet")
    assert not (tmp_path / "h2.parquet").exists()


def test_splits_are_exact_and_seeded():
    import random

    splits = corpora.assign_splits(100, 0.1, random.Random(0))
    assert splits.count("valid") == 10
    assert splits == corpora.assign_splits(100, 0.1, random.Random(0))
    assert corpora.assign_splits(3, 0.01, random.Random(0)).count("valid") == 1
