"""Shared fixtures: a disposable copy of the workflow and a snakemake runner."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# what a researcher's checkout holds (results, logs, .snakemake, .venv stay behind)
WORKFLOW_PARTS = (
    "Snakefile",
    "rules",
    "workflow",
    "config",
    "profiles",
    "resources",
    "environment.yml",
    "tests/config",
)
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def copy_workflow(dest: Path) -> Path:
    """Copy the workflow (not its results) into ``dest``, as a fresh checkout would be."""
    dest.mkdir(parents=True, exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for part in WORKFLOW_PARTS:
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=ignore)
        else:
            (dest / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / part)
    return dest


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "HF_TOKEN"}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HUB_DISABLE_TELEMETRY="1", MPLBACKEND="Agg")
    env.update(extra)
    return env


def snakemake(workdir: Path, *args: str, env: dict | None = None, check: bool = True, timeout: int = 900):
    """Run snakemake in ``workdir``; on failure show its output."""
    proc = subprocess.run(
        [*SNAKEMAKE, *args],
        cwd=workdir,
        env=env or clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


TINY = ("--configfile", "tests/config/tiny.yaml", "--replace-workflow-config")


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


FAKE_TOKEN = "hf_" + "Zq7" * 11  # looks like a token; never valid


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """tests/config/tiny.yaml end to end (every study it enables) plus the report, in a
    fresh copy of the workflow with a fake HF_TOKEN in the environment. Shared by the
    workflow tests of the foundation and of every study: run once per session.
    Returns (workdir, env)."""
    work = copy_workflow(tmp_path_factory.mktemp("tiny"))
    env = clean_env(HF_TOKEN=FAKE_TOKEN)
    snakemake(work, *TINY, "--cores", "2", env=env, timeout=1800)
    snakemake(work, *TINY, "--report", "results/report.html", env=env)
    return work, env
