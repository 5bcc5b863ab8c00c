"""The shared stages' job functions (rules/models.smk), one per rule and named like it:
``f(job, **files)``, ``job`` the stage's dataclass (built by snakejob.run from the glue's
params, :mod:`biasdrift.workflow`), the files the rule's named inputs and outputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from biasdrift.models import ModelSize
from biasdrift.pretrain import PretrainConfig
from biasdrift.runtime import Runtime, choose_device
from biasdrift.tokenization import TokenizerConfig


@dataclass(frozen=True)
class PrepareDatasetJob:
    dataset: dict[str, Any]  # the dataset alias's config entry plus its alias (config.dataset_ref)


def prepare_dataset(job: PrepareDatasetJob, *, files: list[str], data: str) -> dict[str, Any]:
    """Materialise one dataset alias (``files``: the local file it reads, if any)."""
    from biasdrift.data import prepare_dataset as materialise

    del files  # tracked by the rule; the dataset ref names the path
    return materialise(job.dataset, data)


@dataclass(frozen=True)
class TrainTokenizerJob:
    tokenizer: TokenizerConfig
    text_column: str


def train_tokenizer(job: TrainTokenizerJob, *, data: str, tokenizer: str) -> dict[str, Any]:
    from biasdrift.tokenization import train_tokenizer_from_dataset

    return train_tokenizer_from_dataset(data, job.text_column, job.tokenizer, tokenizer)


@dataclass(frozen=True)
class PretrainLmJob:
    arch: str
    size: ModelSize
    pretrain: PretrainConfig
    text_column: str
    seed: int
    runtime: Runtime
    scratch: str


def pretrain_lm(job: PretrainLmJob, *, data: str, tokenizer: str, model: str, metrics: str) -> dict[str, Any]:
    """Build one tiny model alias and pretrain it from scratch."""
    from biasdrift.pretrain import pretrain_lm as pretrain

    out = pretrain(
        arch=job.arch,
        size=job.size,
        tokenizer_dir=tokenizer,
        corpus_path=data,
        text_column=job.text_column,
        out_dir=model,
        metrics_path=metrics,
        scratch_dir=job.scratch,
        cfg=job.pretrain,
        seed=job.seed,
        device=choose_device(job.runtime.device),
    )
    return {k: out[k] for k in ("global_step", "train_loss", "final_eval", "resumed_from_step")}


@dataclass(frozen=True)
class DownloadModelJob:
    model: dict[str, Any]  # config.model_ref of a hub alias


def download_model(job: DownloadModelJob, *, marker: str) -> dict[str, Any]:
    from biasdrift.models import download_model as fetch

    fetch(job.model, marker)
    return {}


@dataclass(frozen=True)
class PlotPretrainingJob:
    models: list[str]  # the built aliases, in the order of the rule's metrics inputs


def plot_pretraining(job: PlotPretrainingJob, *, metrics: list[str], svg: str, csv: str) -> dict[str, Any]:
    from biasdrift.plots import plot_training_curves

    return plot_training_curves(dict(zip(job.models, metrics, strict=True)), svg, csv)
