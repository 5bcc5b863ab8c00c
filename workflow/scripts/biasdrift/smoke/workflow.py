"""Glue of the smoke-tier fixture rules (rules/smoke.smk): ``f(config, wildcards)`` per
rule, the stage's whole params (fields of its job dataclass in :mod:`biasdrift.smoke.jobs`).
A fixture is built with seed 0: its weights only have to be the same on every machine."""

from __future__ import annotations

from typing import Any


def build_smoke_model(config: dict, wildcards: Any) -> dict[str, Any]:  # noqa: ARG001
    return {"fixture": wildcards.fixture, "seed": 0}


def build_smoke_dataset(config: dict, wildcards: Any) -> dict[str, Any]:  # noqa: ARG001
    return {"fixture": wildcards.fixture, "seed": 0}
