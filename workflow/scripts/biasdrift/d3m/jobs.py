"""The stages of study "d3m" (rules/d3m.smk), one job function per rule and named like
it: ``f(job, **files)``, ``job`` the stage's dataclass (built by snakejob.run from the
glue's params, :mod:`biasdrift.d3m.workflow`), the files the rule's named inputs and
outputs. Heavy imports happen inside the functions."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from biasdrift.d3m.attribution import InfluenceConfig, TrakConfig
from biasdrift.runtime import Runtime, set_threads
from biasdrift.training import TrainConfig


@dataclass(frozen=True)
class D3mMetrics:
    """``studies.d3m.metrics`` (defaults in config/schema/d3m.yaml)."""

    bootstrap: int = field(metadata={"help": "Bootstrap resamples of the per-run intervals (0: none)."})
    level: float = field(metadata={"help": "Confidence level of every interval."})
    select_metric: str = field(metadata={"help": "Validation metric that chooses k per method."})


# --------------------------------------------------------------------------- data
@dataclass(frozen=True)
class PrepareD3mWorldJob:
    world: str  # the world's name (studies.d3m.worlds.<world>)
    prepare: str  # table | toxigen | hatexplain
    settings: dict[str, Any]  # the preparer's own section (none for table)
    imbalance: dict[str, Any]
    seed: int


def prepare_d3m_world(
    job: PrepareD3mWorldJob, *, dataset: str, data: str, test_dataset: str | None = None
) -> dict[str, Any]:
    """One d3m world (uid, text, label, group, cell, split) with per-cell counts from
    its raw dataset (and ``test_dataset`` where the world has one)."""
    from biasdrift.d3m.data import prepare_world
    from biasdrift.data import read_dataset
    from biasdrift.runtime import atomic_path

    raw = {"dataset": dataset, "test_dataset": test_dataset}
    frames = {name: read_dataset(path) for name, path in raw.items() if path is not None}
    where = f"studies.d3m.worlds.{job.world}"
    frame, manifest = prepare_world(job.prepare, frames, job.settings, job.imbalance, job.seed, where)
    with atomic_path(data) as tmp:
        frame.to_parquet(tmp, index=False)
    return manifest


# --------------------------------------------------------------------------- training
@dataclass(frozen=True)
class D3mTrainingJob:
    """What every training stage of the study shares (base models and retrainings)."""

    model: dict[str, Any]  # config.model_ref of studies.d3m.model
    finetune: TrainConfig
    max_length: int
    metrics: D3mMetrics
    seed: int  # the run's seed (the path's seed{seed})
    runtime: Runtime
    scratch: str


def _run_spec(job: D3mTrainingJob, *, data: str, preds: str, metrics: str, train_metrics: str, snapshots=()):
    from biasdrift.d3m.counterfactual import RunSpec
    from biasdrift.runtime import choose_device

    return RunSpec(
        model_ref=job.model,
        data_path=Path(data),
        cfg=job.finetune,
        max_length=job.max_length,
        seed=job.seed,
        scratch_dir=Path(job.scratch),
        preds_path=Path(preds),
        metrics_path=Path(metrics),
        train_metrics_path=Path(train_metrics),
        device=choose_device(job.runtime.device),
        n_boot=job.metrics.bootstrap,
        level=job.metrics.level,
        snapshot_epochs=tuple(snapshots),
    )


@dataclass(frozen=True)
class FinetuneD3mBaseJob(D3mTrainingJob):
    snapshot_epochs: list[int]  # the epochs some TRAK ensemble uses (kept as snapshots)


def finetune_d3m_base(
    job: FinetuneD3mBaseJob,
    *,
    data: str,
    model: str,
    preds: str,
    metrics: str,
    train_metrics: str,
    threads: int,
    backbone: list[str],
) -> dict[str, Any]:
    """The base classifier of one world with one seed (``backbone``: the files of the
    study's model, tracked by the rule; the model ref names them)."""
    from biasdrift.d3m.counterfactual import finetune_base

    del backbone
    set_threads(threads)
    spec = _run_spec(
        job, data=data, preds=preds, metrics=metrics, train_metrics=train_metrics, snapshots=job.snapshot_epochs
    )
    return finetune_base(spec, model)


@dataclass(frozen=True)
class RetrainD3mBaselineJob(D3mTrainingJob):
    method: str  # balance | heuristic-<attribution>
    unit: str  # studies.d3m.removal.unit


def retrain_d3m_baseline(
    job: RetrainD3mBaselineJob,
    *,
    data: str,
    removed: str,
    preds: str,
    metrics: str,
    train_metrics: str,
    threads: int,
    backbone: list[str],
    align: str | None = None,
) -> dict[str, Any]:
    """A k-free baseline: remove its set of training examples, retrain, evaluate."""
    del backbone  # the files of the study's model, tracked by the rule
    return _retrain(job, None, data, removed, preds, metrics, train_metrics, threads, align)


@dataclass(frozen=True)
class RetrainD3mJob(RetrainD3mBaselineJob):
    k: float  # the path's k{k}: a fraction or a count (removal.unit)


def retrain_d3m(
    job: RetrainD3mJob,
    *,
    data: str,
    removed: str,
    preds: str,
    metrics: str,
    train_metrics: str,
    threads: int,
    backbone: list[str],
    align: str | None = None,
) -> dict[str, Any]:
    """Remove the k lowest-aligned (or k random) training examples, retrain, evaluate."""
    del backbone  # the files of the study's model, tracked by the rule
    return _retrain(job, job.k, data, removed, preds, metrics, train_metrics, threads, align)


def _retrain(job, k, data, removed, preds, metrics, train_metrics, threads, align) -> dict[str, Any]:
    from biasdrift.d3m.counterfactual import removal_kind, retrain

    set_threads(threads)
    return retrain(
        _run_spec(job, data=data, preds=preds, metrics=metrics, train_metrics=train_metrics),
        kind=removal_kind(job.method),
        method=job.method,
        k=k,
        unit=job.unit,
        align_path=align,
        removed_path=removed,
    )


# --------------------------------------------------------------------------- attribution
@dataclass(frozen=True)
class ScoreD3mTrakJob:
    world: str
    method: str  # the TRAK attribution's name (studies.d3m.trak.<method>)
    trak: TrakConfig  # with the world's overrides
    epochs: list[int]  # checkpoint epochs of the ensemble ([] = final weights)
    query_split: str
    max_length: int
    seed: int  # the projector's seed
    runtime: Runtime
    work: str


def score_d3m_trak(
    job: ScoreD3mTrakJob, *, data: str, models: list[str], scores: str, uids: str, threads: int
) -> dict[str, Any]:
    """TRAK score matrix (n_train, n_query) of one world."""
    from biasdrift.d3m.workflow import trak_where

    return _score(
        "trak", job, job.trak, job.epochs, trak_where(job.world, job.method), data, models, scores, uids, threads
    )


@dataclass(frozen=True)
class ScoreD3mIfJob:
    method: str  # the influence attribution's name (studies.d3m.influence.<method>)
    influence: InfluenceConfig
    query_split: str
    max_length: int
    seed: int  # studies.d3m.score_seed
    runtime: Runtime
    work: str


def score_d3m_if(
    job: ScoreD3mIfJob, *, data: str, models: list[str], scores: str, uids: str, threads: int
) -> dict[str, Any]:
    """Influence-function (kronfluence) score matrix (n_train, n_query) of one world."""
    where = f"studies.d3m.influence.{job.method}"
    return _score("if", job, job.influence, [], where, data, models, scores, uids, threads)


def _score(method, job, cfg, epochs, where, data, models, scores, uids, threads) -> dict[str, Any]:
    from biasdrift.d3m.scoring import score_world
    from biasdrift.runtime import choose_device

    set_threads(threads)
    return score_world(
        method=method,
        cfg=cfg,
        model_dirs=list(models),
        epochs=epochs,
        data_path=data,
        query_split=job.query_split,
        max_length=job.max_length,
        scores_path=scores,
        uids_path=uids,
        work_dir=job.work,
        device=choose_device(job.runtime.device).type,
        seed=job.seed,
        where=where,
    )


@dataclass(frozen=True)
class AlignD3mJob:
    query_split: str
    grouping: str


def align_d3m(
    job: AlignD3mJob, *, scores: str, uids: str, data: str, preds: str, align: str, groups: str
) -> dict[str, Any]:
    """D3M group alignment of every training example from one score matrix."""
    from biasdrift.d3m.scoring import align_world

    return align_world(
        data_path=data,
        scores_path=scores,
        uids_path=uids,
        preds_path=preds,
        query_split=job.query_split,
        grouping=job.grouping,
        align_path=align,
        groups_path=groups,
    )


# --------------------------------------------------------------------------- summaries
@dataclass(frozen=True)
class AggregateD3mJob:
    level: float
    select_metric: str


def aggregate_d3m(job: AggregateD3mJob, *, runs: list[str], long: str, summary: str, selection: str) -> dict[str, Any]:
    """Every run of one world, summarised over seeds, k chosen on validation."""
    from biasdrift.d3m.aggregate import aggregate

    return aggregate(runs, long, summary, selection, level=job.level, select_metric=job.select_metric)


@dataclass(frozen=True)
class SummarizeD3mSweepJob:
    worlds: list[str]  # in the order of the selections and longs inputs
    aligns: list[list[str]]  # (world, method) of each aligns input, in order
    descriptions: dict[str, str]
    majority_cells: dict[str, str]
    level: float


def summarize_d3m_sweep(
    job: SummarizeD3mSweepJob,
    *,
    selections: list[str],
    longs: list[str],
    aligns: list[str],
    csv: str,
    json: str,
) -> dict[str, Any]:
    """Every world's D3M result against random removal and balancing."""
    from biasdrift.d3m.sweep import summarize_sweep

    return summarize_sweep(
        worlds=dict(zip(job.worlds, zip(selections, longs, strict=True), strict=True)),
        aligns=dict(zip(map(tuple, job.aligns), aligns, strict=True)),
        majority_cells=job.majority_cells,
        descriptions=job.descriptions,
        level=job.level,
        csv_path=csv,
        json_path=json,
    )


# --------------------------------------------------------------------------- plots
@dataclass(frozen=True)
class PlotD3mSweepJob:
    pass


def plot_d3m_sweep(job: PlotD3mSweepJob, *, table: str, svg: str, csv: str) -> dict[str, Any]:
    """The sweep's figure (every world, every method) from its table, and the figure's data."""
    import pandas as pd

    from biasdrift.d3m.plots import sweep_figure

    del job
    return sweep_figure(pd.read_csv(table), svg, csv)


@dataclass(frozen=True)
class PlotD3mCounterfactualJob:
    metrics: list[str]  # the curve's test metrics, one panel each


def plot_d3m_counterfactual(
    job: PlotD3mCounterfactualJob, *, summary: str, selection: str, svg: str, csv: str
) -> dict[str, Any]:
    """A test metric against k per method, with reference lines."""
    import pandas as pd

    from biasdrift.d3m.plots import counterfactual_curves
    from biasdrift.runtime import read_json

    table = pd.read_csv(summary, dtype={"k": str})
    return counterfactual_curves(table, read_json(selection), job.metrics, svg, csv)


@dataclass(frozen=True)
class PlotD3mAttributionJob:
    methods: list[str]  # attribution names, in the order of the scores/uids/align inputs
    pair: list[str]  # the two methods of the alignment scatter
    query_split: str
    top_n: int


def plot_d3m_attribution(
    job: PlotD3mAttributionJob,
    *,
    data: str,
    scores: list[str],
    uids: list[str],
    align: list[str],
    heatmap: str,
    cells: str,
    top: str,
    scatter: str,
    csvs: list[str],
) -> dict[str, Any]:
    """Score heatmaps, alignment by cell, most harmful examples, IF vs TRAK: every
    figure and its CSV in the folder of ``heatmap`` (the other outputs name them)."""
    from biasdrift.d3m.plots import attribution_figures

    del cells, top, scatter, csvs

    return attribution_figures(
        job.methods, data, scores, uids, align, job.query_split, job.top_n, Path(heatmap).parent, pair=job.pair
    )
