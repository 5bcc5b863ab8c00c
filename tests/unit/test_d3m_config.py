"""studies.d3m config: defaults, and every bad reference fails validation naming its key."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from biasdrift import config as bdc
from biasdrift.config import from_schema
from biasdrift.d3m import workflow as wf

REPO = Path(__file__).resolve().parents[2]
SCHEMA = bdc.load_schema(REPO / "config" / "schema.yaml")


def tiny():
    return yaml.safe_load((REPO / "tests/config/tiny.yaml").read_text())


def validate(cfg):
    return bdc.validate_config(copy.deepcopy(cfg), SCHEMA)


def test_defaults_are_filled_and_targets_listed():
    cfg = validate(tiny())
    d3m = cfg["studies"]["d3m"]
    assert d3m["query_split"] == "val" and d3m["grouping"] == "cell"
    assert d3m["trak"]["trak"]["projector"] == "auto" and d3m["influence"]["if"]["strategy"] == "ekfac"
    assert d3m["worlds"]["synth"]["imbalance"]["biased_ratio"] == 0.25
    targets = wf.targets(cfg)
    assert "results/d3m/synth/summary.csv" in targets
    assert "results/d3m/synth/plots/alignment_scatter.svg" in targets
    runs = wf.run_metrics(cfg, "synth")
    assert "results/d3m/synth/cf/random/k0.1/seed0/metrics.json" in runs
    assert "results/d3m/synth/cf/heuristic-if/seed0/metrics.json" in runs
    assert "results/d3m/synth/base/seed0/metrics.json" in runs


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda d: d.update(model="no-such-model"), "studies.d3m.model: unknown model alias"),
        (lambda d: d["worlds"]["synth"].update(dataset="nope"), "studies.d3m.worlds.synth.dataset"),
        (lambda d: d["worlds"]["synth"].update(prepare="toxigen"), "studies.d3m.worlds.synth.test_dataset"),
        (lambda d: d["removal"].update(methods=["if", "tarck"]), "studies.d3m.removal.methods[1]"),
        (lambda d: d["removal"].update(baselines=["heuristic-x"]), "studies.d3m.removal.baselines[0]"),
        (lambda d: d.update(score_seed=7), "studies.d3m.score_seed"),
        (lambda d: d["trak"].update(random={}), "reserved"),
        (
            lambda d: (
                d["finetune"].update(max_steps=-1, epochs=2),
                d["trak"]["trak"]["checkpoints"].update(epochs=[9]),
            ),
            "checkpoints.epochs",
        ),
        (lambda d: d["removal"].update(unit="count", k=[10, 5000]), "studies.d3m.removal.k[1]"),
        (lambda d: d["influence"]["if"].update(scope="everything"), "studies.d3m.influence.if.scope"),
        (lambda d: d.update(query_split="train"), "studies.d3m.query_split"),
        (lambda d: d["trak"]["trak"].update(proj_dimm=3), "proj_dimm: unknown key"),
        (lambda d: d["worlds"].update(sweep=d["worlds"]["synth"]), "studies.d3m.worlds.sweep: the name is taken"),
    ],
)
def test_bad_d3m_config_names_the_key(edit, named):
    cfg = tiny()
    edit(cfg["studies"]["d3m"])
    with pytest.raises(bdc.ConfigError) as err:
        validate(cfg)
    assert named in str(err.value)


def test_fraction_k_above_one_fails_in_the_schema_or_before_training():
    cfg = tiny()
    cfg["studies"]["d3m"]["removal"]["k"] = [1.5]
    # a fraction of 1.5 passes the schema (counts are numbers too) but not the checks
    # (and every retrain job checks k again before it loads a model)
    with pytest.raises(bdc.ConfigError, match=r"removal.k\[0\]"):
        validate(cfg)


def test_paper_config_validates_and_names_its_worlds():
    cfg = bdc.validate_config(yaml.safe_load((REPO / "config/paper/d3m.yaml").read_text()), SCHEMA)
    assert set(wf.worlds(cfg)) == {"toxigen", "hatexplain"}
    assert cfg["studies"]["d3m"]["worlds"]["toxigen"]["test_dataset"] == "toxigen-annotated"


# --------------------------------------------------------------------------- TRAK per world
N_TRAIN_TINY = 60 + 6 + 6 * 40  # tiny.yaml's d3m-synth train cells


def paper():
    return yaml.safe_load((REPO / "config/paper/d3m.yaml").read_text())


class Wildcards:
    def __init__(self, **kwargs):
        self.__dict__.update(kwargs)


def test_proj_dim_not_below_the_training_rows_fails_at_config_time_naming_world_and_key():
    """X^T X of TRAK features has rank <= n_train: proj_dim >= n_train with lambda_reg 0
    is singular. Where the config fixes n_train, snakemake -n says so."""
    cfg = tiny()
    cfg["studies"]["d3m"]["trak"]["trak"].update(proj_dim=N_TRAIN_TINY, ridge=0.0)  # the tiny config has a ridge
    with pytest.raises(bdc.ConfigError) as err:
        validate(cfg)
    message = str(err.value)
    assert "studies.d3m.trak.trak on world 'synth'" in message and "studies.d3m.worlds.synth.trak" in message
    assert f"proj_dim {N_TRAIN_TINY} >= {N_TRAIN_TINY} training rows" in message
    cfg["studies"]["d3m"]["trak"]["trak"]["proj_dim"] = N_TRAIN_TINY - 1
    validate(cfg)  # one below is fine
    # the per-world remedies: a smaller proj_dim, or a ridge term
    for override in ({"proj_dim": 128}, {"lambda_reg": 1e-3}, {"ridge": 1e-3}):
        cfg = tiny()
        cfg["studies"]["d3m"]["trak"]["trak"].update(proj_dim=4096, ridge=0.0)
        cfg["studies"]["d3m"]["worlds"]["synth"]["trak"] = override
        validated = validate(cfg)
        spec = wf.score_d3m_trak(validated, Wildcards(world="synth", method="trak"))["trak"]
        assert {k: spec[k] for k in override} == override


def test_world_trak_overrides_reach_only_the_scoring_params():
    cfg = bdc.validate_config(paper(), SCHEMA)
    hx, tg = (wf.score_d3m_trak(cfg, Wildcards(world=w, method="trak"))["trak"] for w in ("hatexplain", "toxigen"))
    assert hx["proj_dim"] == 1024 and tg["proj_dim"] == 2048 and hx["projector"] == tg["projector"] == "cuda"
    assert hx["lambda_reg"] == 0.0  # null overrides keep the method's value
    # a world's TRAK overrides are not preparation settings (no re-preparation on a change)
    prepare = wf.prepare_d3m_world(cfg, Wildcards(world="hatexplain"))
    assert "trak" not in prepare and "proj_dim" not in str(prepare)
    assert wf.prepare_d3m_world(cfg, Wildcards(world="toxigen"))["settings"]["train_per_cell"] == 400


def test_paper_training_rows_known_from_the_config():
    cfg = bdc.validate_config(paper(), SCHEMA)
    worlds = cfg["studies"]["d3m"]["worlds"]
    assert wf.train_rows(cfg, worlds["toxigen"]) == 9 * 800 + 4 * (400 + 100)  # the thesis's 9,200
    assert wf.train_rows(cfg, worlds["hatexplain"]) is None  # the smallest cell decides: after preparation
    raw = paper()
    raw["studies"]["d3m"]["worlds"]["toxigen"]["trak"] = {"proj_dim": 9200}
    with pytest.raises(bdc.ConfigError, match=r"trak\.trak on world 'toxigen'.*proj_dim 9200 >= 9200"):
        bdc.validate_config(raw, SCHEMA)


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (
            lambda c: c["runtime"].update(device="cpu"),
            "studies.d3m.trak.trak.projector: cuda (fast_jl) cannot run with runtime.device cpu",
        ),
        (
            lambda c: c["studies"]["d3m"]["worlds"]["hatexplain"]["imbalance"].update(biased_groups=["african"]),
            "studies.d3m.worlds.hatexplain.imbalance.biased_groups: ['african'] not among",
        ),
        (
            lambda c: c["studies"]["d3m"]["worlds"]["toxigen"]["trak"].update(proj_dimm=3),
            "proj_dimm",
        ),
    ],
)
def test_bad_paper_trak_settings_name_the_key(edit, named):
    raw = paper()
    raw["studies"]["d3m"]["worlds"]["toxigen"]["trak"] = {}
    edit(raw)
    with pytest.raises(bdc.ConfigError) as err:
        bdc.validate_config(raw, SCHEMA)
    assert named in str(err.value)


def test_base_models_snapshot_only_the_epochs_of_their_trak_ensembles():
    cfg = bdc.validate_config(paper(), SCHEMA)
    assert wf.snapshot_epochs(cfg, Wildcards(world="toxigen", seed="1")) == [9, 10]
    raw = paper()
    raw["studies"]["d3m"]["trak"]["trak"]["checkpoints"] = {"seeds": [0], "epochs": [10]}
    cfg = bdc.validate_config(raw, SCHEMA)
    assert wf.snapshot_epochs(cfg, Wildcards(world="toxigen", seed="0")) == [10]
    assert wf.snapshot_epochs(cfg, Wildcards(world="toxigen", seed="2")) == []
    demo = validate(tiny())  # no epochs: the final weights only
    demo["studies"]["d3m"]["trak"]["trak"]["checkpoints"]["epochs"] = []
    assert wf.snapshot_epochs(demo, Wildcards(world="synth", seed="0")) == []


def test_a_generated_world_with_other_words_than_the_tokenizers_fails_naming_the_fix():
    """A world drawn with another seed has words the demo tokenizer never saw (each falls
    apart into sub-word pieces, and texts are truncated): the config check names the key."""
    cfg = yaml.safe_load((REPO / "config/config.yaml").read_text())
    other = copy.deepcopy(cfg["datasets"]["d3m-synth"])
    other["generate"]["seed"] = 5
    cfg["datasets"]["d3m-other"] = other
    cfg["studies"]["d3m"]["worlds"]["other"] = {"prepare": "table", "dataset": "d3m-other"}
    with pytest.raises(bdc.ConfigError) as err:
        validate(cfg)
    assert "studies.d3m.worlds.other: dataset 'd3m-other' draws its words with seed 5" in str(err.value)
    assert "datasets.d3m-other.generate.params.vocab_seed: 0" in str(err.value)
    other["generate"]["params"]["vocab_seed"] = 0
    validate(cfg)  # the sweep's way: other rows, the same words
    sweep = yaml.safe_load((REPO / "config/sweeps/d3m.yaml").read_text())
    assert all(d["generate"]["params"]["vocab_seed"] == 0 for d in sweep["datasets"].values())


def test_words_of_another_seed_fall_apart_under_a_tokenizer_of_the_demo_words(tmp_path):
    """Why the check above exists: a WordPiece vocabulary learned on one seed's world keeps
    each of its words whole and splits another seed's words into pieces, unless the other
    world shares the words (vocab_seed)."""
    from transformers import AutoTokenizer

    from biasdrift.corpora import generate
    from biasdrift.tokenization import TokenizerConfig, train_tokenizer

    params = {"test_per_cell": 20}  # the demo's sizes otherwise
    train_tokenizer(
        generate("d3m_synthetic", params, 0)["text"].tolist(),
        from_schema(TokenizerConfig, kind="wordpiece", vocab_size=1000, lowercase=True, min_frequency=1),
        tmp_path / "tok",
    )
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "tok")

    def pieces_per_word(frame):
        texts = frame["text"].head(200).tolist()
        return sum(len(tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts) / (5 * len(texts))

    assert pieces_per_word(generate("d3m_synthetic", params, 7)) > 2
    assert pieces_per_word(generate("d3m_synthetic", {**params, "vocab_seed": 0}, 7)) == 1
    assert pieces_per_word(generate("d3m_synthetic", params, 0)) == 1
