"""tinystories: config checks made while Snakemake parses (snakemake -n runs exactly
:func:`biasdrift.config.validate_config`): typed model overrides, windows that fit the
context, and the paper tier's judge."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from biasdrift import config as bdc
from biasdrift.tinystories.presets import LINEAR_LAYERS, OVERRIDE_TYPES, PRESETS

REPO = Path(__file__).resolve().parents[2]
SCHEMA = bdc.load_schema(REPO / "config" / "schema.yaml")
PAPER = yaml.safe_load((REPO / "config" / "paper" / "tinystories.yaml").read_text())
DEMO = yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def problems(cfg: dict) -> str:
    with pytest.raises(bdc.ConfigError) as err:
        bdc.validate_config(cfg, SCHEMA)
    return str(err.value)


def paper(edit=None) -> dict:
    cfg = copy.deepcopy(PAPER)
    if edit:
        edit(cfg["studies"]["tinystories"])
    return cfg


# --------------------------------------------------------------------------- overrides
def test_the_schema_types_exactly_the_overridable_model_args():
    import biasdrift.tinystories.architectures as arch

    props = SCHEMA["$defs"]["llama2c_overrides"]["properties"]
    assert set(props) == set(OVERRIDE_TYPES) == set(arch.OVERRIDABLE)
    for key, (types, _) in OVERRIDE_TYPES.items():
        declared = props[key]["type"]
        assert sorted(declared if isinstance(declared, list) else [declared]) == sorted(types), key
    # and the types are those of Llama2cConfig's fields
    python = {"int": ["integer"], "int | None": ["integer", "null"], "float": ["number"],
              "list[str] | None": ["array", "null"]}  # fmt: skip
    for key, (types, _) in OVERRIDE_TYPES.items():
        assert python[arch.Llama2cConfig.__annotations__[key]] == list(types), key
    assert props["scaled_init"]["items"]["enum"] == list(LINEAR_LAYERS)


@pytest.mark.parametrize(
    "overrides,message",
    [
        ({"n_layer": 2}, "studies.tinystories.model.overrides.n_layer: unknown key (did you mean 'n_layers'?)"),
        ({"dim": "wide"}, "studies.tinystories.model.overrides.dim: 'wide' is not of type 'integer'"),
        ({"dropout": "0.1"}, "studies.tinystories.model.overrides.dropout: '0.1' is not of type 'number'"),
        ({"n_heads": 2.5}, "studies.tinystories.model.overrides.n_heads: 2.5 is not of type 'integer'"),
        ({"scaled_init": ["w4"]}, "studies.tinystories.model.overrides.scaled_init[0]: 'w4' is not one of"),
        (["dim=256"], "studies.tinystories.model.overrides: ['dim=256'] is not of type 'object', 'null'"),
    ],
)
def test_a_bad_override_fails_naming_the_key(overrides, message):
    cfg = paper(lambda s: s["model"].update(overrides=overrides))
    assert message in problems(cfg)


def test_head_shapes_and_vocab_are_checked_after_the_preset():
    cfg = paper(lambda s: s["model"]["overrides"].update(n_kv_heads=5, vocab_size=4096))
    msg = problems(cfg)
    assert "studies.tinystories.model.overrides.n_kv_heads: n_kv_heads=5 does not divide n_heads=12" in msg
    assert "overrides.vocab_size: 4096 differs from studies.tinystories.vocab.vocab_size=8192" in msg
    cfg = paper(lambda s: s["model"]["overrides"].update(dim=100))
    assert "studies.tinystories.model.overrides.dim: dim=100 is not divisible by n_heads=12" in problems(cfg)


# --------------------------------------------------------------------------- block size
def test_block_size_beyond_the_overridden_context_names_both_keys():
    cfg = paper(lambda s: s.update(block_size=1024))
    msg = problems(cfg)
    assert "studies.tinystories.block_size: 1024 exceeds the model's max_seq_len=512" in msg
    assert "(studies.tinystories.model.overrides.max_seq_len)" in msg


def test_block_size_beyond_the_preset_context_names_the_preset():
    def edit(s):
        s["model"]["overrides"].pop("max_seq_len")

    msg = problems(paper(edit))
    assert PRESETS["base91M"]["max_seq_len"] < PAPER["studies"]["tinystories"]["block_size"]
    assert "studies.tinystories.block_size: 512 exceeds the model's max_seq_len=256" in msg
    assert "studies.tinystories.model.preset (base91M: max_seq_len=256)" in msg


def test_a_block_size_that_fits_passes():
    bdc.validate_config(paper(lambda s: s.update(block_size=512)), SCHEMA)


# --------------------------------------------------------------------------- judge
def test_the_paper_config_rates_features_with_a_judge_model():
    cfg = bdc.validate_config(paper(), SCHEMA)
    judge = cfg["studies"]["tinystories"]["evaluation"]["judge"]
    assert judge["model"] in cfg["models"] and "hf_id" in cfg["models"][judge["model"]]
    from biasdrift.tinystories.workflow import judge as judge_param

    param = judge_param(cfg, None)
    assert param["ref"]["hf_id"] == cfg["models"][judge["model"]]["hf_id"]
    assert "instruction" not in param  # null = the built-in question


def test_a_paper_config_without_a_judge_fails_unless_markers_are_opted_into():
    cfg = paper(lambda s: s["evaluation"].pop("judge"))
    msg = problems(cfg)
    assert "studies.tinystories.evaluation.judge: needed (tier 'paper', corpus 'hub')" in msg
    assert "studies.tinystories.evaluation.marker_detector_on_real_stories: true" in msg

    def opt_in(s):
        s["evaluation"].pop("judge")
        s["evaluation"]["marker_detector_on_real_stories"] = True

    bdc.validate_config(paper(opt_in), SCHEMA)


def test_the_demo_tier_keeps_the_marker_detector():
    cfg = bdc.validate_config(copy.deepcopy(DEMO), SCHEMA)
    assert cfg["studies"]["tinystories"]["evaluation"]["judge"] is None


def test_a_judge_must_name_a_model_and_a_usable_question():
    msg = problems(paper(lambda s: s["evaluation"]["judge"].update(model="qwen-judge")))
    assert "studies.tinystories.evaluation.judge.model: unknown model alias 'qwen-judge'" in msg
    msg = problems(paper(lambda s: s["evaluation"]["judge"].update(instruction="Is it good? {story}")))
    assert "studies.tinystories.evaluation.judge.instruction: must contain {question}" in msg
