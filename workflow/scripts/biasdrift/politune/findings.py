"""The politune demo's claims (:mod:`biasdrift.findings`), from ``results/politune/summary.json``:
every run with a ``lean`` moves its model towards that side on each axis of the statement
probe (interval of the shift excluding zero) and prefers held-out chosen answers above
chance (interval above 0.5) at its selected checkpoint.

    PYTHONPATH=workflow/scripts .venv/bin/python -m biasdrift.findings politune
"""

from __future__ import annotations

from pathlib import Path

from biasdrift.findings import Finding, finding, missing
from biasdrift.runtime import read_json

SUMMARY = "politune/summary.json"


def claims(results: Path, config: dict) -> list[Finding]:  # noqa: ARG001 - one signature for all
    path = Path(results) / SUMMARY
    if not path.is_file():
        return [missing("politune", path)]
    checks = read_json(path).get("checks") or []
    if not checks:
        return [finding("politune", str(path), "a run with a lean to check", None, None, None, False)]
    return [
        finding(
            "politune", f"{c['model']} {c['run']} ({c['state']})", c["check"], c["value"], *c["interval"], c["passed"]
        )
        for c in checks
    ]
