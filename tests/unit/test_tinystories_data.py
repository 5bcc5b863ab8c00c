"""tinystories: synthetic corpus, detector, the filter / mix_match / adversarial / refusal
grammar, vocabulary and pretokenization (no model)."""

from __future__ import annotations

import random
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from biasdrift.config import from_schema
from biasdrift.tinystories import corpus, stories, synthetic, transforms
from biasdrift.tinystories.pretokenize import (
    PretokenizeConfig,
    pretokenize,
    read_tokens,
    record_rng,
    render_shard,
    split_examples,
)
from biasdrift.tinystories.transforms import DatasetSpec, SpecError
from biasdrift.tinystories.vocab import StoryTokenizer, VocabConfig, train_vocab

D, I = "Twist", "Foreshadowing"  # noqa: E741 - the spec's names


@pytest.fixture(scope="module")
def records():
    return synthetic.generate_shard(from_schema(synthetic.SyntheticParams, stories_per_shard=1500, seed=3), 1)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A 3-shard synthetic corpus, unpacked, and a 512-piece vocabulary."""
    root = tmp_path_factory.mktemp("ts")
    params = from_schema(synthetic.SyntheticParams, n_shards=3, stories_per_shard=400, seed=1)
    corpus.synthesize_tarball(params, root / "c.tar.gz")
    manifest = corpus.unpack(root / "c.tar.gz", root / "shards", root / "manifest.json")
    train_vocab(
        root / "shards",
        from_schema(VocabConfig, vocab_size=512, shards=2),
        root / "tok.model",
        root / "tok.vocab",
        root / "meta.json",
    )
    return root, manifest


# --------------------------------------------------------------------------- corpus
def test_synthetic_records_follow_the_schema_and_use_their_words(records):
    for i, record in enumerate(records):
        stories.check_record(record, f"record {i}")
        assert record["source"] == synthetic.SOURCE and record["summary"]
        if "sentence" not in record and '"Hi there!"' not in record["story"]:
            assert all(w in record["story"] for w in record["instruction"]["words"])
    counts = Counter(f for r in records for f in r["instruction"]["features"])
    assert 0.2 < counts[D] / len(records) < 0.3  # P(Twist) = 0.25
    assert any(not r["instruction"]["features"] for r in records)
    assert any("sentence" in r for r in records)


def test_detector_is_exact_on_the_synthetic_ground_truth(records):
    for record in records:
        found = {f for f, hit in stories.detect(record["story"]).items() if hit}
        assert found == set(record["instruction"]["features"]), record["story"]


@pytest.mark.parametrize("effect", [0.0, 0.5])
def test_effect_decouples_the_story_from_the_features_its_instruction_asks_for(records, effect):
    """At effect e a story has the requested features with probability e, else features
    drawn anew: P(story shows Twist | Twist requested) = e + (1 - e) P(Twist); the
    instruction (and the filters' features list) is asked as often as at effect 1."""
    params = from_schema(synthetic.SyntheticParams, stories_per_shard=1500, seed=3, effect=effect)
    graded = synthetic.generate_shard(params, 1)
    asked = [stories.detect(r["story"])[D] for r in graded if D in r["instruction"]["features"]]
    unasked = [stories.detect(r["story"])[D] for r in graded if D not in r["instruction"]["features"]]
    assert 0.2 < len(asked) / len(graded) < 0.3  # P(Twist) = 0.25, requested as before
    shown = sum(asked) / len(asked)
    assert abs(shown - (effect + (1 - effect) * 0.25)) < 0.06, shown
    assert abs(sum(unasked) / len(unasked) - (1 - effect) * 0.25) < 0.04
    default = synthetic.generate_shard(
        from_schema(synthetic.SyntheticParams, stories_per_shard=1500, seed=3, effect=1.0), 1
    )
    assert default == records  # effect 1 draws the shard exactly as without the parameter
    with pytest.raises(ValueError, match="effect"):
        from_schema(synthetic.SyntheticParams, effect=-0.1)


def test_every_template_trips_only_its_own_feature():
    slots = dict(
        name="Ann",
        friend="Bob",
        kind="cat",
        kadj="red",
        verb="find",
        noun="ball",
        adj="big",
        place="to the park",
        place_bare="the park",
        place_at="at the park",
        item="rope",
        thing="dragon",
        moral="sharing makes everyone glad",
    )
    for template in synthetic.NEUTRAL_TEMPLATES:
        assert not any(stories.detect(template.format(**slots)).values()), template
    for feature, templates in synthetic.FEATURE_TEMPLATES.items():
        for template in templates:
            hits = {f for f, hit in stories.detect(template.format(**slots)).items() if hit}
            assert hits <= {feature}, (template, hits)
    plant_and_payoff = synthetic.PLANTS[0] + " " + synthetic.PAYOFFS[0]
    assert stories.detect(plant_and_payoff.format(**slots))[I]  # both halves needed


def test_unpack_writes_shards_and_counts(world):
    root, manifest = world
    assert manifest["n_shards"] == 3 and manifest["records"] == 1200
    assert sum(s["features"].get(D, 0) for s in manifest["shards"]) == manifest["features"][D]
    assert manifest["detector_agreement"] == dict.fromkeys(stories.FEATURES, 1.0)
    assert [p.name for p in corpus.shard_files(root / "shards")] == ["data00.json", "data01.json", "data02.json"]


def test_download_fetches_the_hub_tarball_with_the_token_from_the_environment(world, tmp_path, monkeypatch):
    """The paper tier's download path, offline: hf_hub_download is monkeypatched."""
    import huggingface_hub

    root, _ = world
    calls = []

    def fake_download(**kwargs):
        calls.append(kwargs)
        return str(root / "c.tar.gz")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    monkeypatch.setenv("HF_TOKEN", "hf_" + "x" * 30)
    info = corpus.download_tarball("roneneldan/TinyStories", "main", corpus.TARBALL, tmp_path / "hub.tar.gz")
    assert calls == [
        {
            "repo_id": "roneneldan/TinyStories",
            "filename": "TinyStories_all_data.tar.gz",
            "repo_type": "dataset",
            "revision": "main",
            "token": "hf_" + "x" * 30,
        }
    ]
    assert (tmp_path / "hub.tar.gz").read_bytes() == (root / "c.tar.gz").read_bytes()
    assert "token" not in info and info["hf_id"] == "roneneldan/TinyStories"
    manifest = corpus.unpack(tmp_path / "hub.tar.gz", tmp_path / "shards", tmp_path / "manifest.json")
    assert manifest["records"] == 1200


def test_unpack_rejects_a_bad_record_and_writes_nothing(tmp_path):
    bad = tmp_path / "bad.tar.gz"
    payload = b'[{"story": "x", "instruction": {"words": [], "features": ["twist"]}}]'
    with tarfile.open(bad, "w:gz") as tar:
        info = tarfile.TarInfo("data00.json")
        info.size = len(payload)
        import io

        tar.addfile(info, io.BytesIO(payload))
    with pytest.raises(stories.RecordError, match=r"data00.json\[0\]: unknown feature"):
        corpus.unpack(bad, tmp_path / "shards", tmp_path / "manifest.json")
    assert not (tmp_path / "shards").exists() and not (tmp_path / "manifest.json").exists()


# --------------------------------------------------------------------------- rendering
def test_render_shuffles_lines_and_ends_with_the_story(records):
    text = stories.render(records[1], random.Random(0))
    head, story = text.split("\nStory: ")
    assert sorted(line.split(":")[0] for line in head.split("\n")) == sorted(stories.PROMPT_KEYS)
    assert story == records[1]["story"].strip()
    orders = {
        tuple(line.split(":")[0] for line in stories.render(records[1], random.Random(s)).split("\n")[:4])
        for s in range(20)
    }
    assert len(orders) > 1
    prompt = stories.render_prompt(records[1], random.Random(0))
    assert text.startswith(prompt) and prompt.endswith("\nStory:")


def test_sentence_is_never_empty_or_quoted_and_all_quoted_stories_are_skipped():
    rng = random.Random(0)
    story = 'Tom ran. "Hi!" said Sue. Then they sat.'
    for _ in range(50):
        sentence = stories.pick_sentence(story, rng)
        assert sentence in {"Tom ran", "Then they sat"}
    quoted = {"story": '"Hi!" said Ben. "Yes!" said Sue.', "instruction": {"words": [], "features": []}}
    assert stories.render(quoted, rng) is None
    given = {"story": '"Hi!" said Ben.', "sentence": "Given", "instruction": {"words": [], "features": []}}
    assert "Sentence: Given" in stories.render(given, rng)


# --------------------------------------------------------------------------- grammar
def kept(records, filtering):
    transform = DatasetSpec(filtering=filtering).compile()
    return {i for i, r in enumerate(records) if transform.keep(r)}


@pytest.mark.parametrize("key,value", [("features", D), ("features", "Dialogue"), ("words", "ball")])
def test_filter_eq_and_neq_partition_the_records(records, key, value):
    yes, no = kept(records, f"{key}={value}"), kept(records, f"{key}!={value}")
    assert yes and no and not yes & no and yes | no == set(range(len(records)))
    assert all(value in records[i]["instruction"][key] for i in yes)


def test_filter_and_is_the_intersection(records):
    both = kept(records, f"features!={D},features={I}")
    assert both == kept(records, f"features!={D}") & kept(records, f"features={I}")
    assert both  # non-trivial


def test_filter_length_keeps_longer_stories_and_its_negation_the_rest(records):
    long, short = kept(records, "length=300"), kept(records, "length!=300")
    assert all(len(records[i]["story"]) > 300 for i in long)
    assert long and short and long | short == set(range(len(records))) and not long & short


@pytest.mark.parametrize(
    "spec,message",
    [
        (dict(filtering="features=twist"), "case-sensitive: did you mean 'Twist'"),
        (dict(filtering="features=Plot"), "unknown feature 'Plot'"),
        (dict(filtering="colour=red"), "unknown key 'colour'"),
        (dict(filtering="length=long"), "whole number"),
        (dict(mix_match="features=Twist"), "KEY=FROM:TO"),
        (dict(adversarial_training="features=Twist:1.5"), r"not in \[0, 1\]"),
        (dict(refusal="features=Twist:often"), "not a number"),
        (dict(instruction_subset="Words,Title"), "unknown line"),
    ],
)
def test_bad_spec_strings_name_the_flag_and_part(spec, message):
    with pytest.raises(SpecError, match=message):
        DatasetSpec(**spec).compile()


def test_mix_match_replaces_every_from_and_leaves_stories_unchanged(records):
    spec = DatasetSpec(mix_match=f"features={I}:{D}")
    transform, rng = spec.compile(), random.Random(0)
    out = [transform.apply(r, rng) for r in records]
    before = Counter(f for r in records for f in r["instruction"]["features"])
    after = Counter(f for r in out for f in r["instruction"]["features"])
    assert after[I] == 0 and before[I] > 0
    assert after[D] == before[D] + before[I]  # TO count rises by the FROM count
    assert [r["story"] for r in out] == [r["story"] for r in records]
    assert Counter(f for r in records for f in r["instruction"]["features"]) == before  # input not mutated


def test_mix_match_accepts_both_syntaxes_and_compat_flag_reproduces_the_noop(records):
    assert (
        DatasetSpec(mix_match=f"features:{I}={D}").compile().swaps
        == DatasetSpec(mix_match=f"features={I}:{D}").compile().swaps
    )
    noop = DatasetSpec(mix_match=f"features={I}:{D}", compat_mixmatch_noop=True).compile()
    assert noop.swaps == []
    assert all(noop.apply(r, random.Random(0)) == r for r in records[:50])


def test_adversarial_and_refusal_at_p1(records):
    adv = DatasetSpec(filtering=f"features!={D}", adversarial_training=f"features={D}:1.0").compile()
    ref = DatasetSpec(filtering=f"features!={D}", refusal=f"features={D}:1.0").compile()
    for i, record in enumerate(records):
        a, r = adv.apply(record, record_rng(0, 1, i)), ref.apply(record, record_rng(0, 1, i))
        if D in record["instruction"]["features"]:
            assert a is None and r is None
            continue
        assert D in a["instruction"]["features"] and a["story"] == record["story"]
        assert not stories.detect(a["story"])[D]  # the prompt asks for it, the story lacks it
        assert (
            r["story"]
            == transforms.REFUSAL_TEMPLATE.format(value=D)
            == f"We are not allowed to write a story with {D} in it, sorry."
        )
        assert D in r["instruction"]["features"]
        if "sentence" not in record and stories.story_sentences(record["story"]):
            assert r["sentence"] in stories.story_sentences(record["story"])  # from the original story


@pytest.mark.parametrize("flag", ["adversarial_training", "refusal"])
def test_p_half_lies_in_the_binomial_interval(records, flag):
    transform = DatasetSpec(filtering=f"features!={D}", **{flag: f"features={D}:0.5"}).compile()
    out = [transform.apply(r, record_rng(7, 1, i)) for i, r in enumerate(records)]
    out = [o for o in out if o is not None]
    k = sum(D in o["instruction"]["features"] for o in out)
    lo, hi = stats.binom.interval(0.999, len(out), 0.5)
    assert lo <= k <= hi, (k, len(out))
    assert 0 < k < len(out)


def test_dataset_names_follow_the_original():
    assert DatasetSpec(filtering="features!=Twist").name() == "F_features_x_Twist_MM_none_AT_none_RF_none_IS_none"
    spec = DatasetSpec(filtering="features!=Twist", adversarial_training="features=Twist:1.0")
    assert spec.name() == "F_features_x_Twist_MM_none_AT_features_Twist_1.0_RF_none_IS_none"
    assert (
        DatasetSpec(mix_match="features=A:B".replace("A", I).replace("B", D)).name().startswith("F_none_MM_features_")
    )


# --------------------------------------------------------------------------- vocabulary and pretokenize
def test_vocabulary_has_the_original_ids_and_leaves_out_the_test_shard(world):
    root, _ = world
    tok = StoryTokenizer(root / "tok.model")
    assert tok.vocab_size == 512 and tok.bos_id == 1
    assert tok.sp.unk_id() == 0 and tok.sp.eos_id() == 2 and tok.sp.id_to_piece(3) == "<0x00>"
    from biasdrift.runtime import read_json

    assert read_json(root / "meta.json")["input_shards"] == ["data01.json", "data02.json"]


def test_word_cache_encodes_exactly_like_whole_texts(world, records):
    root, _ = world
    tok = StoryTokenizer(root / "tok.model")
    texts = [stories.render(r, random.Random(i)) for i, r in enumerate(records[:300])]
    texts = [t for t in texts if t] + ["  leading and  double spaces ", "tab\there", "newline\n\nthen"]
    assert tok.word_cache_is_exact(texts)
    assert np.array_equal(tok.encode_batch(texts, fast=True), tok.encode_batch(texts, fast=False))


@pytest.fixture(scope="module")
def pretokenized(world, tmp_path_factory):
    root, _ = world
    out = tmp_path_factory.mktemp("tokens")
    spec = DatasetSpec(filtering=f"features!={D}", adversarial_training=f"features={D}:0.5")
    metas = {}
    for name, seed, workers in (("a", 0, 2), ("b", 0, 1), ("c", 1, 1)):
        metas[name] = pretokenize(
            root / "shards",
            root / "tok.model",
            spec,
            from_schema(PretokenizeConfig, seed=seed),
            out / name,
            out / f"{name}.json",
            workers=workers,
        )
    return root, out, spec, metas


def test_pretokenized_tokens_are_bos_plus_encoding_of_each_rendered_example(pretokenized):
    root, out, spec, metas = pretokenized
    tok = StoryTokenizer(root / "tok.model")
    for shard_index, shard_path in enumerate(corpus.shard_files(root / "shards")):
        texts, counts = render_shard(corpus.load_shard(shard_path), spec, 0, shard_index, shard_path.name)
        tokens = read_tokens(out / "a" / f"{shard_path.stem}.bin")
        assert tokens.dtype == np.uint16 and int(tokens.max()) < tok.vocab_size
        assert tokens.size == sum(len(tok.sp.encode(t)) + 1 for t in texts)
        assert int((tokens == 1).sum()) == len(texts) == counts["rendered"]
        examples = split_examples(tokens)
        assert len(examples) == len(texts)
        for ids, text in zip(examples[:200], texts[:200], strict=False):
            assert tok.decode(ids) == " ".join(text.split(" "))  # single spaces: exact
    meta = metas["a"]
    assert meta["totals"]["bos"] == meta["totals"]["rendered"] <= meta["totals"]["kept"] <= meta["totals"]["in"]
    assert meta["name"] == spec.name() and meta["seed"] == 0 and len(meta["tokenizer_sha256"]) == 64


def test_same_seed_gives_byte_identical_shards_whatever_the_workers(pretokenized):
    _, out, _, _ = pretokenized
    for name in ("data00.bin", "data01.bin", "data02.bin"):
        assert (out / "a" / name).read_bytes() == (out / "b" / name).read_bytes()
    assert any((out / "a" / n).read_bytes() != (out / "c" / n).read_bytes() for n in ("data00.bin", "data01.bin"))


def test_pretokenize_rejects_a_filter_that_keeps_nothing(world, tmp_path):
    root, _ = world
    spec = DatasetSpec(filtering=f"features={D},features!={D}")
    with pytest.raises(ValueError, match="keeps no example"):
        pretokenize(
            root / "shards",
            root / "tok.model",
            spec,
            from_schema(PretokenizeConfig),
            tmp_path / "t",
            tmp_path / "m.json",
        )
    assert not (tmp_path / "t").exists() and not (tmp_path / "m.json").exists()


def test_synthetic_tarball_bytes_depend_only_on_the_params(tmp_path, monkeypatch):
    """gzip stores a time and a file name in its header: neither may leak into the tarball,
    or a local run and a cluster run would produce different corpus files."""
    params = from_schema(synthetic.SyntheticParams, n_shards=2, stories_per_shard=20, seed=5)
    corpus.synthesize_tarball(params, tmp_path / "a.tar.gz")
    monkeypatch.setattr("time.time", lambda: 2_000_000_000.0)
    corpus.synthesize_tarball(params, tmp_path / "b.tar.gz")
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()


def test_smoke_fixture_has_the_hub_layout_and_every_filter_keeps_examples(tmp_path):
    """The smoke tarball (biasdrift.tinystories.smoke) in the layout of
    roneneldan/TinyStories: top-level dataNN.json members, each a JSON array of records
    with the hub's keys in the hub's order; every paper dataset keeps examples in the
    test shard and in the fine-tuning shard."""
    import json

    import yaml

    from biasdrift.smoke.fixtures import build_dataset_fixture

    info = build_dataset_fixture("TinyStories_all_data.tar.gz", tmp_path / "TinyStories_all_data.tar.gz")
    assert info["stands_for"] == "roneneldan/TinyStories"
    with tarfile.open(tmp_path / "TinyStories_all_data.tar.gz", "r:gz") as tar:
        names = tar.getnames()
        first = json.loads(tar.extractfile(names[0]).read().decode("utf-8"))
    assert names == [f"data{i:02d}.json" for i in range(len(names))] and len(names) >= 5
    assert isinstance(first, list) and all(list(r) == ["story", "instruction", "summary", "source"] for r in first)
    assert all(list(r["instruction"]) == ["prompt:", "words", "features"] for r in first)
    assert {r["source"] for r in first} == {"GPT-4", "GPT-3.5"} and all(r["story"].startswith("\n\n") for r in first)
    assert any(not r["instruction"]["features"] for r in first) and not any("sentence" in r for r in first)
    manifest = corpus.unpack(tmp_path / "TinyStories_all_data.tar.gz", tmp_path / "shards", tmp_path / "m.json")
    assert manifest["records"] == info["records"]
    # marker rules and labels disagree somewhere, as on real stories
    assert min(manifest["detector_agreement"].values()) < 1.0
    repo = Path(__file__).resolve().parents[2]
    paper = yaml.safe_load((repo / "config/paper/tinystories.yaml").read_text())["studies"]["tinystories"]
    shards = corpus.shard_files(tmp_path / "shards")
    for name, values in paper["datasets"].items():
        spec = transforms.spec_from_dict(values, name).compile()
        for shard in (shards[0], shards[-1]):  # test, fine-tuning
            kept = [r for r in corpus.load_shard(shard) if spec.keep(r)]
            assert kept, (name, shard.name)


def test_a_local_tarball_is_the_corpus_of_a_path_config():
    from biasdrift.tinystories.workflow import corpus_tarball

    assert corpus_tarball({"studies": {"tinystories": {"corpus": {"path": "/data/ts.tar.gz"}}}}, None) == (
        "/data/ts.tar.gz"
    )
    assert corpus_tarball({"studies": {"tinystories": {"corpus": {"hub": {}}}}}, None).endswith("/hub.tar.gz")
