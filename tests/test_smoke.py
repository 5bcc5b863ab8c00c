"""The smoke tier (config/smoke/, biasdrift.smoke): derived from the paper configs, the
same rules, fixtures with the real hub configs."""

from __future__ import annotations

import re

import pytest
import yaml

from biasdrift.smoke import derive
from biasdrift.smoke.fixtures import build_model_fixture
from tests.conftest import REPO, add_paper_placeholders, copy_workflow, snakemake

PAPER = sorted(p.stem for p in (REPO / "config/paper").glob("*.yaml"))
# rules that only one tier has: hub downloads (paper) and fixture builders (smoke)
HUB_ONLY = {"download_model", "download_stories"}
SMOKE_ONLY = {"build_smoke_model", "build_smoke_dataset"}


def test_every_paper_config_has_a_committed_up_to_date_smoke_config(monkeypatch):
    assert derive.studies_with_overrides(REPO) == PAPER
    monkeypatch.chdir(REPO)
    assert derive.main(["--check"]) == 0


def test_an_override_may_only_change_keys_the_paper_config_has():
    paper = {"studies": {"x": {"train": {"epochs": 10}}}, "models": {"m": {"hf_id": "a/b", "revision": "main"}}}
    smoke = derive.derive(paper, {"set": {"studies.x.train.epochs": 1, "models.m": {"path": "p"}}})
    assert smoke == {"studies": {"x": {"train": {"epochs": 1}}}, "models": {"m": {"path": "p"}}}
    assert paper["studies"]["x"]["train"]["epochs"] == 10  # the paper config is left as it is
    with pytest.raises(derive.OverrideError, match=r"set.studies.x.train.epoch: not a key"):
        derive.derive(paper, {"set": {"studies.x.train.epoch": 1}})
    with pytest.raises(derive.OverrideError, match=r"studies.y is not a key"):
        derive.derive(paper, {"set": {"studies.y.train": {}}})
    with pytest.raises(derive.OverrideError, match=r"add.studies.x.train.epochs: the paper config has"):
        derive.derive(paper, {"add": {"studies.x.train.epochs": 1}})
    assert derive.derive(paper, {"add": {"studies.x.train.max_steps": 2}})["studies"]["x"]["train"] == {
        "epochs": 10,
        "max_steps": 2,
    }
    with pytest.raises(derive.OverrideError, match="unknown section"):
        derive.derive(paper, {"replace": {}})


def test_an_override_of_one_anchored_value_changes_only_that_value():
    paper = yaml.safe_load("base: &t {epochs: 10}\na: {train: *t}\nb: {train: *t}\n")
    smoke = derive.derive(paper, {"set": {"a.train.epochs": 1}})
    assert (smoke["a"]["train"]["epochs"], smoke["b"]["train"]["epochs"], smoke["base"]["epochs"]) == (1, 10, 10)


def _rules(work, configfile: str) -> set[str]:
    out = snakemake(work, "-n", "--quiet", "rules", "--configfile", configfile, "--replace-workflow-config").stdout
    listed = re.search(r"output files have to be generated:\s*(.+?)\n", out, re.S)
    assert listed, out
    return {r.strip() for r in listed.group(1).split(",")} - {"all", "..."}


@pytest.mark.parametrize("study", PAPER)
def test_smoke_config_runs_the_paper_config_rules(study, tmp_path):
    work = add_paper_placeholders(copy_workflow(tmp_path / "w"))
    paper, smoke = _rules(work, f"config/paper/{study}.yaml"), _rules(work, f"config/smoke/{study}.yaml")
    assert paper - HUB_ONLY == smoke - SMOKE_ONLY
    config = yaml.safe_load((work / f"config/smoke/{study}.yaml").read_text())
    assert config["tier"] == "paper" and not any("hf_id" in m for m in config.get("models", {}).values())


# Parameter counts of the hub models, as published with them.
HUB_PARAMETERS = {"gpt2": 124_439_808, "distilgpt2": 81_912_576}


@pytest.mark.parametrize("name", sorted(HUB_PARAMETERS))
def test_model_fixture_is_the_hub_architecture(name, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    info = build_model_fixture(name, tmp_path / name)
    model = AutoModelForCausalLM.from_pretrained(tmp_path / name, local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / name, local_files_only=True)
    assert sum(p.numel() for p in model.parameters()) == HUB_PARAMETERS[name] == info["parameters"]
    assert tokenizer.pad_token is None  # as on the hub: loaders must set one
    assert model.config.eos_token_id == tokenizer.eos_token_id


def test_chat_model_fixture_keeps_template_gqa_and_vocabulary(tmp_path):
    from transformers import AutoConfig, AutoTokenizer

    build_model_fixture("mistral-7b-instruct", tmp_path / "m")
    config = AutoConfig.from_pretrained(tmp_path / "m")
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "m")
    assert (config.model_type, config.vocab_size, config.num_key_value_heads) == ("mistral", 32000, 2)
    text = tokenizer.apply_chat_template([{"role": "user", "content": "hello"}], tokenize=False)
    assert text == "<s>[INST] hello [/INST]"
    with pytest.raises(Exception, match="roles must alternate"):
        tokenizer.apply_chat_template([{"role": "system", "content": "x"}, {"role": "user", "content": "y"}])


# The study whose smoke config `make test` runs end to end (the others: `make smoke`).
E2E_STUDY = "politune"


@pytest.mark.workflow
def test_a_paper_config_runs_end_to_end_on_the_smoke_tier(tmp_path):
    from biasdrift.smoke import run

    assert run.main([E2E_STUDY, "--workdir", str(tmp_path), "--cores", "2"]) == 0, (
        tmp_path / f"{E2E_STUDY}.log"
    ).read_text()[-5000:]
    work = tmp_path / E2E_STUDY
    config = yaml.safe_load((work / f"config/smoke/{E2E_STUDY}.yaml").read_text())
    for alias, spec in config["models"].items():
        assert (work / spec["path"] / "config.json").is_file(), alias
    assert any((work / "results" / E2E_STUDY).rglob("*.csv")), "the study wrote no table"
    again = snakemake(work, "-n", "--configfile", f"config/smoke/{E2E_STUDY}.yaml", "--replace-workflow-config")
    assert "Nothing to be done" in again.stdout + again.stderr
