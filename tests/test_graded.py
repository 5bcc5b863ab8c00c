"""Graded worlds: each study's planted effect has a size (its generator's ``effect``), and
the study's own findings check, run on the study's own outputs, must report the effect *not
found* in a world without it (effect 0) and *found* at the demo's effect size (the graded
config states it; a test holds it equal to config/config.yaml's). Without the first half a
check could pass whatever the models learned.

Configs: tests/config/graded/<study>.yaml (the demo's recipe where the tiny one is too small
to learn the effect, and only the targets the check reads)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from biasdrift import findings
from tests.conftest import SNAKEMAKE, clean_env, copy_workflow
from tests.test_workflow import REPO

pytestmark = pytest.mark.workflow

GRADED = REPO / "tests/config/graded"

# study -> (the keys of the dict that holds the generator's ``effect``, the targets the
#           check reads, the claims about the planted effect: substrings of Finding.claim,
#           what must fail at effect 0: "claim" = each of them, "subject" = for each subject
#           (model and template) at least one: circuits' M1 of the positive nationalities
#           is above 0 in a world without bias too, the negative ones' is then not below)
STUDIES = {
    "circuits": (
        ("datasets", "circuits-world", "generate", "params"),
        ["results/circuits/bias_summary.csv"],
        ("base ",),
        "subject",
    ),
    "d3m": (
        ("datasets", "d3m-synth", "generate", "params"),
        ["results/d3m/synth/selection.json"],
        ("above random removal",),
        "claim",
    ),
    "politune": (
        ("datasets", "politune-left", "generate", "params"),
        ["results/politune/summary.json"],
        ("",),
        "claim",
    ),
    "specdec": (
        ("datasets", "specdec-world", "generate", "params"),
        ["results/specdec/stats/clean_binary/k3_n10/disparity.csv"],
        ("assistant share female − male > 0",),
        "claim",
    ),
    "tinystories": (
        ("studies", "tinystories", "corpus", "synthetic"),
        ["results/tinystories/summary/checks.json"],
        ("base writes", "deletion lowers"),
        "claim",
    ),
}


def effect_params(cfg: dict, study: str) -> dict:
    """The dict of ``cfg`` that holds ``study``'s generator params (and its ``effect``)."""
    for key in STUDIES[study][0]:
        cfg = cfg[key]
    return cfg


def merged_config(effects: dict[str, float] | None = None) -> dict:
    """The five graded configs as one (their datasets, tokenizers, models and studies do not
    overlap; a key two of them set differently fails), each study at its configured effect
    unless ``effects`` names another."""
    merged: dict = {}
    for study in sorted(STUDIES):
        cfg = yaml.safe_load((GRADED / f"{study}.yaml").read_text())
        if effects and study in effects:
            effect_params(cfg, study)["effect"] = effects[study]
        for key, value in cfg.items():
            if not isinstance(value, dict):
                assert merged.setdefault(key, value) == value, f"graded configs disagree on {key}"
                continue
            section = merged.setdefault(key, {})
            for name, item in value.items():
                assert section.setdefault(name, item) == item, f"graded configs disagree on {key}.{name}"
    return merged


def graded_run(work: Path, cfg: dict, studies: list[str]) -> Path:
    """Run ``cfg`` for the targets of ``studies`` on 2 cores in ``work``, a fresh copy of the
    workflow; its results folder."""
    work = copy_workflow(work)
    (work / "graded.yaml").write_text(yaml.safe_dump(cfg))
    targets = [t for study in studies for t in STUDIES[study][1]]
    args = ("--configfile", "graded.yaml", "--replace-workflow-config", "--cores", "2", *targets)
    with (work / "graded.log").open("w") as log:
        proc = subprocess.run([*SNAKEMAKE, *args], cwd=work, env=clean_env(), stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise AssertionError(f"graded run of {studies} failed:\n{(work / 'graded.log').read_text()[-8000:]}")
    return work / "results"


@pytest.fixture(scope="session")
def demo_effect_run(tmp_path_factory) -> tuple[Path, dict]:
    """Every graded world at the demo's effect, one snakemake run on 2 cores (about 5 min on
    the 2-core machine). Returns (results, config)."""
    cfg = merged_config()
    return graded_run(tmp_path_factory.mktemp("graded") / "demo-effect", cfg, sorted(STUDIES)), cfg


def found(claims: list[findings.Finding], about: tuple[str, ...], unit: str) -> dict[str, bool]:
    """Per unit (each claim, or each subject: all its claims) about the planted effect:
    does it hold?"""
    planted = [f for f in claims if any(a in f.claim for a in about)]
    assert planted, f"no claim about {about!r} in {[f.claim for f in claims]}"
    if unit == "claim":
        return {f.line(): f.holds for f in planted}
    return {s: all(f.holds for f in planted if f.subject == s) for s in sorted({f.subject for f in planted})}


@pytest.mark.parametrize("study", sorted(STUDIES))
def test_the_graded_config_plants_the_demo_effect(study):
    """The graded run that must find the effect runs at the demo's effect size, stated in
    config/config.yaml (not left to a default), and that effect is not zero."""
    demo = effect_params(yaml.safe_load((REPO / "config/config.yaml").read_text()), study)
    graded = effect_params(yaml.safe_load((GRADED / f"{study}.yaml").read_text()), study)
    assert "effect" in demo and 0 < demo["effect"] <= 1
    assert graded["effect"] == demo["effect"]


def test_the_graded_configs_merge_and_take_another_effect():
    demo, absent = merged_config(), merged_config({"d3m": 0.0})
    assert set(demo["studies"]) == set(absent["studies"]) == set(STUDIES)
    assert effect_params(absent, "d3m")["effect"] == 0.0 < effect_params(demo, "d3m")["effect"]
    assert effect_params(absent, "tinystories") == effect_params(demo, "tinystories")


def test_every_studys_check_holds_at_the_demo_effect(demo_effect_run):
    """Each study's findings check, all of its claims, on its graded world at the demo's
    effect: a claim that fails (an effect no longer learned, a fine-tune no longer moving it)
    fails `make test`."""
    results, cfg = demo_effect_run
    claims = findings.check(sorted(STUDIES), results, cfg)
    assert {f.study for f in claims} == set(STUDIES)
    failed = [f.line() for f in claims if not f.holds]
    assert not failed, "claims that fail at the demo's effect:\n" + "\n".join(failed)


# one run per study at effect 0 (1-3 minutes each on 2 cores, tinystories' the longest):
# outside `make test` (CI time), run by `make test-graded`; the other half is demo_effect_run
@pytest.mark.slow
@pytest.mark.parametrize("study", sorted(STUDIES))
def test_the_check_fails_without_the_effect_and_holds_with_it(tmp_path, study, demo_effect_run):
    _, _, about, unit = STUDIES[study]
    absent_cfg = merged_config({study: 0.0})
    absent_claims = findings.study_claims(study)(graded_run(tmp_path / "w", absent_cfg, [study]), absent_cfg)
    results, cfg = demo_effect_run
    present_claims = findings.study_claims(study)(results, cfg)
    absent, present = found(absent_claims, about, unit), found(present_claims, about, unit)
    effect = effect_params(cfg, study)["effect"]
    assert effect > 0, "the graded config plants the demo's effect"
    assert not any(absent.values()), "found at effect 0: " + "; ".join(f.line() for f in absent_claims)
    assert all(present.values()), f"not found at effect {effect}: " + "; ".join(f.line() for f in present_claims)
