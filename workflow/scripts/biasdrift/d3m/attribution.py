"""Attribution scores train x query: TRAK (traker 0.3.2) and influence functions with
EKFAC (kronfluence 1.0.1), for any classifier whose forward takes named tensors and
returns logits (a Hugging Face sequence classifier or a plain ``nn.Module``).

Both return (n_train, n_query) float32 with the same sign: positive = the training
example helps the query (raises its margin ``logit[y] - logsumexp(logit[others])``).

Pitfalls handled here (spec sections 4.1-4.2, dependencies.md 4e/4f):
* TRAK: float32 (``use_half_precision=False``); the projector is chosen explicitly
  before any model is loaded (:func:`choose_projector`) and recorded: ``cuda`` needs
  fast_jl and fails at once without it, ``auto`` falls back to BasicProjector with a
  warning and the reason in the manifest (traker's own fallback is silent);
  ``block_size < proj_dim`` (traker frees a one-block projector before scoring) and a
  BasicProjector block of at most ``BASIC_BLOCK_BYTES``; ``proj_dim < n_train`` unless
  ``lambda_reg`` or ``ridge`` > 0 (:func:`check_proj_dim`: X^T X has rank <= n_train);
  X^T X and its inverse in float64 (traker inverts in float32, which is meaningless once
  the condition number passes ~1e7: the demo world's is ~6e9), the condition number
  recorded and a warning above ``ILL_CONDITIONED``; ``ridge`` adds a ridge relative to
  the mean diagonal of X^T X (scale-free, unlike ``lambda_reg``);
  transformers-5 masks are not vmap-safe, so HF models get a prebuilt 4D additive mask
  and eager attention; a fresh save directory per job (stale ids are skipped silently).
* kronfluence: ``get_influence_tracked_modules`` (the 1.x name), only nn.Linear / Conv2d
  are tracked (an empty scope is an error), ``num_workers=0``, fresh output directory
  with ``overwrite_output_dir=True``, and the torch RNG is seeded before the factors
  (the true Fisher samples labels).
"""

from __future__ import annotations

import logging
import math
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from biasdrift.runtime import progress

log = logging.getLogger(__name__)

SCOPES = ("head", "last", "all")
PROJECTORS = ("auto", "basic", "cuda", "noop")
CUDA_PROJECTORS = ("CudaProjector", "ChunkedCudaProjector")
FAST_JL_INSTALL = (
    "pip install --no-build-isolation fast_jl==0.1.3 (or traker[fast]; it compiles a CUDA kernel: "
    "needs nvcc from a CUDA toolkit, gcc and torch installed first)"
)
# BasicProjector holds a (grad_dim, block) float32 matrix: 100 columns of BERT-base's
# 110M gradient would be 44 GB
BASIC_BLOCK_BYTES = 2 * 1024**3
# condition number of X^T X (regularised) above which TRAK's scores are dominated by
# directions of almost no variance in the training features: a warning naming ridge
ILL_CONDITIONED = 1e7
HEAD_NAMES = ("classifier", "score")  # HF sequence-classification heads
LAYER_RE = re.compile(r"\.(?:layer|layers|h)\.(\d+)\.")


@dataclass(kw_only=True)
class TrakConfig:
    SCHEMA: ClassVar[str] = "$defs.d3m_trak"  # the schema section it mirrors: its defaults

    proj_dim: int = field(metadata={"help": "Projection dimension (< n_train unless lambda_reg > 0)."})
    projector: str = field(metadata={"help": "auto, cuda (fast_jl or an error), basic or noop."})
    projector_seed: int = field(metadata={"help": "Seed of the random projection."})
    lambda_reg: float = field(metadata={"help": "Ridge term added to X^T X."})
    ridge: float = field(metadata={"help": "Ridge added to X^T X relative to its mean diagonal entry."})
    batch_size: int = field(metadata={"help": "Examples per featurize / score call."})
    scope: str = field(metadata={"help": "Parameters: head, last (N blocks + head) or all."})
    last_n: int = field(metadata={"help": "Blocks tracked when scope is last."})
    proj_max_batch_size: int = field(metadata={"help": "fast_jl batch size (multiple of 8)."})

    @property
    def regularised(self) -> bool:
        return self.lambda_reg > 0 or self.ridge > 0

    def __post_init__(self) -> None:
        if self.projector not in PROJECTORS:
            raise ValueError(f"projector must be one of {PROJECTORS}, got {self.projector!r}")
        if self.scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}, got {self.scope!r}")
        if self.proj_dim < 2 or min(self.lambda_reg, self.ridge) < 0 or self.batch_size < 1 or self.last_n < 1:
            raise ValueError("need proj_dim >= 2, lambda_reg >= 0, ridge >= 0, batch_size >= 1, last_n >= 1")


@dataclass(kw_only=True)
class InfluenceConfig:
    SCHEMA: ClassVar[str] = "$defs.d3m_influence"  # the schema section it mirrors: its defaults

    strategy: str = field(metadata={"help": "identity, diagonal, kfac or ekfac."})
    scope: str = field(metadata={"help": "Linear modules: head, last (N blocks + head) or all."})
    last_n: int = field(metadata={"help": "Blocks tracked when scope is last."})
    damping: float | None = field(metadata={"help": "Damping; None = 0.1 x mean eigenvalue."})
    empirical_fisher: bool = field(metadata={"help": "True labels instead of sampled (true Fisher)."})
    batch_size: int = field(metadata={"help": "Examples per batch (factors and scores)."})

    def __post_init__(self) -> None:
        if self.strategy not in ("identity", "diagonal", "kfac", "ekfac"):
            raise ValueError(f"strategy must be identity, diagonal, kfac or ekfac, got {self.strategy!r}")
        if self.scope not in SCOPES:
            raise ValueError(f"scope must be one of {SCOPES}, got {self.scope!r}")
        if self.batch_size < 1 or self.last_n < 1 or (self.damping is not None and self.damping < 0):
            raise ValueError("need batch_size >= 1, last_n >= 1 and damping >= 0")


# --------------------------------------------------------------------------- inputs
class TensorDataset:
    """Map-style dataset of dicts of equal-length tensors (kronfluence's default
    collate stacks them)."""

    def __init__(self, tensors: dict[str, Any]):
        lengths = {name: len(t) for name, t in tensors.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"tensors of different lengths: {lengths}")
        self.tensors = tensors
        self.n = next(iter(lengths.values()))

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {name: t[i] for name, t in self.tensors.items()}

    def batches(self, names: Sequence[str], batch_size: int):
        """Tuples of tensors in ``names`` order, in dataset order."""
        for start in range(0, self.n, batch_size):
            yield tuple(self.tensors[name][start : start + batch_size] for name in names)


def margins(logits, labels):
    """``logit[y] - logsumexp(logit[others])`` per row (vmap-safe: no in-place ops)."""
    import torch

    chosen = torch.arange(logits.shape[-1], device=logits.device) == labels.unsqueeze(-1)
    correct = (logits * chosen).sum(-1)
    others = logits.masked_fill(chosen, float("-inf")).logsumexp(-1)
    return correct - others


def _logits(output):
    return output.logits if hasattr(output, "logits") else output


def _is_hf(model) -> bool:
    return hasattr(model, "config") and hasattr(model.config, "model_type")


def _logits_module_class():
    import torch

    class LogitsModule(torch.nn.Module):
        """forward(*tensors in ``input_names`` order) -> logits. For Hugging Face models
        the 2D attention mask becomes a 4D additive mask, which transformers 5 passes
        through untouched (its own mask builder branches on data: not vmap-safe)."""

        def __init__(self, model, input_names: Sequence[str]):
            super().__init__()
            self.model = model
            self.input_names = tuple(input_names)

        def forward(self, *inputs):
            kwargs = dict(zip(self.input_names, inputs, strict=True))
            mask = kwargs.get("attention_mask")
            if mask is not None and mask.dim() == 2 and _is_hf(self.model):
                dtype = next(self.model.parameters()).dtype
                kwargs["attention_mask"] = (1.0 - mask[:, None, None, :].to(dtype)) * torch.finfo(dtype).min
            return _logits(self.model(**kwargs))

    return LogitsModule


def wrap_logits(model, input_names: Sequence[str]):
    return _logits_module_class()(model, input_names)


# --------------------------------------------------------------------------- scopes
def linear_module_names(model) -> list[str]:
    import torch

    return [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear | torch.nn.Conv2d)]


def scope_modules(model, scope: str, last_n: int = 1) -> list[str] | None:
    """Names of the Linear / Conv2d modules in ``scope`` (None = all of them).

    ``head``: the classification head (``classifier`` / ``score``, else the last
    Linear); ``last``: the head, the pooler and every module of the last ``last_n``
    blocks; ``all``: every Linear / Conv2d module (embeddings are never tracked by
    kronfluence)."""
    names = linear_module_names(model)
    if not names:
        raise ValueError("the model has no nn.Linear / nn.Conv2d module that kronfluence could track")
    if scope == "all":
        return None
    head = [n for n in names if n.split(".")[0] in HEAD_NAMES or n in HEAD_NAMES] or [names[-1]]
    if scope == "head":
        return head
    if scope != "last":
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    layers = sorted({int(m.group(1)) for n in names if (m := LAYER_RE.search(f".{n}"))})
    keep = set(layers[-last_n:])
    chosen = [n for n in names if (m := LAYER_RE.search(f".{n}")) and int(m.group(1)) in keep]
    return sorted(set(chosen + head + [n for n in names if "pooler" in n]), key=names.index)


def scope_parameters(model, scope: str, last_n: int = 1) -> list[str] | None:
    """Parameter names (of ``model``) in ``scope`` for TRAK's ``grad_wrt`` (None = all;
    unlike kronfluence, TRAK's ``all`` includes the embeddings)."""
    modules = scope_modules(model, scope, last_n)
    if modules is None:
        return None
    return [n for n, _ in model.named_parameters() if any(n == m or n.startswith(f"{m}.") for m in modules)]


# --------------------------------------------------------------------------- TRAK
class TrakSetupError(ValueError):
    """A TRAK setting that cannot work (checked before any model is loaded)."""


def check_proj_dim(cfg: TrakConfig, n_train: int, where: str = "trak") -> None:
    """``proj_dim >= n_train`` without a ridge (``lambda_reg`` and ``ridge`` 0) makes X^T X
    (rank <= n_train) singular: an error naming ``where`` (the config keys) and the remedies."""
    if cfg.projector != "noop" and cfg.proj_dim >= n_train and not cfg.regularised:
        raise TrakSetupError(
            f"{where}: proj_dim {cfg.proj_dim} >= {n_train} training rows with lambda_reg and ridge 0, so X^T X "
            f"is singular and the TRAK scores are garbage; set proj_dim below {n_train}, or ridge or lambda_reg > 0"
        )


def fast_jl_problem() -> str | None:
    """Why fast_jl (traker's CUDA projector kernel) cannot be imported, or None."""
    try:
        import fast_jl  # noqa: F401
    except Exception as err:  # a broken build raises OSError / RuntimeError, not ImportError
        return f"{type(err).__name__}: {err}"
    return None


@dataclass
class ProjectorChoice:
    """The projector a TRAK run uses: ``kind`` (cuda, basic, noop) and, when ``auto``
    could not get the CUDA projector, ``fallback`` = why (recorded in the manifest)."""

    requested: str
    kind: str
    fallback: str | None = None


def choose_projector(cfg: TrakConfig, device: str) -> ProjectorChoice:
    """``cuda``: a CUDA device and an importable fast_jl, else an error naming the
    install command; ``auto``: the CUDA projector when both are there, else an explicit
    BasicProjector (a warning on a CUDA device, where it is slow and memory-hungry)."""
    cuda = device.startswith("cuda")
    if cfg.projector in ("basic", "noop"):
        return ProjectorChoice(cfg.projector, cfg.projector)
    if cfg.projector == "cuda":
        if not cuda:
            raise TrakSetupError(
                f"projector 'cuda' needs a CUDA device, but the device is {device!r}; use auto or basic"
            )
        problem = fast_jl_problem()
        if problem:
            raise TrakSetupError(
                f"projector 'cuda' needs fast_jl, which cannot be imported ({problem}); {FAST_JL_INSTALL}"
            )
        return ProjectorChoice("cuda", "cuda")
    if not cuda:
        reason = f"device is {device!r} (fast_jl needs CUDA)"
        log.info("TRAK projector auto: BasicProjector, %s", reason)
        return ProjectorChoice("auto", "basic", reason)
    problem = fast_jl_problem()
    if problem:
        reason = f"fast_jl cannot be imported ({problem})"
        log.warning("TRAK projector auto: falling back to BasicProjector, %s; %s", reason, FAST_JL_INSTALL)
        return ProjectorChoice("auto", "basic", reason)
    return ProjectorChoice("auto", "cuda")


def basic_block_size(proj_dim: int, grad_dim: int) -> int:
    """Columns per BasicProjector block: at most 100, fewer than ``proj_dim`` (traker
    frees a single-block projector before scoring), and at most BASIC_BLOCK_BYTES."""
    return max(1, min(100, proj_dim // 2, BASIC_BLOCK_BYTES // (4 * grad_dim)))


def _trak_output(input_names: Sequence[str]):
    import torch
    from trak.modelout_functions import AbstractModelOutput

    class MarginOutput(AbstractModelOutput):
        """TRAK model output for a classifier taking ``input_names`` tensors: the margin,
        and Q = 1 - p(correct label) as out-to-loss gradient."""

        def __init__(self) -> None:
            super().__init__()
            self.n_inputs = len(input_names)

        def get_output(self, model, weights, buffers, *example):
            *inputs, label = example
            logits = torch.func.functional_call(model, (weights, buffers), args=tuple(x.unsqueeze(0) for x in inputs))
            return margins(logits, label.unsqueeze(0)).sum()

        def get_out_to_loss_grad(self, model, weights, buffers, batch):
            *inputs, labels = batch
            logits = torch.func.functional_call(model, (weights, buffers), args=tuple(inputs))
            probs = torch.softmax(logits, dim=-1)[torch.arange(logits.shape[0]), labels]
            return (1 - probs).clone().detach().unsqueeze(-1)

    return MarginOutput()


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None  # JSON has no infinity


def _score_computer(cfg: TrakConfig, record: list[dict[str, float]]):
    """traker's BasicScoreComputer with X^T X, its ridge and its inverse in float64; each
    checkpoint's condition number and absolute ridge are appended to ``record``."""
    import torch
    from trak.score_computers import BasicScoreComputer

    class Float64ScoreComputer(BasicScoreComputer):
        def get_xtx(self, grads):
            xtx = torch.zeros(grads.shape[1], grads.shape[1], dtype=torch.float64, device=self.device)
            for block in torch.split(grads, self.CUDA_MAX_DIM_SIZE, dim=0):
                block = block.to(self.device, torch.float64)
                xtx += block.T @ block
            return xtx

        def get_x_xtx_inv(self, grads, xtx):
            xtx = xtx.to(torch.float64)
            lam = cfg.lambda_reg + cfg.ridge * float(xtx.diagonal().mean())
            xtx = xtx + lam * torch.eye(xtx.shape[0], dtype=xtx.dtype, device=xtx.device)
            eig = torch.linalg.eigvalsh(xtx)
            condition = float(eig[-1] / eig[0]) if eig[0] > 0 else math.inf  # inf: singular
            record.append({"condition": condition, "ridge": lam})
            if condition > ILL_CONDITIONED:
                log.warning(
                    "TRAK: X^T X has condition number %.3g (ridge %.3g): the scores are dominated by directions of "
                    "almost no variance in the training features; consider trak.ridge (e.g. 1e-3)",
                    condition,
                    lam,
                )
            inverse = torch.linalg.inv(xtx)
            inverse /= inverse.abs().mean()  # traker's scale (its scores are relative)
            blocks = [b.to(self.device, torch.float64) @ inverse for b in torch.split(grads, self.CUDA_MAX_DIM_SIZE)]
            return torch.cat(blocks).to(self.dtype)

    return Float64ScoreComputer


def make_projector(choice: ProjectorChoice, cfg: TrakConfig, grad_dim: int, device: str):
    """The projector TRAK will use (None: let traker build its CUDA projector, checked
    afterwards by :func:`check_projector`)."""
    import torch
    from trak.projectors import BasicProjector, NoOpProjector, ProjectionType

    if choice.kind == "noop":
        return NoOpProjector(grad_dim=grad_dim, device=device)
    if choice.kind == "cuda":
        return None
    return BasicProjector(
        grad_dim=grad_dim,
        proj_dim=cfg.proj_dim,
        seed=cfg.projector_seed,
        proj_type=ProjectionType.normal,
        device=device,
        block_size=basic_block_size(cfg.proj_dim, grad_dim),
        dtype=torch.float32,
    )


def check_projector(traker, choice: ProjectorChoice) -> str:
    """The class name of the projector in use. traker falls back to BasicProjector
    silently when its fast_jl test projection fails: an error for ``cuda``, a recorded
    fallback (with a warning) for ``auto``."""
    name = type(traker.projector).__name__
    wanted = {"basic": ("BasicProjector",), "noop": ("NoOpProjector",), "cuda": CUDA_PROJECTORS}[choice.kind]
    if name in wanted:
        return name
    if choice.requested == "auto" and choice.kind == "cuda" and name == "BasicProjector":
        choice.fallback = "traker could not run fast_jl on this device and fell back (see its log)"
        log.warning("TRAK projector auto: %s", choice.fallback)
        return name
    raise RuntimeError(
        f"TRAK uses {name}, but projector {choice.requested!r} asks for {list(wanted)}"
        + (f" (fast_jl does not run here; {FAST_JL_INSTALL})" if choice.kind == "cuda" else "")
    )


def trak_scores(
    models: Sequence[Any],
    input_names: Sequence[str],
    train: TensorDataset,
    query: TensorDataset,
    cfg: TrakConfig,
    save_dir: str | Path,
    device: str = "cpu",
    choice: ProjectorChoice | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """TRAK scores (n_train, n_query) of an ensemble of checkpoints of one architecture
    (``models``: loaded classifiers; scores are averaged over them as in traker).
    ``choice``: the projector :func:`choose_projector` picked (chosen here if None)."""
    import torch
    from trak import TRAKer

    if not models:
        raise ValueError("TRAK needs at least one checkpoint")
    n_train = len(train)
    check_proj_dim(cfg, n_train)
    choice = choice or choose_projector(cfg, device)
    names = [*input_names, "labels"]
    wrappers = [wrap_logits(m.to(device).eval(), input_names) for m in models]
    grad_wrt = scope_parameters(wrappers[0], cfg.scope, cfg.last_n)
    grad_dim = sum(p.numel() for n, p in wrappers[0].named_parameters() if grad_wrt is None or n in grad_wrt)
    if cfg.projector == "noop" and grad_dim >= n_train and not cfg.regularised:
        raise TrakSetupError(
            f"noop projector: {grad_dim} gradient dims >= n_train {n_train}; set ridge or lambda_reg > 0"
        )
    save_dir = Path(save_dir)
    shutil.rmtree(save_dir, ignore_errors=True)  # never resume a stale store
    save_dir.mkdir(parents=True)
    conditioning: list[dict[str, float]] = []  # per checkpoint, from finalize_features
    traker = TRAKer(
        model=wrappers[0],
        task=_trak_output(input_names),
        train_set_size=n_train,
        save_dir=str(save_dir),
        load_from_save_dir=True,  # False breaks scoring in 0.3.2; the directory is fresh
        device=device,
        projector=make_projector(choice, cfg, grad_dim, device),
        proj_dim=cfg.proj_dim,
        proj_max_batch_size=cfg.proj_max_batch_size,
        use_half_precision=False,
        projector_seed=cfg.projector_seed,
        lambda_reg=cfg.lambda_reg,
        score_computer=_score_computer(cfg, conditioning),
        grad_wrt=grad_wrt,
        logging_level=logging.WARNING,
    )
    projector = check_projector(traker, choice)
    log.info(
        "TRAK: %d checkpoint(s), %d train x %d query, projector %s, grad dim %d, proj dim %d",
        len(wrappers),
        n_train,
        len(query),
        projector,
        grad_dim,
        traker.proj_dim,
    )

    def to_device(batch):
        return [t.to(device) for t in batch]

    started = time.perf_counter()
    for model_id, wrapper in enumerate(wrappers):
        traker.load_checkpoint(wrapper.state_dict(), model_id=model_id)
        for batch in progress(train.batches(names, cfg.batch_size), desc=f"TRAK featurize #{model_id}"):
            traker.featurize(batch=to_device(batch), num_samples=len(batch[0]))
    traker.finalize_features()
    featurized = time.perf_counter()
    for model_id, wrapper in enumerate(wrappers):
        traker.start_scoring_checkpoint(
            exp_name="query", checkpoint=wrapper.state_dict(), model_id=model_id, num_targets=len(query)
        )
        for batch in query.batches(names, cfg.batch_size):
            traker.score(batch=to_device(batch), num_samples=len(batch[0]))
    scores = np.array(traker.finalize_scores(exp_name="query"), dtype=np.float32)  # [n_train, n_query]
    scored = time.perf_counter()
    del traker
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    shutil.rmtree(save_dir, ignore_errors=True)
    info = {
        "method": "trak",
        "projector": projector,
        "projector_requested": choice.requested,
        "projector_fallback": choice.fallback,
        "proj_dim": cfg.proj_dim if projector != "NoOpProjector" else grad_dim,
        "grad_dim": grad_dim,
        "checkpoints": len(wrappers),
        "xtx_condition": _finite_or_none(max(c["condition"] for c in conditioning)),
        "ridge_absolute": [c["ridge"] for c in conditioning],
        "dtype": str(scores.dtype),  # what the matrix holds, not what it should
        "scope": cfg.scope,
        "device": device,
        "seconds": {"featurize": round(featurized - started, 3), "score": round(scored - featurized, 3)},
    }
    return scores, info


# --------------------------------------------------------------------------- kronfluence
def _influence_task(input_names: Sequence[str], modules: list[str] | None):
    import torch
    import torch.nn.functional as F  # noqa: N812
    from kronfluence.task import Task

    class ClassificationTask(Task):
        """Summed cross-entropy as training loss (labels sampled from the model for the
        true Fisher), minus the margin as measurement: a positive score then means
        helpful, as in TRAK."""

        def _logits(self, batch, model):
            return _logits(model(**{name: batch[name] for name in input_names}))

        def compute_train_loss(self, batch, model, sample=False):
            logits = self._logits(batch, model)
            if sample:
                with torch.no_grad():
                    labels = torch.multinomial(torch.softmax(logits.detach(), dim=-1), num_samples=1).flatten()
            else:
                labels = batch["labels"]
            return F.cross_entropy(logits, labels, reduction="sum")

        def compute_measurement(self, batch, model):
            return -margins(self._logits(batch, model), batch["labels"]).sum()

        def get_influence_tracked_modules(self):
            return modules

        def get_attention_mask(self, batch):
            return batch.get("attention_mask")

    return ClassificationTask()


def influence_scores(
    model: Any,
    input_names: Sequence[str],
    train: TensorDataset,
    query: TensorDataset,
    cfg: InfluenceConfig,
    output_dir: str | Path,
    device: str = "cpu",
    seed: int = 0,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Influence scores (n_train, n_query) with kronfluence (EKFAC by default)."""
    import torch
    from kronfluence.analyzer import Analyzer, prepare_model
    from kronfluence.arguments import FactorArguments, ScoreArguments
    from kronfluence.module.tracked_module import TrackedModule
    from kronfluence.utils.dataset import DataLoaderKwargs

    model = model.to(device).eval()
    modules = scope_modules(model, cfg.scope, cfg.last_n)
    task = _influence_task(input_names, modules)
    model = prepare_model(model, task)
    tracked = [n for n, m in model.named_modules() if isinstance(m, TrackedModule)]
    if not tracked:
        raise ValueError(f"kronfluence tracks no module for scope {cfg.scope!r} (only nn.Linear / nn.Conv2d count)")
    log.info(
        "influence (%s): %d tracked module(s), %d train x %d query", cfg.strategy, len(tracked), len(train), len(query)
    )
    output_dir = Path(output_dir)
    shutil.rmtree(output_dir, ignore_errors=True)
    analyzer = Analyzer(
        analysis_name="d3m",
        model=model,
        task=task,
        cpu=not device.startswith("cuda"),
        output_dir=str(output_dir),
        disable_tqdm=True,
    )
    analyzer.set_dataloader_kwargs(DataLoaderKwargs(num_workers=0))
    torch.manual_seed(seed)  # the true Fisher samples labels from the torch RNG
    started = time.perf_counter()
    analyzer.fit_all_factors(
        factors_name="factors",
        dataset=train,
        per_device_batch_size=cfg.batch_size,
        factor_args=FactorArguments(strategy=cfg.strategy, use_empirical_fisher=cfg.empirical_fisher),
        overwrite_output_dir=True,
    )
    fitted = time.perf_counter()
    analyzer.compute_pairwise_scores(
        scores_name="pairwise",
        factors_name="factors",
        query_dataset=query,
        train_dataset=train,
        per_device_query_batch_size=cfg.batch_size,
        per_device_train_batch_size=cfg.batch_size,
        score_args=ScoreArguments(damping_factor=cfg.damping),
        overwrite_output_dir=True,
    )
    scores = analyzer.load_pairwise_scores("pairwise")["all_modules"]  # [n_query, n_train]
    scores = scores.T.contiguous().float().cpu().numpy()
    scored = time.perf_counter()
    shutil.rmtree(output_dir, ignore_errors=True)
    info = {
        "method": "if",
        "strategy": cfg.strategy,
        "scope": cfg.scope,
        "tracked_modules": tracked,
        "damping": cfg.damping if cfg.damping is not None else "0.1 x mean eigenvalue",
        "fisher": "empirical" if cfg.empirical_fisher else "true (sampled labels)",
        "dtype": str(scores.dtype),  # what the matrix holds, not what it should
        "device": device,
        "seconds": {"factors": round(fitted - started, 3), "score": round(scored - fitted, 3)},
    }
    return scores, info
