"""The stages of study "tinystories" (rules/tinystories.smk), one job function per rule
and named like it: ``f(job, **files)``, ``job`` the stage's dataclass (built by
snakejob.run from the glue's params, :mod:`biasdrift.tinystories.workflow`), the files the
rule's named inputs and outputs. Heavy imports happen inside the functions."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from biasdrift.runtime import Runtime, choose_device, set_threads
from biasdrift.tinystories.pretokenize import PretokenizeConfig
from biasdrift.tinystories.synthetic import SyntheticParams
from biasdrift.tinystories.training import ModelSpec, StoryTrainConfig
from biasdrift.tinystories.vocab import VocabConfig

# what a training stage's manifest records of its run
TRAINING_KEYS = ("global_step", "train_loss", "final_eval", "resumed_from_step", "tokens_per_second", "mfu")


# --------------------------------------------------------------------------- corpus
@dataclass(frozen=True)
class SynthesizeStoriesJob:
    synthetic: SyntheticParams


def synthesize_stories(job: SynthesizeStoriesJob, *, tarball: str) -> dict[str, Any]:
    """The seeded synthetic corpus, packed like the hub tarball."""
    from biasdrift.tinystories.corpus import synthesize_tarball

    return synthesize_tarball(job.synthetic, tarball)


@dataclass(frozen=True, kw_only=True)
class StoryHub:
    """``studies.tinystories.corpus.hub`` (defaults in config/schema/tinystories.yaml)."""

    SCHEMA: ClassVar[str] = "studies.tinystories.corpus.hub"  # the schema section it mirrors: its defaults

    hf_id: str = field(metadata={"help": "Hub dataset repository."})
    revision: str = field(metadata={"help": "Its revision."})
    filename: str = field(metadata={"help": "The tarball of JSON shards in the repository."})


@dataclass(frozen=True)
class DownloadStoriesJob:
    hub: StoryHub


def download_stories(job: DownloadStoriesJob, *, tarball: str) -> dict[str, Any]:
    """The TinyStories tarball from the hub (a token from HF_TOKEN only)."""
    from biasdrift.tinystories.corpus import download_tarball

    return download_tarball(job.hub.hf_id, job.hub.revision, job.hub.filename, tarball)


@dataclass(frozen=True)
class UnpackStoriesJob:
    """Nothing to set: the tarball is the whole input."""


def unpack_stories(job: UnpackStoriesJob, *, tarball: str, shards: str, counts: str) -> dict[str, Any]:
    """The tarball's JSON shards, checked, with a manifest of counts."""
    from biasdrift.tinystories.corpus import unpack

    del job
    manifest = unpack(tarball, shards, counts)
    return {k: manifest[k] for k in ("n_shards", "records", "features")}


# --------------------------------------------------------------------------- tokens
@dataclass(frozen=True)
class TrainVocabJob:
    vocab: VocabConfig


def train_vocab(job: TrainVocabJob, *, shards: str, model: str, vocab: str, meta: str, threads: int) -> dict[str, Any]:
    """The SentencePiece BPE vocabulary (non-interactive)."""
    from biasdrift.tinystories.vocab import train_vocab as train

    out = train(shards, job.vocab, model, vocab, meta, threads=threads)
    return {k: out[k] for k in ("vocab_size", "lines", "input_shards")}


@dataclass(frozen=True)
class PretokenizeJob:
    dataset: str  # the registry name (studies.tinystories.datasets.<dataset>)
    spec: dict[str, Any]  # its DatasetSpec as a dict (transforms.spec_from_dict)
    pretokenize: PretokenizeConfig


def pretokenize(
    job: PretokenizeJob, *, corpus: str, tokenizer: str, tokens: str, meta: str, threads: int
) -> dict[str, Any]:
    """One dataset variant as uint16 shards of BOS-delimited examples."""
    from biasdrift.tinystories.pretokenize import pretokenize as encode
    from biasdrift.tinystories.transforms import spec_from_dict

    spec = spec_from_dict(job.spec, f"studies.tinystories.datasets.{job.dataset}")
    out = encode(corpus, tokenizer, spec, job.pretokenize, tokens, meta, workers=threads)
    return {"dataset": job.dataset, "name": out["name"], **out["totals"]}


# --------------------------------------------------------------------------- training
@dataclass(frozen=True)
class StoryTrainingJob:
    """What the three training stages share (pretraining, deletion, recovery)."""

    train: StoryTrainConfig  # the stage's train section with the study's window settings
    seed: int
    pretrain_fraction: float
    runtime: Runtime
    scratch: str


def _train(job: StoryTrainingJob, *, data: str, tokenizer: str, metrics: str, threads: int, split: str, **how):
    from biasdrift.tinystories.training import train_story_model

    set_threads(threads)
    out = train_story_model(
        train_dir=data,
        split=split,
        cfg=job.train,
        seed=job.seed,
        device=choose_device(job.runtime.device),
        metrics_path=metrics,
        scratch_dir=job.scratch,
        tokenizer_model=tokenizer,
        pretrain_fraction=job.pretrain_fraction,
        **how,
    )
    return {k: out[k] for k in TRAINING_KEYS}


def _init_ref(init: str) -> dict[str, Any]:
    """The model ref of a story model this study saved (loaded by models.load_model)."""
    return {"alias": f"tinystories:{init}", "source": "path", "path": init}


@dataclass(frozen=True)
class PretrainStoryModelJob(StoryTrainingJob):
    model: ModelSpec


def pretrain_story_model(
    job: PretrainStoryModelJob, *, data: str, tokenizer: str, model: str, metrics: str, threads: int
) -> dict[str, Any]:
    """A story model from scratch on the pretraining shards (base all or control)."""
    return _train(
        job,
        data=data,
        tokenizer=tokenizer,
        metrics=metrics,
        threads=threads,
        split="pretrain",
        build=job.model,
        out_dir=model,
    )


@dataclass(frozen=True)
class DeleteFeatureJob(StoryTrainingJob):
    """The deletion run's learning rate is its train.learning_rate (the path's lr{lr})."""


def delete_feature(
    job: DeleteFeatureJob, *, data: str, init: str, tokenizer: str, model: str, metrics: str, threads: int
) -> dict[str, Any]:
    """Fine-tune base "all" on a protocol's dataset, on the fine-tuning shards."""
    return _train(
        job,
        data=data,
        tokenizer=tokenizer,
        metrics=metrics,
        threads=threads,
        split="finetune",
        init_ref=_init_ref(init),
        out_dir=model,
    )


@dataclass(frozen=True)
class RecoverFeatureJob(StoryTrainingJob):
    steps: list[int]  # the recovery checkpoints (> 0), in the order of the checkpoints output


def recover_feature(
    job: RecoverFeatureJob, *, data: str, init: str, tokenizer: str, checkpoints: list[str], metrics: str, threads: int
) -> dict[str, Any]:
    """Fine-tune a deleted (or the control) model on data with the feature, delivering the
    model at every recovery step (the last is the end of training: train.max_steps)."""
    paths = dict(zip(job.steps, checkpoints, strict=True))
    final = paths.pop(job.train.max_steps)
    return _train(
        job,
        data=data,
        tokenizer=tokenizer,
        metrics=metrics,
        threads=threads,
        split="finetune",
        init_ref=_init_ref(init),
        out_dir=final,
        snapshot_steps=paths,
    )


# --------------------------------------------------------------------------- evaluation
@dataclass(frozen=True)
class StoryEvaluationJob:
    """What both evaluation stages share."""

    feature: str  # the deleted feature
    evaluation: dict[str, Any]  # studies.tinystories.evaluation (evaluation.eval_config reads it)
    block_size: int
    eval_sets: dict[str, str]  # eval set -> its token dir
    instruction_subset: str  # the instruction lines the prompts render (the base's)
    judge: dict[str, Any] | None  # the judge's model ref and settings; None: the marker rules
    seed: int  # of sampling and probes (evaluation.seed)
    device: str  # runtime.device (evaluation never asks for deterministic kernels)


def _evaluation_kwargs(job: StoryEvaluationJob, corpus: str, tokenizer: str, threads: int) -> dict[str, Any]:
    return {
        "shard_dir": corpus,
        "tokenizer_model": tokenizer,
        "eval_sets": job.eval_sets,
        "evaluation": job.evaluation,
        "block_size": job.block_size,
        "instruction_subset": job.instruction_subset,
        "judge": job.judge,
        "feature": job.feature,
        "device": choose_device(job.device),
        "threads": threads,
    }


@dataclass(frozen=True)
class EvaluateStoryModelJob(StoryEvaluationJob):
    probes: dict[str, Any]  # studies.tinystories.probes (evaluation.ProbeConfig)


def evaluate_story_model(
    job: EvaluateStoryModelJob,
    *,
    model: str,
    shards: str,
    tokenizer: str,
    eval_tokens: list[str],
    judge_model: list[str],
    evaluation: str,
    probes: str,
    generations: str,
    threads: int,
) -> dict[str, Any]:
    """Losses, feature rates of sampled stories, the marker log-probability and per-layer
    probes of one base or deletion model (``eval_tokens``, ``judge_model``: tracked by the
    rule; the job names them)."""
    from biasdrift.tinystories.evaluation import evaluate_model

    del eval_tokens, judge_model
    return evaluate_model(
        model_dir=model,
        probes=job.probes,
        out_eval=evaluation,
        out_probes=probes,
        out_generations=generations,
        **_evaluation_kwargs(job, shards, tokenizer, threads),
    )


@dataclass(frozen=True)
class EvaluateRecoveryJob(StoryEvaluationJob):
    steps: list[int]  # the recovery checkpoints, in the order of the checkpoints input


def evaluate_recovery(
    job: EvaluateRecoveryJob,
    *,
    checkpoints: list[str],
    shards: str,
    tokenizer: str,
    eval_tokens: list[str],
    judge_model: list[str],
    evaluation: str,
    generations: str,
    threads: int,
) -> dict[str, Any]:
    """Losses, feature rate and marker log-probability at every recovery checkpoint."""
    from biasdrift.tinystories.evaluation import evaluate_recovery as evaluate

    del eval_tokens, judge_model
    return evaluate(
        checkpoints=dict(zip(job.steps, checkpoints, strict=True)),
        out_eval=evaluation,
        out_generations=generations,
        **_evaluation_kwargs(job, shards, tokenizer, threads),
    )


# --------------------------------------------------------------------------- report
@dataclass(frozen=True)
class SummarizeTinystoriesJob:
    layout: dict[str, Any]  # the runs and checks (workflow.summary_layout)


def summarize_tinystories(
    job: SummarizeTinystoriesJob,
    *,
    evals: list[str],
    model_probes: list[str],
    recoveries: list[str],
    results: str,
    recovery: str,
    probes: str,
    checks: str,
    agreement: str,
) -> dict[str, Any]:
    """Results and recovery tables, the probe table, marker-vs-judge agreement, the checks."""
    from biasdrift.tinystories.report import summarize

    return summarize(
        evals=evals,
        probes=model_probes,
        recoveries=recoveries,
        layout=job.layout,
        out_results=results,
        out_recovery=recovery,
        out_probes=probes,
        out_checks=checks,
        out_agreement=agreement,
    )


@dataclass(frozen=True)
class PlotTinystoriesJob:
    feature: str


def plot_tinystories(job: PlotTinystoriesJob, *, results: str, recovery: str, probes: str, **figures: str):
    """Recovery curves, probe accuracy by layer, the deletion grid (``figures``: the rule's
    svg and csv outputs by name)."""
    from biasdrift.tinystories.report import plot_all

    return plot_all(results_csv=results, recovery_csv=recovery, probes_csv=probes, feature=job.feature, outputs=figures)
