"""The stages of the cross-study probe matrix (rules/matrix.smk), one job function per
rule and named like it: ``f(job, **files)``, ``job`` the stage's dataclass (built by
snakejob.run from the glue's params, :mod:`biasdrift.matrix.workflow`)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from biasdrift.runtime import choose_device, write_json


@dataclass(frozen=True)
class MatrixRow:
    """A model of the matrix (biasdrift.matrix.registry.model_row)."""

    name: str
    study: str
    label: str
    model: dict[str, Any]  # a model ref (biasdrift.models.load_model)
    adapter: str | None  # a peft adapter directory merged into the model
    tokenizer: dict[str, Any]  # {"kind": "hf", "ref": ...} | {"kind": "sentencepiece", "path": ...}
    chat_template: str | None  # a Jinja file installed on the tokenizer
    base: str | None  # the row the change is measured against


@dataclass(frozen=True)
class MatrixProbe:
    """A probe of the matrix (biasdrift.matrix.registry.contrast_probe / certainty_probe)."""

    name: str
    study: str
    kind: str  # contrast | certainty
    needs: list[str]  # words | chat_template
    description: str
    groups: dict[str, str]  # what groups a and b are
    items: list[dict[str, Any]]  # {"prompt", "group", "a": [words], "b": [words]}


@dataclass(frozen=True)
class ScoreMatrixCellJob:
    row: MatrixRow
    probe: MatrixProbe
    bootstrap: int
    confidence: float
    seed: int
    batch_size: int
    device: str  # runtime.device


def score_matrix_cell(
    job: ScoreMatrixCellJob, *, model: list[str], cell: str, base_cell: str | None = None
) -> dict[str, Any]:
    """One model x one probe: the score with its interval and the change against the
    base, or why the probe does not apply (``model``: the row's files, tracked)."""
    from biasdrift.matrix.scoring import score_cell

    del model
    base = json.loads(Path(base_cell).read_text()) if base_cell else None
    stats = {"bootstrap": job.bootstrap, "confidence": job.confidence, "seed": job.seed}
    out = score_cell(
        row=asdict(job.row),
        probe=asdict(job.probe),
        base=base,
        stats=stats,
        device=choose_device(job.device),
        batch_size=job.batch_size,
    )
    write_json(cell, out)
    return {k: out.get(k) for k in ("applicable", "reason", "score", "change", "significant")}


@dataclass(frozen=True)
class SummarizeMatrixJob:
    rows: list[str]
    probes: list[str]


def summarize_matrix(job: SummarizeMatrixJob, *, cells: list[str], table: str) -> dict[str, Any]:
    """``matrix.csv``: one line per (model, probe) pair, applicable or not."""
    from biasdrift.matrix.report import summarize

    return summarize(cells=cells, rows=job.rows, probes=job.probes, out_csv=table)


@dataclass(frozen=True)
class PlotMatrixJob:
    title: str


def plot_matrix(job: PlotMatrixJob, *, table: str, svg: str, csv: str) -> dict[str, Any]:
    """The heatmap: models x probes, colour = change against the base."""
    from biasdrift.matrix.report import plot_matrix as plot

    return plot(table, svg, csv, job.title)
