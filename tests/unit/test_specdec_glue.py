"""The study's config section and workflow glue: defaults, cross-reference checks that name
the key, condition model states, and params that change only when they should."""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from biasdrift import config as bdc
from biasdrift.specdec import workflow as wf

REPO = Path(__file__).resolve().parents[2]
SCHEMA = bdc.load_schema(REPO / "config" / "schema.yaml")


def demo() -> dict:
    return copy.deepcopy(yaml.safe_load((REPO / "config" / "config.yaml").read_text()))


def problems(cfg: dict) -> str:
    with pytest.raises(bdc.ConfigError) as err:
        bdc.validate_config(cfg, SCHEMA)
    return str(err.value)


def test_demo_and_paper_sections_validate_with_defaults(monkeypatch):
    monkeypatch.chdir(REPO)
    cfg = bdc.validate_config(demo(), SCHEMA)
    s = cfg["studies"]["specdec"]
    assert set(s["conditions"]) == {"base", "ft", "main_only_ft", "asst_only_ft"}
    assert s["finetune"]["precision"] == "auto" and s["decode"]["hf_check_prompts"] == 20
    paper = bdc.validate_config(yaml.safe_load((REPO / "config/paper/specdec.yaml").read_text()), SCHEMA)
    p = paper["studies"]["specdec"]
    assert p["main"] == "gpt2" and p["assistant"] == "distilgpt2" and p["toxicity"]["classifier"] == "roberta-hate"
    assert "ft_e1" in p["conditions"]


def test_main_and_assistant_must_share_a_tokenizer(monkeypatch):
    monkeypatch.chdir(REPO)
    cfg = demo()
    cfg["tokenizers"]["other-bpe"] = {"kind": "bpe", "corpus": "specdec-world", "vocab_size": 400}
    cfg["models"]["specdec-assistant"]["build"] = {
        **cfg["models"]["specdec-assistant"]["build"],
        "tokenizer": "other-bpe",
    }
    assert "studies.specdec.assistant: model 'specdec-assistant' uses tokenizer 'other-bpe'" in problems(cfg)


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        (("assistant",), "nope", "studies.specdec.assistant: unknown model alias 'nope'"),
        (("main",), "d3m-bert", "studies.specdec.main: model 'd3m-bert' is a bert (masked LM)"),
        (
            ("templates",),
            ["specdec-templates", "honest"],
            "studies.specdec.templates[1]: unknown dataset alias 'honest'",
        ),
        (("finetune_data", "dataset"), "ag-news", "studies.specdec.finetune_data.dataset: unknown dataset alias"),
        (("contrast",), ["female", "queer"], "studies.specdec.contrast: ['queer'] not among categories"),
        (("reference_condition",), "before", "studies.specdec.reference_condition: 'before' is not a condition"),
        (
            ("conditions", "late"),
            {"main": "epoch3", "assistant": "base"},
            "studies.specdec.conditions.late.main: 'epoch3' but finetune.epochs is 2",
        ),
        (
            ("conditions", "odd"),
            {"main": "epoch", "assistant": "base"},
            "studies.specdec.conditions.odd.main: 'epoch' does not match",
        ),
        (("toxicity", "lexicon"), None, "studies.specdec.toxicity.lexicon: scorer 'lexicon' needs a lexicon file"),
        (
            ("toxicity", "scorer"),
            "classifier",
            "studies.specdec.toxicity.classifier: scorer 'classifier' needs a model alias",
        ),
        (("decode", "k"), [0], "studies.specdec.decode.k[0]: 0 is less than the minimum of 1"),
        (("decode", "kk"), [1], "studies.specdec.decode.kk: unknown key (did you mean 'k'?)"),
        (("finetune", "early_stopping_patience"), 2, "studies.specdec.finetune.early_stopping_patience: must be null"),
    ],
)
def test_bad_sections_name_the_key(monkeypatch, path, value, named):
    monkeypatch.chdir(REPO)
    cfg = demo()
    node = cfg["studies"]["specdec"]
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = value
    if path == ("finetune", "early_stopping_patience"):
        node["eval_steps"] = 5
    assert named in problems(cfg)


def test_condition_states_point_at_the_right_weights(monkeypatch):
    monkeypatch.chdir(REPO)
    cfg = bdc.validate_config(demo(), SCHEMA)
    cfg["studies"]["specdec"]["conditions"]["e1"] = {"main": "epoch1", "assistant": "base_bf16"}
    pair = wf.pair_of(cfg, "e1")
    assert pair["main"]["ref"]["path"] == "results/specdec/finetune/main/epochs/epoch_1"
    assert pair["assistant"]["state"] == "base_bf16" and pair["assistant"]["ref"]["source"] == "build"
    inputs = wf.condition_inputs(cfg, SimpleNamespace(condition="e1"))
    assert inputs == ["results/models/specdec-assistant/model", "results/specdec/finetune/main/epochs"]
    assert wf.condition_inputs(cfg, SimpleNamespace(condition="ft")) == [
        "results/specdec/finetune/assistant/model",
        "results/specdec/finetune/main/model",
    ]
    with pytest.raises(bdc.ConfigError, match="no condition 'zzz'"):
        wf.pair_of(cfg, "zzz")


def test_decode_params_do_not_change_when_another_k_is_added(monkeypatch):
    monkeypatch.chdir(REPO)
    cfg = bdc.validate_config(demo(), SCHEMA)
    wc = SimpleNamespace(condition="base", view="clean_binary", k="3", n="10")
    before = repr(wf.measure_specdec_acceptance(cfg, wc))
    cfg["studies"]["specdec"]["decode"]["k"] = [3, 5]
    cfg["studies"]["specdec"]["decode"]["n"] = [10, 20]
    assert repr(wf.measure_specdec_acceptance(cfg, wc)) == before
    assert wf.measure_specdec_acceptance(cfg, wc)["decode"]["k"] == 3
    targets = wf.targets(cfg)
    assert "results/specdec/stats/clean_binary/k5_n20/disparity.csv" in targets
    assert "results/specdec/plots/legacy_all/n20/toxicity.svg" in targets
    assert wf.toxicity_decode_map(cfg, SimpleNamespace(view="clean_binary", n="20"))["ft"].endswith("k3_n20.parquet")


def test_wildcard_patterns_follow_the_conditions(monkeypatch):
    monkeypatch.chdir(REPO)
    cfg = bdc.validate_config(demo(), SCHEMA)
    patterns = wf.wildcard_patterns(cfg)
    assert set(patterns["condition"].split("|")) == {"base", "ft", "main_only_ft", "asst_only_ft"}
    cfg["studies"] = {}
    assert wf.wildcard_patterns(cfg)["condition"] == "(?!)"
