"""Shared fixtures: a disposable copy of the workflow and a snakemake runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from biasdrift.smoke.run import REPO, copy_workflow, offline_env

SNAKEMAKE = [sys.executable, "-m", "snakemake"]

# Under pytest-xdist (make test: two workers, each of which may run a snakemake with two jobs)
# more torch threads than cores run at once, and OpenMP threads that spin while they wait
# for work take the cores from the others: four processes of two threads each on the 2-core
# machine trained ~7x slower than with OMP_WAIT_POLICY=PASSIVE (bench/bench_omp_wait.py). The
# policy changes no result. Set before torch is imported here and inherited by every
# snakemake run and job a test starts.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


# Inputs of config/paper/*.yaml that the user supplies (never shipped) and that a dry-run
# checks: synthetic stand-ins, for disposable copies of the workflow only.
PAPER_PLACEHOLDERS = {
    # study politune: the Political Compass statements (the parse-time check reads the header)
    "resources/downloads/politune/pc_statements.tsv": "id\ttext\taxis\tdirection\tw0\tw1\tw2\tw3\n",
}


def add_paper_placeholders(work: Path) -> Path:
    """Write the stand-ins of PAPER_PLACEHOLDERS into copy ``work`` where it has none."""
    for path, text in PAPER_PLACEHOLDERS.items():
        if not (work / path).exists():
            (work / path).parent.mkdir(parents=True, exist_ok=True)
            (work / path).write_text(text)
    return work


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

# make test runs two pytest-xdist workers (-n 2). A worker computes its own session fixtures,
# so the files that share an expensive end-to-end run go to one worker as one unit: every
# file that uses the tiny run (the Slurm suite compares against it), and the graded run with
# the smoke run, the second worker's first work while the first builds the tiny run. Every
# other file is a unit of its own (its module fixtures computed once). Units go out in
# collection order (tests/test_*.py first). xdist's own --dist loadgroup cannot do this
# with pytest 9 (its group suffix no longer reaches the node ids).
TINY_RUN_FILES = {
    f"tests/{name}.py"
    for name in (
        "test_circuits_workflow",
        "test_d3m_workflow",
        "test_matrix_workflow",
        "test_politune_workflow",
        "test_slurm",
        "test_specdec_workflow",
        "test_stages",
        "test_tinystories_workflow",
        "test_workflow",
    )
}
SECOND_E2E_FILES = {"tests/test_graded.py", "tests/test_smoke.py"}


def work_unit(path: str) -> str:
    """The xdist work unit of test file ``path`` (relative to the repository)."""
    return "tiny-run" if path in TINY_RUN_FILES else "second-e2e" if path in SECOND_E2E_FILES else path


def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class WorkUnits(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid.split("::")[0])

    config.option.loadscopereorder = False  # collection order: the end-to-end units first
    return WorkUnits(config, log)


def pytest_collection_modifyitems(config, items):  # noqa: ARG001 - pytest's signature
    """A file that uses the tiny run but is not in TINY_RUN_FILES would build it a second
    time on the other worker: an error naming it."""
    strays = sorted({item.nodeid.split("::")[0] for item in items if "tiny_run" in item.fixturenames} - TINY_RUN_FILES)
    if strays:
        raise pytest.UsageError(f"tests/conftest.py: add {strays} to TINY_RUN_FILES (they use the tiny_run fixture)")


@pytest.fixture
def torch_one_thread():
    """Run a test's tiny models on one torch thread (restored afterwards): models this small
    gain nothing from intra-op threads and oversubscribed threads are very slow. Use with
    ``pytestmark = pytest.mark.usefixtures("torch_one_thread")``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
