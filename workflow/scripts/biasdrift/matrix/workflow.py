"""Workflow glue of the cross-study probe matrix (rules/matrix.smk; imported while
Snakemake parses: no torch). It runs when the config has a ``matrix`` key.

Results path grammar::

    results/matrix/{row}/{probe}.json         score_matrix_cell (every row x every probe:
                                              the score, or why the probe does not apply)
    results/matrix/matrix.csv                 summarize_matrix (one line per pair)
    results/matrix/plots/matrix.svg|.csv      plot_matrix (the heatmap, in the report)

Rows come from each joining study's ``matrix_models(config)`` (``matrix.studies``,
default every enabled study) and from ``matrix.models``; probes from each joining
study's ``matrix_probes(config)`` and from ``matrix.probes``
(:mod:`biasdrift.matrix.registry`). A row's cells depend on the row's model files and,
for a fine-tune, on its base's cell of the same probe: adding a row or a probe adds only
the new cells' jobs (and the summary's).
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

from biasdrift import config as bdc
from biasdrift import plugins
from biasdrift.matrix.registry import MatrixError, alias_row, config_probe

ROOT = "results/matrix"

CODE_VERSION = {
    "score_matrix_cell": 1,
    "summarize_matrix": 1,
    "plot_matrix": 1,
}


def section(config: dict) -> dict | None:
    return config.get("matrix")


def _key(config: dict) -> str:
    return json.dumps(config, sort_keys=True, default=str)


@functools.lru_cache(maxsize=8)
def _registries(key: str) -> tuple[dict[str, dict], dict[str, dict]]:
    config = json.loads(key)
    sec = section(config)
    rows: dict[str, dict] = {}
    probes: dict[str, dict] = {}
    if sec is None:
        return rows, probes

    def add(table: dict, entry: dict, kind: str, origin: str) -> None:
        if entry["name"] in table:
            raise MatrixError(f"matrix {kind} {entry['name']!r} is registered twice (again by {origin})")
        table[entry["name"]] = entry

    joining = sec.get("studies")  # null (or a partial config without it): every enabled study; []: none
    if joining is None:
        joining = sorted(config.get("studies") or {})
    for study in joining:
        if study not in (config.get("studies") or {}):
            raise MatrixError(f"matrix.studies: study {study!r} is not enabled (no studies.{study})")
        module = plugins.study_module(study, "workflow")
        for entry in getattr(module, "matrix_models", lambda _c: [])(config):
            add(rows, entry, "model", f"study {study}")
        for entry in getattr(module, "matrix_probes", lambda _c: [])(config):
            add(probes, entry, "probe", f"study {study}")
    for alias in sec.get("models") or []:
        bdc.require_alias(config, "models", alias, "matrix.models")
        add(rows, alias_row(config, alias, "config"), "model", "matrix.models")
    for name, spec in (sec.get("probes") or {}).items():
        add(probes, config_probe(name, spec), "probe", "matrix.probes")
    for row in rows.values():
        if row["base"] is not None and row["base"] not in rows:
            raise MatrixError(f"matrix model {row['name']}: its base {row['base']!r} is not a matrix model")
    return rows, probes


def rows(config: dict) -> dict[str, dict]:
    """Every matrix model by name (insertion order: studies, then matrix.models)."""
    return _registries(_key(config))[0]


def probes(config: dict) -> dict[str, dict]:
    return _registries(_key(config))[1]


def cell_file(row: str, probe: str) -> str:
    return f"{ROOT}/{row}/{probe}.json"


def cell_files(config: dict) -> list[str]:
    return [cell_file(r, p) for r in rows(config) for p in probes(config)]


def targets(config: dict) -> list[str]:
    if section(config) is None:
        return []
    return [f"{ROOT}/matrix.csv", f"{ROOT}/plots/matrix.svg", f"{ROOT}/plots/matrix.csv"]


def wildcard_regexes(config: dict) -> dict[str, str]:
    def alternation(values) -> str:
        values = sorted(set(values), key=len, reverse=True)
        return "|".join(re.escape(v) for v in values) if values else "(?!)"

    return {"row": alternation(rows(config)), "probe": alternation(probes(config))}


def problems(config: dict) -> list[str]:
    """What the registries refuse (an unknown alias, a bad probe file), before any job."""
    if section(config) is None:
        return []
    try:
        rows(config), probes(config)
    except (MatrixError, bdc.ConfigError) as err:
        return [str(err)]
    except KeyError:  # a study section without a key its registry reads: its own checks say so
        return []
    return []


# --------------------------------------------------------------------------- input functions
def cell_inputs(config: dict, wildcards) -> dict[str, Any]:
    """The row's model files and, for a fine-tune, its base's cell of the same probe."""
    row = rows(config)[wildcards.row]
    out: dict[str, Any] = {"model": row["inputs"]}
    if row["base"] is not None:
        out["base_cell"] = cell_file(row["base"], wildcards.probe)
    return out


def summary_inputs(config: dict, wildcards) -> list[str]:  # noqa: ARG001
    return cell_files(config)


# --------------------------------------------------------------------------- stages
def score_matrix_cell(config: dict, wildcards) -> dict[str, Any]:
    sec = section(config)
    row = {k: v for k, v in rows(config)[wildcards.row].items() if k != "inputs"}
    return {
        "row": row,
        "probe": probes(config)[wildcards.probe],
        "bootstrap": sec["bootstrap"],
        "confidence": sec["confidence"],
        "seed": sec["seed"],
        "batch_size": sec["batch_size"],
        "device": config["runtime"]["device"],
    }


def summarize_matrix(config: dict, wildcards) -> dict[str, Any]:  # noqa: ARG001
    return {"rows": list(rows(config)), "probes": list(probes(config))}


def plot_matrix(config: dict, wildcards) -> dict[str, Any]:  # noqa: ARG001
    return {"title": section(config)["title"]}
