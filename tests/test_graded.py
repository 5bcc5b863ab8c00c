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


def graded_run(tmp_path, study: str, effect: float | None) -> tuple[subprocess.Popen, Path, dict, float]:
    """Start ``study``'s graded config at ``effect`` (None = as configured) in a fresh copy
    of the workflow, on one core (the two runs of a test go side by side)."""
    _, targets, _, _ = STUDIES[study]
    cfg = yaml.safe_load((GRADED / f"{study}.yaml").read_text())
    params = effect_params(cfg, study)
    if effect is not None:
        params["effect"] = effect
    work = copy_workflow(tmp_path / f"{study}-{params['effect']}")
    (work / "graded.yaml").write_text(yaml.safe_dump(cfg))
    args = ("--configfile", "graded.yaml", "--replace-workflow-config", "--cores", "1", *targets)
    with (work / "graded.log").open("w") as log:  # the child keeps its own handle
        proc = subprocess.Popen([*SNAKEMAKE, *args], cwd=work, env=clean_env(), stdout=log, stderr=subprocess.STDOUT)
    return proc, work, cfg, params["effect"]


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


# each pair of runs takes 1-2 minutes on 2 cores (tinystories' more): outside `make test` (CI time, which the
# smoke and tiny end-to-end runs already fill), run by `make test-graded`
@pytest.mark.slow
@pytest.mark.parametrize("study", sorted(STUDIES))
def test_the_check_fails_without_the_effect_and_holds_with_it(tmp_path, study):
    _, _, about, unit = STUDIES[study]
    runs = [graded_run(tmp_path, study, 0.0), graded_run(tmp_path, study, None)]
    outcomes = []
    for proc, work, cfg, effect in runs:
        if proc.wait(timeout=900) != 0:
            raise AssertionError(f"graded {study} run at effect {effect} failed:\n{(work / 'graded.log').read_text()}")
        claims = findings.study_claims(study)(work / "results", cfg)
        outcomes.append((effect, found(claims, about, unit), claims))
    (_, absent, absent_claims), (effect, present, present_claims) = outcomes
    assert effect > 0, "the graded config plants the demo's effect"
    assert not any(absent.values()), "found at effect 0: " + "; ".join(f.line() for f in absent_claims)
    assert all(present.values()), f"not found at effect {effect}: " + "; ".join(f.line() for f in present_claims)
