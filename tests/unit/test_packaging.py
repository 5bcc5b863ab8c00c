"""Set-up files agree with each other: pins, the conda environment, CI and the README."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def pins(lines) -> dict[str, str]:
    out = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;]+)$", line)
        if match:
            out[match.group(1).lower().replace("_", "-")] = match.group(2)
    return out


REQUIREMENTS = pins((REPO / "requirements.txt").read_text().splitlines())


def test_requirements_are_exact_pins_with_cpu_torch():
    lines = [ln.split("#", 1)[0].strip() for ln in (REPO / "requirements.txt").read_text().splitlines()]
    assert all("==" in ln for ln in lines if ln), "every requirement is an exact pin"
    assert REQUIREMENTS["torch"] == "2.13.0"
    assert "torchvision" not in REQUIREMENTS and "kronfluence" not in REQUIREMENTS


def test_constraints_lock_the_same_versions():
    locked = pins((REPO / "constraints.txt").read_text().splitlines())
    assert {k: locked.get(k) for k in REQUIREMENTS} == REQUIREMENTS
    assert "torchvision" not in locked and not any(k.startswith("nvidia") for k in locked)


def test_conda_environment_matches_requirements():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    env_pins = pins(pip_section)
    assert {k: env_pins.get(k) for k in REQUIREMENTS} == REQUIREMENTS
    assert env_pins["kronfluence"] == "1.0.1"
    assert "python=3.11" in env["dependencies"]


def test_makefile_installs_kronfluence_without_deps():
    assert "--no-deps kronfluence==1.0.1" in (REPO / "Makefile").read_text()


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    commands = re.findall(r"^(make \w+)", readme.split("```bash", 1)[1].split("```", 1)[0], flags=re.M)
    assert commands[:2] == ["make demo", "make test"]
    ci = (REPO / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, flags=re.M)


def test_outputs_and_environments_stay_out_of_git():
    ignored = (REPO / ".gitignore").read_text().split()
    for entry in ("results/", "logs/", "benchmarks/", ".snakemake/", ".venv/", ".scratch/"):
        assert entry in ignored
