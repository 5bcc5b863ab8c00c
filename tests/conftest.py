"""Shared fixtures: a disposable copy of the workflow and a snakemake runner."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from biasdrift.smoke.run import REPO, copy_workflow, offline_env

SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a test's snakemake run: offline, no HF_TOKEN."""
    return offline_env(**extra)


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
