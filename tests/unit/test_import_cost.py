"""Job start-up: a job that trains no model does not import the Trainer stack.

Every Snakemake job is a new Python process, so what an entry script imports at start-up is
paid once per job (the demo runs 182 of them on 2 cores). `transformers.trainer_utils` (with
peft) costs about 3 s, torch about 1 s; the jobs below need neither.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO

# modules that the entry scripts of data, summary and plot jobs import
LIGHT = [
    "biasdrift.training",  # TrainConfig / config_from_dict: imported by jobs that never train
    "biasdrift.tinystories.pretokenize",
    "biasdrift.tinystories.vocab",
    "biasdrift.tinystories.synthetic",
    "biasdrift.tinystories.report",
    "biasdrift.d3m.scoring",
    "biasdrift.d3m.aggregate",
    "biasdrift.politune.pairs",
    "biasdrift.politune.summary",
    "biasdrift.specdec.templates",
    "biasdrift.specdec.analysis",
    "biasdrift.findings",
]
HEAVY = ("torch", "transformers", "peft", "trl")


def fresh_python(code: str) -> str:
    """stdout of ``code`` in a new interpreter (what a job's process starts from)."""
    env = {"PYTHONPATH": str(REPO / "workflow" / "scripts"), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
    ).stdout


@pytest.mark.parametrize("module", LIGHT)
def test_light_modules_import_neither_torch_nor_transformers(module):
    code = f"import sys, {module}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    heavy = fresh_python(code).strip()
    assert heavy == "", f"importing {module} imports {heavy}"


def test_the_training_callbacks_are_still_trainer_callbacks():
    from transformers import TrainerCallback

    from biasdrift import training

    assert issubclass(training.LogCallback, TrainerCallback) and issubclass(training.StepCounter, TrainerCallback)
    assert training.LogCallback is training.LogCallback  # defined once
    with pytest.raises(AttributeError):
        training.NoSuchCallback  # noqa: B018


def test_seed_everything_draws_what_transformers_set_seed_draws_without_importing_it():
    code = (
        "import random, sys, numpy as np, torch\n"
        "from biasdrift.runtime import seed_everything\n"
        "seed_everything(7)\n"
        "print('transformers' in sys.modules, random.random(), np.random.rand(), torch.rand(1).item())\n"
        "from transformers import set_seed\n"
        "set_seed(7)\n"
        "print(random.random(), np.random.rand(), torch.rand(1).item())\n"
    )
    ours, theirs = fresh_python(code).splitlines()
    imported, *draws = ours.split()
    assert imported == "False" and draws == theirs.split()
