"""Job functions of the smoke-tier fixture rules, one per rule and named like it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class BuildSmokeModelJob:
    fixture: str  # a name of biasdrift.smoke.fixtures.MODEL_FIXTURES
    seed: int


def build_smoke_model(job: BuildSmokeModelJob, *, model: str) -> dict[str, Any]:
    from biasdrift.smoke.fixtures import build_model_fixture

    return build_model_fixture(job.fixture, model, seed=job.seed)


@dataclass(frozen=True)
class BuildSmokeDatasetJob:
    fixture: str
    seed: int


def build_smoke_dataset(job: BuildSmokeDatasetJob, *, data: str) -> dict[str, Any]:
    from biasdrift.smoke.fixtures import build_dataset_fixture

    return build_dataset_fixture(job.fixture, data, seed=job.seed)
