"""Study politune's job functions (rules/politune.smk), one per rule and named like it:
``f(job, **files)``, ``job`` the stage's dataclass (built by snakejob.run from the glue's
params, :mod:`biasdrift.politune.workflow`), the files the rule's named inputs and outputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from biasdrift.politune.adapters import LoraSettings
from biasdrift.politune.formatting import FormatConfig
from biasdrift.politune.judge import JudgeConfig
from biasdrift.politune.pairs import PairsConfig
from biasdrift.politune.probe import GenerationConfig, ProbeConfig
from biasdrift.politune.train import MethodSettings
from biasdrift.runtime import Runtime, choose_device
from biasdrift.training import TrainConfig


def _paths(files: str | list[str] | None) -> list[str]:
    """A named input as a list of paths (Snakemake gives a lone path as a string)."""
    if files is None:
        return []
    return [files] if isinstance(files, str) else list(files)


@dataclass(frozen=True)
class PreparePairsJob:
    spec: dict[str, Any]  # {"dataset": alias} or {"mix": {side: fraction}}
    sources: list[str]  # the dataset alias, or the mixed sides: names of the ``pairs`` inputs, in order
    data: PairsConfig


def prepare_pairs(job: PreparePairsJob, *, sources: str | list[str], data: str) -> dict[str, Any]:
    """One side's preference pairs, cleaned and split (or a mix of sides)."""
    from biasdrift.politune.pairs import prepare_pairs as prepare

    inputs = dict(zip(job.sources, _paths(sources), strict=True))
    return prepare(job.spec, inputs, data, job.data)


@dataclass(frozen=True)
class TrainPolituneJob:
    method: str  # dpo | sft
    model: dict[str, Any]  # config.model_ref of the base
    format: FormatConfig
    lora: LoraSettings
    train: TrainConfig
    settings: MethodSettings
    steps: list[int]  # the checkpoint steps, sorted
    seed: int
    report_to: str
    runtime: Runtime
    scratch: str


def train_politune(
    job: TrainPolituneJob, *, model: str | list[str], pairs: str, adapters: str, metrics: str
) -> dict[str, Any]:
    """LoRA DPO or SFT of one model on one side's pairs."""
    from biasdrift.politune.train import train_adapter

    del model  # tracked by the rule; the model ref names the weights
    run = "/".join(Path(adapters).parts[-4:-1])  # {model}/{side}/{method}
    return train_adapter(
        method=job.method,
        ref=job.model,
        pairs_path=pairs,
        out_dir=adapters,
        metrics_path=metrics,
        scratch_dir=job.scratch,
        fmt=job.format,
        lora=job.lora,
        train_cfg=job.train,
        settings=job.settings,
        checkpoint_steps=list(job.steps),
        seed=job.seed,
        device=choose_device(job.runtime.device),
        report_to=job.report_to,
        where=f"train_politune {run}",
    )


@dataclass(frozen=True)
class EvaluatePolituneJob:
    state: str  # base | {side}/{method}/step{N|final}
    model: dict[str, Any]  # config.model_ref of the base
    sides: list[str]  # the sides of the ``pairs`` inputs, in order
    format: FormatConfig
    lora: LoraSettings
    probe: ProbeConfig
    free_text: GenerationConfig
    beta: float  # DPO's beta: the scale of the implicit reward
    seed: int
    runtime: Runtime


def evaluate_politune(
    job: EvaluatePolituneJob,
    *,
    model: str | list[str],
    pairs: str | list[str],
    statements: str,
    answers: str,
    preferences: str,
    adapters: str | None = None,
    statement_file: str | None = None,
    prompt_file: str | None = None,
) -> dict[str, Any]:
    """Statement probe, free-text answers and held-out pairs of one model state."""
    from biasdrift.politune.evaluate import adapter_subdir, evaluate_state
    from biasdrift.politune.workflow import parse_state

    del model  # tracked by the rule; the model ref names the weights
    subdir = adapter_subdir(parse_state(job.state)["step"])
    return evaluate_state(
        ref=job.model,
        state=job.state,
        adapter_dir=None if subdir is None else Path(adapters) / subdir,
        lora=job.lora,
        fmt=job.format,
        statements_path=statement_file,
        prompts_path=prompt_file,
        pairs_paths=dict(zip(job.sides, _paths(pairs), strict=True)),
        probe=job.probe,
        free_text=job.free_text,
        beta=job.beta,
        seed=job.seed,
        device=choose_device(job.runtime.device),
        out={"statements": statements, "answers": answers, "preferences": preferences},
    )


@dataclass(frozen=True)
class JudgeAnswersJob:
    judge: JudgeConfig
    judge_ref: dict[str, Any] | None  # config.model_ref of an hf judge's model
    states: list[str]  # the states of the ``answers`` inputs, in order
    runtime: Runtime


def judge_answers(
    job: JudgeAnswersJob,
    *,
    answers: str | list[str],
    judged: str,
    judge_model: str | list[str] | None = None,
    lexicon: str | None = None,
) -> dict[str, Any]:
    """Score every free-text answer of one model's states with the judge."""
    from biasdrift.politune.judge import judge_files

    del judge_model, lexicon  # tracked by the rule; the judge's config names them
    return judge_files(
        job.judge,
        dict(zip(job.states, _paths(answers), strict=True)),
        judged,
        ref=job.judge_ref,
        device=choose_device(job.runtime.device),
    )


@dataclass(frozen=True)
class MergeAdapterJob:
    model: dict[str, Any]  # config.model_ref of the base
    lora: LoraSettings
    runtime: Runtime


def merge_adapter(job: MergeAdapterJob, *, model: str | list[str], adapters: str, merged: str) -> dict[str, Any]:
    """A run's final adapter merged into its base (checked against the logits)."""
    from biasdrift.politune.adapters import merge_and_save

    del model  # tracked by the rule; the model ref names the weights
    device = choose_device(job.runtime.device)
    return merge_and_save(job.model, f"{adapters}/final", job.lora, merged, device)


@dataclass(frozen=True)
class SummarizePolituneJob:
    layout: dict[str, Any]  # every file the summary reads and how it summarises (workflow.get_summary_layout)


def summarize_politune(
    job: SummarizePolituneJob,
    *,
    files: str | list[str],
    summary: str,
    scores: str,
    item_scores: str,
    preferences: str,
    training: str,
    judge: str,
    compass: str,
) -> dict[str, Any]:
    """Scores with intervals, shifts against the base, checkpoint choice."""
    from biasdrift.politune.summary import summarize

    del files  # tracked by the rule; the layout names them
    out = {
        "summary": summary,
        "scores": scores,
        "item_scores": item_scores,
        "preferences": preferences,
        "training": training,
        "judge": judge,
        "compass": compass,
    }
    return summarize(job.layout, out)


@dataclass(frozen=True)
class PlotPolituneJob:
    pass


def plot_politune(
    job: PlotPolituneJob,  # noqa: ARG001 - no params
    *,
    summary: str,
    scores: str,
    item_scores: str,
    preferences: str,
    training: str,
    axes_svg: str,
    axes_csv: str,
    trajectory_svg: str,
    trajectory_csv: str,
    items_svg: str,
    items_csv: str,
    preference_svg: str,
    preference_csv: str,
) -> dict[str, Any]:
    """Axis scores, score trajectories, per-statement scores, held-out preferences."""
    from biasdrift.politune.plots import plot_all

    files = {
        "summary": summary,
        "scores": scores,
        "item_scores": item_scores,
        "preferences": preferences,
        "training": training,
    }
    out = {
        "axes_svg": axes_svg,
        "axes_csv": axes_csv,
        "trajectory_svg": trajectory_svg,
        "trajectory_csv": trajectory_csv,
        "items_svg": items_svg,
        "items_csv": items_csv,
        "preference_svg": preference_svg,
        "preference_csv": preference_csv,
    }
    return plot_all(files, out)


@dataclass(frozen=True)
class PlotPolituneJudgeJob:
    pass


def plot_politune_judge(job: PlotPolituneJudgeJob, *, judge: str, svg: str, csv: str) -> dict[str, Any]:  # noqa: ARG001
    """The judge's mean score of free-text answers against step."""
    from biasdrift.politune.plots import plot_judge_file

    return plot_judge_file(judge, svg, csv)


@dataclass(frozen=True)
class PlotPolituneCompassJob:
    pass


def plot_politune_compass(
    job: PlotPolituneCompassJob,  # noqa: ARG001 - no params
    *,
    summary: str,
    compass: str,
    svg: str,
    csv: str,
) -> dict[str, Any]:
    """Political Compass coordinates of the base and each run's reported checkpoint."""
    from biasdrift.politune.plots import plot_compass_file

    return plot_compass_file(summary, compass, svg, csv)
