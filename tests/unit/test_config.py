"""Config schema and validation: every bad config fails naming the key."""

from __future__ import annotations

import copy
from dataclasses import MISSING, fields
from pathlib import Path

import pytest
import yaml

from biasdrift import config as bdc
from biasdrift.config import from_schema
from biasdrift.corpora import NeutralTextParams
from biasdrift.models import ModelSize
from biasdrift.pretrain import PretrainConfig
from biasdrift.tokenization import TokenizerConfig
from biasdrift.training import TrainConfig
from tests.conftest import PAPER_PLACEHOLDERS

REPO = Path(__file__).resolve().parents[2]
SCHEMA = bdc.load_schema(REPO / "config" / "schema.yaml")
CONFIGS = sorted([REPO / "config" / "config.yaml", REPO / "tests" / "config" / "tiny.yaml"]) + sorted(
    (REPO / "config" / "paper").glob("*.yaml")
)


def demo_only() -> dict:
    return copy.deepcopy(yaml.safe_load((REPO / "config" / "config.yaml").read_text()))


def demo() -> dict:
    """The demo config plus the CI config's general-purpose foundation aliases (neutral-text,
    neutral-bpe / -wordpiece, tiny-gpt2 / -llama / -bert), which the schema tests edit: the demo
    itself defines only what its studies use."""
    cfg = demo_only()
    tiny = yaml.safe_load((REPO / "tests" / "config" / "tiny.yaml").read_text())
    cfg["datasets"]["neutral-text"] = tiny["datasets"]["neutral-text"]
    for name in ("neutral-bpe", "neutral-wordpiece"):
        cfg["tokenizers"][name] = tiny["tokenizers"][name]
    for name in ("tiny-gpt2", "tiny-llama", "tiny-bert"):
        cfg["models"][name] = tiny["models"][name]
    return cfg


def foundation_demo() -> dict:
    """The demo config without the studies and their (study-prefixed) aliases."""
    cfg = demo()
    studies = ("circuits", "politune", "specdec", "d3m", "tinystories")
    for section in ("datasets", "tokenizers", "models"):
        cfg[section] = {k: v for k, v in cfg[section].items() if not k.startswith(studies)}
    cfg["studies"] = {}
    return cfg


def problems_of(cfg: dict) -> str:
    with pytest.raises(bdc.ConfigError) as err:
        bdc.validate_config(cfg, SCHEMA)
    return str(err.value)


def with_paper_placeholders(cfg: dict, tmp_path) -> dict:
    """Point datasets at files the user supplies (PAPER_PLACEHOLDERS) at stand-ins in tmp_path."""
    for spec in cfg.get("datasets", {}).values():
        if spec.get("path") in PAPER_PLACEHOLDERS:
            standin = tmp_path / spec["path"]
            standin.parent.mkdir(parents=True, exist_ok=True)
            standin.write_text(PAPER_PLACEHOLDERS[spec["path"]])
            spec["path"] = str(standin)
    return cfg


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_validate(path, tmp_path):
    cfg = with_paper_placeholders(yaml.safe_load(path.read_text()), tmp_path)
    bdc.validate_config(cfg, SCHEMA)


def test_paper_configs_cover_every_study_with_hub_ids(tmp_path):
    seen = set()
    for path in (REPO / "config" / "paper").glob("*.yaml"):
        cfg = bdc.validate_config(with_paper_placeholders(yaml.safe_load(path.read_text()), tmp_path), SCHEMA)
        assert cfg["tier"] == "paper"
        assert list(cfg["studies"]) == [path.stem], f"{path.name} should run exactly its own study"
        seen.add(path.stem)
        assert not bdc.aliases_by_source(cfg, "models", "path"), "paper configs load hub ids, not local paths"
    assert seen == set(bdc.STUDIES)


def test_defaults_are_filled():
    cfg = bdc.validate_config(demo(), SCHEMA)
    gpt2 = cfg["models"]["tiny-gpt2"]
    assert gpt2["trust_remote_code"] is False
    assert gpt2["build"]["pretrain"]["grad_accum"] == 1
    assert gpt2["build"]["size"]["kv_heads"] is None
    assert cfg["runtime"] == {"device": "auto", "deterministic": False}


def test_typo_names_the_key_and_suggests():
    cfg = demo()
    cfg["models"]["tiny-gpt2"]["build"]["size"]["layres"] = 3
    msg = problems_of(cfg)
    assert "models.tiny-gpt2.build.size.layres: unknown key (did you mean 'layers'?)" in msg


def test_top_level_typo():
    cfg = demo()
    cfg["modles"] = cfg.pop("models")
    assert "modles: unknown key (did you mean 'models'?)" in problems_of(cfg)


def test_wrong_type_names_the_key():
    cfg = demo()
    cfg["models"]["tiny-llama"]["build"]["size"] = {**cfg["models"]["tiny-llama"]["build"]["size"], "layers": "two"}
    assert "models.tiny-llama.build.size.layers: 'two' is not of type 'integer'" in problems_of(cfg)


def test_bad_enum_names_the_key():
    cfg = demo()
    cfg["models"]["tiny-gpt2"]["build"]["arch"] = "gpt3"
    assert "models.tiny-gpt2.build.arch: 'gpt3' is not one of" in problems_of(cfg)


@pytest.mark.parametrize(
    ("section", "alias", "key", "where"),
    [
        ("models", "tiny-bert", "tokenizer", "models.tiny-bert.build.tokenizer: unknown tokenizer alias 'nope'"),
        ("models", "tiny-gpt2", "corpus", "models.tiny-gpt2.build.corpus: unknown dataset alias 'nope'"),
        ("tokenizers", "neutral-bpe", "corpus", "tokenizers.neutral-bpe.corpus: unknown dataset alias 'nope'"),
    ],
)
def test_unknown_alias_names_the_key(section, alias, key, where):
    cfg = demo()
    target = cfg[section][alias]["build"] if section == "models" else cfg[section][alias]
    target[key] = "nope"
    assert where in problems_of(cfg)


def test_require_alias_names_the_place():
    cfg = bdc.validate_config(demo(), SCHEMA)
    with pytest.raises(bdc.ConfigError, match=r"studies.x.models\[0\]: unknown model alias 'tiny-gtp2' \(did you mean"):
        bdc.require_alias(cfg, "models", "tiny-gtp2", "studies.x.models[0]")


def test_alias_must_be_a_wildcard_value():
    cfg = demo()
    cfg["models"]["openai-community/gpt2"] = {"hf_id": "openai-community/gpt2", "revision": "main"}
    assert "alias 'openai-community/gpt2' is not allowed" in problems_of(cfg)


@pytest.mark.parametrize(
    "spec",
    [{}, {"hf_id": "openai-community/gpt2", "path": "/tmp/x"}],
    ids=["none", "two"],
)
def test_model_needs_exactly_one_source(spec):
    cfg = demo()
    cfg["models"]["odd"] = spec
    assert "models.odd: give exactly one of hf_id, path, build" in problems_of(cfg)


def test_token_in_config_is_rejected():
    cfg = demo()
    cfg["models"]["hub"] = {"hf_id": "openai-community/gpt2", "description": "hf_" + "a1B2c3D4e5F6g7H8i9J0kLmN"}
    assert "models.hub.description: looks like a Hugging Face token" in problems_of(cfg)
    cfg = demo()
    cfg["models"]["tiny-gpt2"]["token"] = "x"
    assert "models.tiny-gpt2.token: tokens are not allowed in the config" in problems_of(cfg)


def test_attention_layout_checks():
    cfg = demo()
    cfg["models"]["tiny-llama"]["build"]["size"] = {**cfg["models"]["tiny-llama"]["build"]["size"], "kv_heads": 3}
    assert "models.tiny-llama.build.size.kv_heads: 3 does not divide heads=4" in problems_of(cfg)
    cfg = demo()
    cfg["models"]["tiny-gpt2"]["build"]["size"] = {**cfg["models"]["tiny-gpt2"]["build"]["size"], "kv_heads": 1}
    assert "grouped-query attention needs arch llama" in problems_of(cfg)


def test_block_size_must_fit_the_context():
    cfg = demo()
    cfg["models"]["tiny-gpt2"]["build"]["pretrain"] = {"block_size": 256}
    assert "models.tiny-gpt2.build.pretrain.block_size: 256 exceeds size.context=64" in problems_of(cfg)


def test_all_problems_are_reported_at_once():
    cfg = demo()
    cfg["seeds"] = ["zero"]
    cfg["tier"] = "production"
    msg = problems_of(cfg)
    assert "seeds[0]: 'zero' is not of type 'integer'" in msg
    assert "tier: 'production' is not one of ['demo', 'paper']" in msg


# --------------------------------------------------------------------------- schema hygiene
def _walk(schema: dict, path: str = ""):
    for name, sub in schema.get("properties", {}).items():
        yield f"{path}.{name}".lstrip("."), sub
        if isinstance(sub, dict):
            yield from _walk(sub, f"{path}.{name}")
    for name, sub in schema.get("$defs", {}).items():
        if isinstance(sub, dict) and name != "train_fields":  # train_fields is a property map
            yield f"$defs.{name}", sub
            yield from _walk(sub, f"$defs.{name}")


def test_every_key_is_typed_and_described():
    missing = []
    for where, sub in _walk(SCHEMA):
        if not isinstance(sub, dict) or "$ref" in sub:
            continue
        if "description" not in sub:
            missing.append(f"{where}: no description")
        if not ({"type", "enum", "const"} & set(sub)):
            missing.append(f"{where}: no type")
    assert not missing, "\n".join(missing)


def test_objects_reject_unknown_keys():
    loose = [
        where
        for where, sub in _walk(SCHEMA)
        if isinstance(sub, dict) and sub.get("type") == "object" and "properties" in sub
        if sub.get("additionalProperties") is not False
    ]
    assert not loose, f"objects without additionalProperties: false: {loose}"


@pytest.mark.parametrize(
    ("cls", "props"),
    [
        (TrainConfig, SCHEMA["$defs"]["train_fields"]),
        (PretrainConfig, SCHEMA["$defs"]["pretrain"]["properties"]),
        (ModelSize, SCHEMA["$defs"]["size"]["properties"]),
        (NeutralTextParams, SCHEMA["$defs"]["neutral_text_params"]["properties"]),
    ],
    ids=["train", "pretrain", "size", "neutral_text"],
)
def test_the_dataclasses_have_the_schemas_fields_and_its_defaults_only(cls, props):
    """The schema and the package's dataclasses describe the same fields; the defaults
    live in the schema only (from_schema reads them)."""
    assert {f.name for f in fields(cls)} == set(props)
    for f in fields(cls):
        assert f.default is MISSING and f.default_factory is MISSING, f"{cls.__name__}.{f.name} has a default"
    built = from_schema(cls)
    assert all(getattr(built, n) == p["default"] for n, p in props.items() if "default" in p)


def test_tokenizer_schema_matches_dataclass():
    props = SCHEMA["$defs"]["tokenizer"]["properties"]
    for f in fields(TokenizerConfig):
        assert f.name in props and f.default is MISSING
    assert from_schema(TokenizerConfig, kind="bpe").vocab_size == props["vocab_size"]["default"]


# --------------------------------------------------------------------------- resolution
def test_model_refs_carry_no_token(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secretsecretsecretsecret")
    cfg = bdc.validate_config(yaml.safe_load((REPO / "config/paper/circuits.yaml").read_text()), SCHEMA)
    ref = bdc.model_ref(cfg, "gpt2-small")
    assert ref == {
        "alias": "gpt2-small",
        "source": "hf_id",
        "hf_id": "openai-community/gpt2",
        "revision": "main",
        "trust_remote_code": False,
    }
    assert bdc.model_inputs(cfg, "gpt2-small") == ["results/models/gpt2-small/download.json"]


def test_build_refs_point_at_the_pretrained_directory():
    cfg = bdc.validate_config(demo(), SCHEMA)
    ref = bdc.model_ref(cfg, "tiny-bert")
    assert ref["source"] == "build" and ref["arch"] == "bert"
    assert ref["path"] == "results/models/tiny-bert/model" == bdc.model_inputs(cfg, "tiny-bert")[0]


def test_final_outputs_of_the_demo():
    cfg = bdc.validate_config(demo_only(), SCHEMA)
    out = bdc.final_outputs(cfg)
    for alias in ("circuits-gpt2", "circuits-llama", "d3m-bert", "politune-llama", "specdec-main"):
        assert f"results/models/{alias}/model" in out
    assert "results/datasets/circuits-world/data.parquet" in out
    assert "results/models/plots/pretrain_loss.svg" in out
    assert not any("tiny-" in path or "neutral-" in path for path in out), "the demo builds only what a study uses"


def test_unpinned_revisions_are_listed():
    cfg = bdc.validate_config(yaml.safe_load((REPO / "config/paper/d3m.yaml").read_text()), SCHEMA)
    listed = bdc.unpinned_revisions(cfg)
    assert "models.bert-base-uncased: google-bert/bert-base-uncased@main" in listed
    cfg["models"]["bert-base-uncased"]["revision"] = "0" * 40
    assert not any(item.startswith("models.") for item in bdc.unpinned_revisions(cfg))


def test_key_order_and_explicit_defaults_do_not_change_the_config():
    """Snakemake compares params by repr: two spellings of one config must give
    identical repr, or every job would rerun."""
    plain = bdc.validate_config(demo(), SCHEMA)
    spelled = demo()
    gpt2 = spelled["models"]["tiny-gpt2"]["build"]
    gpt2["pretrain"] = dict(reversed(list({**gpt2["pretrain"], "grad_accum": 1}.items())))
    spelled["models"] = dict(reversed(list(spelled["models"].items())))
    assert repr(bdc.validate_config(spelled, SCHEMA)) == repr(plain)


# --------------------------------------------------------------------------- study plug-ins
def _schema_dir(tmp_path, fragment: str, name: str = "circuits") -> Path:
    (tmp_path / "schema").mkdir()
    (tmp_path / "schema.yaml").write_text((REPO / "config" / "schema.yaml").read_text())
    # the other shipped fragments too: the demo config uses their generators and architectures
    for shipped in (REPO / "config" / "schema").glob("*.yaml"):
        if shipped.stem != name:
            (tmp_path / "schema" / shipped.name).write_text(shipped.read_text())
    (tmp_path / "schema" / f"{name}.yaml").write_text(fragment)
    return tmp_path / "schema.yaml"


FRAGMENT = """
study:
  type: object
  additionalProperties: false
  description: test study
  properties:
    finetune: {$ref: "#/$defs/train"}
    k: {type: integer, default: 5, description: top-k}
generators:
  toy_world:
    type: object
    additionalProperties: false
    properties:
      n: {type: integer, default: 3, description: rows}
architectures: [toyarch]
"""


def test_study_fragments_merge_into_the_schema(tmp_path):
    schema = bdc.load_schema(_schema_dir(tmp_path, FRAGMENT))
    cfg = foundation_demo()
    cfg["studies"] = {"circuits": {"finetune": {"max_steps": 5}}}
    cfg["datasets"]["toy"] = {"generate": {"generator": "toy_world"}}
    bdc.validate_config(cfg, schema)
    assert cfg["studies"]["circuits"]["k"] == 5
    assert cfg["studies"]["circuits"]["finetune"]["learning_rate"] == 5e-5, "shared train defaults apply"
    assert cfg["datasets"]["toy"]["generate"]["params"] == {"n": 3}
    assert "toyarch" in schema["$defs"]["build"]["properties"]["arch"]["enum"]
    cfg["studies"]["circuits"]["kk"] = 1
    cfg["datasets"]["toy"]["generate"]["params"] = {"m": 1}
    msg = problems_of_with(cfg, schema)
    assert "studies.circuits.kk: unknown key (did you mean 'k'?)" in msg
    assert "datasets.toy.generate.params.m: unknown key" in msg


def problems_of_with(cfg, schema) -> str:
    with pytest.raises(bdc.ConfigError) as err:
        bdc.validate_config(cfg, schema)
    return str(err.value)


@pytest.mark.parametrize(
    ("fragment", "name", "message"),
    [
        ("study: {type: object}", "nostudy", "no study 'nostudy'"),
        ("studdy: {}", "circuits", r"unknown top-level key\(s\) \['studdy'\]"),
        ("$defs: {train: {type: object}}", "circuits", r"\$defs.train already exists"),
    ],
)
def test_bad_fragments_are_named(tmp_path, fragment, name, message):
    with pytest.raises(ValueError, match=message):
        bdc.load_schema(_schema_dir(tmp_path, fragment, name))


def test_enabled_studies_add_targets_and_checks(monkeypatch):
    from types import SimpleNamespace

    fake = SimpleNamespace(
        targets=lambda config: [f"results/circuits/{m}.txt" for m in config["models"]],
        problems=lambda _config: ["studies.circuits.models[0]: unknown model alias 'x'"],
        CODE_VERSION={"discover_circuit": 3},
    )
    monkeypatch.setattr(bdc.plugins, "study_module", lambda study, _part: fake if study == "circuits" else None)
    monkeypatch.setattr(bdc.plugins, "load", lambda _part: [fake])
    cfg = foundation_demo()
    assert "studies.circuits.models[0]: unknown model alias 'x'" not in str(bdc.reference_problems(cfg))
    cfg["studies"] = {"circuits": {}}
    assert bdc.reference_problems(cfg) == ["studies.circuits.models[0]: unknown model alias 'x'"]
    assert "results/circuits/tiny-gpt2.txt" in bdc.final_outputs(cfg)
    from biasdrift.matrix.workflow import CODE_VERSION as MATRIX

    assert bdc.study_code_versions() == {"discover_circuit": 3, **MATRIX}  # the matrix's rules are always defined


def test_missing_study_modules_are_none():
    from biasdrift import plugins

    assert plugins.study_module("politune", "no_such_part") is None
    with pytest.raises(KeyError, match="unknown study 'astrology'"):
        plugins.study_module("astrology", "workflow")
