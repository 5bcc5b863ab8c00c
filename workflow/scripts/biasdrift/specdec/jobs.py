"""The stages of study "specdec" (rules/specdec.smk), one job function per rule and named
like it: ``f(job, **files)``, ``job`` the stage's dataclass (built by snakejob.run from the
glue's params, :mod:`biasdrift.specdec.workflow`), the files the rule's named inputs and
outputs. Heavy imports happen inside the functions."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from biasdrift.runtime import Runtime, choose_device
from biasdrift.specdec.decoding import DecodeConfig
from biasdrift.specdec.finetune_config import FinetuneDataConfig, MilestoneConfig
from biasdrift.specdec.sampling import SamplingConfig
from biasdrift.specdec.stats import StatsConfig
from biasdrift.specdec.templates import TemplateConfig
from biasdrift.specdec.toxicity import ToxicityConfig
from biasdrift.training import TrainConfig


# --------------------------------------------------------------------------- templates
@dataclass(frozen=True)
class PrepareSpecdecTemplatesJob:
    aliases: list[str]  # dataset aliases of the template sets, in the order of the rule's sets input
    templates: TemplateConfig


def prepare_specdec_templates(job: PrepareSpecdecTemplatesJob, *, sets: list[str], templates: str) -> dict[str, Any]:
    """HONEST-format templates with ids, prompts and views."""
    from biasdrift.specdec.templates import prepare_templates

    return prepare_templates(list(zip(job.aliases, sets, strict=True)), job.templates, templates)


# --------------------------------------------------------------------------- fine-tuning
@dataclass(frozen=True)
class FinetuneSpecdecModelJob:
    role: str  # main | assistant
    model: dict[str, Any]  # config.model_ref of the role's alias
    data: FinetuneDataConfig
    train: TrainConfig
    milestones: MilestoneConfig
    seed: int
    runtime: Runtime
    scratch: str


def finetune_specdec_model(
    job: FinetuneSpecdecModelJob,
    *,
    base_model: list[str],
    corpus: str,
    templates: str,
    model: str,
    epochs: str,
    milestones: str,
    metrics: str,
) -> dict[str, Any]:
    """Fine-tune the main model or the assistant on the news corpus, storing the template
    distributions at milestones (``base_model``: the files of the role's alias, tracked
    by the rule; the model ref names them)."""
    import pandas as pd

    from biasdrift.specdec.finetune import finetune_lm
    from biasdrift.specdec.kl import milestone_prompts

    del base_model
    return finetune_lm(
        role=job.role,
        model_ref=job.model,
        corpus_path=corpus,
        data_cfg=job.data,
        train_cfg=job.train,
        milestone_cfg=job.milestones,
        prompts=milestone_prompts(pd.read_parquet(templates)),
        out_model=model,
        out_epochs=epochs,
        out_milestones=milestones,
        metrics_path=metrics,
        scratch_dir=job.scratch,
        seed=job.seed,
        device=choose_device(job.runtime.device),
    )


# --------------------------------------------------------------------------- KL
@dataclass(frozen=True)
class MeasureSpecdecKlJob:
    pair: dict[str, Any]  # workflow.pair_of: the condition's (main, assistant) states
    seed: int
    runtime: Runtime


def measure_specdec_kl(job: MeasureSpecdecKlJob, *, templates: str, models: list[str], kl: str) -> dict[str, Any]:
    """Divergences of main vs assistant at every template prompt (``models``: the pair's
    files, tracked by the rule)."""
    from biasdrift.specdec.kl import measure_kl

    del models
    return measure_kl(pair=job.pair, templates_path=templates, out_path=kl, device=choose_device(job.runtime.device))


@dataclass(frozen=True)
class CurveSpecdecKlJob:
    views: list[str]
    stats: StatsConfig


def curve_specdec_kl(
    job: CurveSpecdecKlJob, *, main: str, assistant: str, templates: str, curve: str
) -> dict[str, Any]:
    """The KL terms over fine-tuning, from both roles' milestones."""
    from biasdrift.specdec.kl import kl_curve

    return kl_curve(
        main_dir=main,
        assistant_dir=assistant,
        templates_path=templates,
        views=list(job.views),
        n_boot=job.stats.n_boot,
        ci=job.stats.ci,
        seed=job.stats.seed,
        out_path=curve,
    )


# --------------------------------------------------------------------------- decoding
@dataclass(frozen=True)
class MeasureSpecdecAcceptanceJob:
    pair: dict[str, Any]
    view: str
    decode: DecodeConfig  # decode.k and decode.n: this job's K and N
    seed: int
    runtime: Runtime


def measure_specdec_acceptance(
    job: MeasureSpecdecAcceptanceJob, *, templates: str, models: list[str], decoded: str
) -> dict[str, Any]:
    """Greedy speculative decoding of every template of one view with one condition's
    (main, assistant) pair, draft length K and N new tokens; one parquet row per template."""
    import pandas as pd

    from biasdrift.runtime import atomic_path
    from biasdrift.specdec.conditions import load_pair
    from biasdrift.specdec.decoding import check_consistency, disable_tf32, log, measure_prompts
    from biasdrift.specdec.templates import view_frame

    del models
    pair, view, cfg = job.pair, job.view, job.decode
    frame_in = view_frame(pd.read_parquet(templates), view)
    disable_tf32()
    main, assistant, tokenizer = load_pair(pair, choose_device(job.runtime.device))
    frame = measure_prompts(main, assistant, tokenizer, frame_in, cfg)
    info = check_consistency(frame, cfg)
    frame["condition"], frame["view"], frame["k"], frame["n"] = pair["condition"], view, cfg.k, cfg.n
    with atomic_path(decoded) as tmp:
        frame.to_parquet(tmp, index=False)
    info["mean_assistant_share"] = float(frame["assistant_share"].mean())
    log.info("condition %s, view %s, K=%d, N=%d: %s", pair["condition"], view, cfg.k, cfg.n, info)
    return info


# --------------------------------------------------------------------------- toxicity
@dataclass(frozen=True)
class ScoreSpecdecToxicityJob:
    decode_paths: dict[str, str]  # condition -> its decode parquet (the smallest K)
    pairs: dict[str, dict[str, Any]]  # condition -> workflow.pair_of
    toxicity: ToxicityConfig
    classifier_ref: dict[str, Any] | None
    reference: str
    n: int
    seed: int
    runtime: Runtime


def score_specdec_toxicity(
    job: ScoreSpecdecToxicityJob, *, files: list[str], scores: str, summary: str, transitions: str
) -> dict[str, Any]:
    """Toxicity of the main and assistant completions per condition, with Wilson intervals
    and paired McNemar tests against the reference (``files``: what the rule tracks; the
    job names the decode paths and models)."""
    from biasdrift.specdec.toxicity import score_toxicity

    del files
    return score_toxicity(
        decode_paths=dict(job.decode_paths),
        pairs=dict(job.pairs),
        cfg=job.toxicity,
        classifier_ref=job.classifier_ref,
        reference=job.reference,
        n=job.n,
        out_scores=scores,
        out_summary=summary,
        out_transitions=transitions,
        device=choose_device(job.runtime.device),
    )


# --------------------------------------------------------------------------- statistics
@dataclass(frozen=True)
class SummarizeSpecdecDisparityJob:
    decode_paths: dict[str, str]  # condition -> decode parquet
    kl_paths: dict[str, str]  # condition -> KL parquet
    contrast: list[str]
    reference: str
    stats: StatsConfig


def summarize_specdec_disparity(
    job: SummarizeSpecdecDisparityJob,
    *,
    decoded: list[str],
    kl: list[str],
    group_summary: str,
    identity_means: str,
    disparity: str,
    did: str,
    spread: str,
    points: str,
) -> dict[str, Any]:
    """Group means with CIs, a − b at three levels, difference-in-differences against the
    reference condition, spread, Holm (``decoded``, ``kl``: the job's paths, tracked)."""
    from biasdrift.specdec.analysis import summarize_disparity

    del decoded, kl
    return summarize_disparity(
        decoded=dict(job.decode_paths),
        kl=dict(job.kl_paths),
        contrast=list(job.contrast),
        reference=job.reference,
        cfg=job.stats,
        outputs={
            "group_summary": group_summary,
            "identity_means": identity_means,
            "disparity": disparity,
            "did": did,
            "spread": spread,
            "points": points,
        },
    )


# --------------------------------------------------------------------------- sampling
@dataclass(frozen=True)
class SampleSpecdecAcceptanceJob:
    pair: dict[str, Any]
    view: str
    sampling: SamplingConfig  # sampling.k and sampling.n: this job's K and N
    seed: int
    runtime: Runtime


def sample_specdec_acceptance(
    job: SampleSpecdecAcceptanceJob, *, templates: str, models: list[str], sampled: str
) -> dict[str, Any]:
    """Speculative sampling (rejection sampling, temperature > 0) of one view's templates
    with one condition's (main, assistant) pair, K and N."""
    from biasdrift.specdec.sampling import sample_acceptance

    del models
    return sample_acceptance(
        pair=job.pair,
        templates_path=templates,
        view=job.view,
        cfg=job.sampling,
        out_path=sampled,
        device=choose_device(job.runtime.device),
    )


@dataclass(frozen=True)
class SummarizeSpecdecSamplingJob:
    sample_paths: dict[str, str]  # condition -> sampled parquet
    contrast: list[str]
    n_boot: int
    bootstrap_seed: int  # the study's seed
    level: float


def summarize_specdec_sampling(
    job: SummarizeSpecdecSamplingJob, *, sampled: list[str], acceptance: str
) -> dict[str, Any]:
    """Measured acceptance of speculative sampling per condition and category against its
    expectation 1 − TV, and the contrast's difference."""
    from biasdrift.specdec.sampling import summarize_sampling

    del sampled
    return summarize_sampling(
        sampled=dict(job.sample_paths),
        contrast=list(job.contrast),
        n_boot=int(job.n_boot),
        seed=int(job.bootstrap_seed),
        level=float(job.level),
        out_csv=acceptance,
    )


# --------------------------------------------------------------------------- plots
@dataclass(frozen=True)
class PlotSpecdecDisparityJob:
    contrast: list[str]
    reference: str
    view: str
    k: int
    n: int


def plot_specdec_disparity(
    job: PlotSpecdecDisparityJob,
    *,
    summary: str,
    identity_means: str,
    disparity: str,
    did: str,
    points: str,
    share_by_category_svg: str,
    share_by_category_csv: str,
    share_by_identity_svg: str,
    share_by_identity_csv: str,
    disparity_forest_svg: str,
    disparity_forest_csv: str,
    kl_vs_share_svg: str,
    kl_vs_share_csv: str,
) -> dict[str, Any]:
    """Share by category, per-identity distributions, the disparity forest plot and KL vs
    share for one view, K and N."""
    from biasdrift.specdec.analysis import plot_disparity

    figures = {
        "share_by_category_svg": share_by_category_svg,
        "share_by_category_csv": share_by_category_csv,
        "share_by_identity_svg": share_by_identity_svg,
        "share_by_identity_csv": share_by_identity_csv,
        "disparity_forest_svg": disparity_forest_svg,
        "disparity_forest_csv": disparity_forest_csv,
        "kl_vs_share_svg": kl_vs_share_svg,
        "kl_vs_share_csv": kl_vs_share_csv,
    }
    del identity_means, disparity, did, points  # read from the summary's folder
    return plot_disparity(
        stats_dir=Path(summary).parent,
        contrast=list(job.contrast),
        reference=job.reference,
        title=f"view {job.view}, K={job.k}, N={job.n}",
        outputs=figures,
    )


@dataclass(frozen=True)
class PlotSpecdecKlCurveJob:
    pass


def plot_specdec_kl_curve(job: PlotSpecdecKlCurveJob, *, curve: str, svg: str, csv: str) -> dict[str, Any]:
    """KL terms over fine-tuning."""
    import pandas as pd

    from biasdrift.specdec.figures import kl_curve

    del job
    return kl_curve(pd.read_csv(curve), svg, csv)


@dataclass(frozen=True)
class PlotSpecdecToxicityJob:
    reference: str
    view: str
    n: int


def plot_specdec_toxicity(job: PlotSpecdecToxicityJob, *, summary: str, svg: str, csv: str) -> dict[str, Any]:
    """Toxic rates with Wilson intervals per condition."""
    import pandas as pd

    from biasdrift.specdec.figures import toxicity_rates

    return toxicity_rates(pd.read_csv(summary), job.reference, svg, csv, f"view {job.view}, N={job.n}")


@dataclass(frozen=True)
class PlotSpecdecSamplingJob:
    reference: str
    view: str
    k: int
    n: int


def plot_specdec_sampling(job: PlotSpecdecSamplingJob, *, acceptance: str, svg: str, csv: str) -> dict[str, Any]:
    """Speculative sampling's measured acceptance vs 1 − TV."""
    import pandas as pd

    from biasdrift.specdec.figures import sampling_acceptance

    title = f"speculative sampling, view {job.view}, K={job.k}, N={job.n}"
    return sampling_acceptance(pd.read_csv(acceptance), job.reference, svg, csv, title)
