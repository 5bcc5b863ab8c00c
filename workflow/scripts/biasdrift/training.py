"""The one training loop every training rule reuses: Hugging Face ``Trainer`` (trl's
trainers are subclasses of it) with resumable state outside the declared outputs.

Snakemake deletes a job's declared outputs before the job starts, so checkpoints live in
an undeclared ``.scratch`` directory beside them. :func:`fit` resumes from the newest
complete checkpoint there, writes the final weights and metrics atomically, and only
then removes the scratch directory. A job killed at any point therefore continues
where it stopped, and on CPU ends with the same weights as an uninterrupted run.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from biasdrift.config import config_from_dict  # noqa: F401 - re-exported for training rules
from biasdrift.runtime import atomic_path, config_hash, read_json, write_json

log = logging.getLogger(__name__)

CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")
RUN_CONFIG = "run_config.json"


@dataclass
class TrainConfig:
    """Fields shared by every training rule (schema: ``$defs/train_fields``)."""

    SCHEMA: ClassVar[str] = "$defs.train"  # the schema section it mirrors: its defaults

    max_steps: int = field(metadata={"help": "Optimizer steps; -1 = use epochs."})
    epochs: float = field(metadata={"help": "Epochs (when max_steps is -1)."})
    batch_size: int = field(metadata={"help": "Examples per device per micro-batch."})
    grad_accum: int = field(metadata={"help": "Micro-batches per optimizer step."})
    learning_rate: float = field(metadata={"help": "Peak AdamW learning rate."})
    weight_decay: float = field(metadata={"help": "AdamW weight decay."})
    adam_beta1: float = field(metadata={"help": "AdamW beta1."})
    adam_beta2: float = field(metadata={"help": "AdamW beta2."})
    warmup_ratio: float = field(metadata={"help": "Fraction of steps for linear warm-up."})
    lr_scheduler: str = field(metadata={"help": "linear, cosine, constant, constant_with_warmup."})
    max_grad_norm: float = field(metadata={"help": "Gradient clipping norm (0 = off)."})
    save_steps: int = field(metadata={"help": "Resumable checkpoint every N steps."})
    eval_steps: int = field(metadata={"help": "Evaluate every N steps (0 = at the end)."})
    logging_steps: int = field(metadata={"help": "Log the loss every N steps."})
    early_stopping_patience: int | None = field(
        metadata={"help": "Evaluations without improvement before stopping (None = off)."}
    )
    precision: str = field(metadata={"help": "auto (bf16 on CUDA), fp32 or bf16."})
    gradient_checkpointing: bool = field(metadata={"help": "Recompute activations (GPU)."})

    def __post_init__(self) -> None:
        if not 0 <= self.warmup_ratio < 1:
            raise ValueError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if self.max_steps == 0 or self.max_steps < -1:
            raise ValueError(f"max_steps must be positive or -1, got {self.max_steps}")
        if self.early_stopping_patience and not self.eval_steps:
            raise ValueError("early_stopping_patience needs eval_steps > 0")
        if self.precision not in {"auto", "fp32", "bf16"}:
            raise ValueError(f"precision must be auto, fp32 or bf16, got {self.precision!r}")


def use_bf16(cfg: TrainConfig, device_type: str) -> bool:
    if cfg.precision == "bf16":
        if device_type != "cuda":
            raise ValueError("precision bf16 needs a CUDA device; use auto or fp32 on CPU")
        return True
    if cfg.precision == "auto" and device_type == "cuda":
        import torch

        return torch.cuda.is_bf16_supported()
    return False


def require_fp32_trainable(model, where: str) -> None:
    """Full fine-tuning keeps float32 master weights: an optimizer stepping bf16/fp16
    weights loses every update smaller than the weights' rounding step (about 1/256 of a
    weight in bf16), so small-lr fine-tunes silently stall. Mixed precision comes from
    ``precision`` (autocast), never from half-precision parameters. Raises ValueError
    naming ``where`` and the first offending parameter."""
    import torch

    half_dtypes = (torch.float16, torch.bfloat16)
    half = [(name, p.dtype) for name, p in model.named_parameters() if p.requires_grad and p.dtype in half_dtypes]
    if half:
        name, dtype = half[0]
        raise ValueError(
            f"{where}: {len(half)} trainable parameter(s) are {str(dtype).removeprefix('torch.')} (e.g. {name}); "
            "full fine-tuning needs float32 master weights: load the model with dtype float32 and let "
            "precision (auto/bf16) autocast the compute"
        )


LOGPROB_CHUNK = 256  # positions whose full-vocabulary scores are materialised at once


def token_logprobs(logits, targets, chunk_size: int = LOGPROB_CHUNK):
    """``log p(targets[..., t])`` under ``logits[..., t, :]`` for every position, as
    ``logit[target] − logsumexp(logits)`` in float32 (float64 for float64 logits).

    ``logits`` ``[..., T, V]`` may be half precision and non-contiguous (e.g. a ``[:, :-1]``
    slice); ``targets`` ``[..., T]``. Positions are processed ``chunk_size`` at a time
    (row by row of the leading dims), so the float32 intermediates hold at most
    ``chunk_size × V`` values: a 128k vocabulary never needs a full ``[batch, seq, vocab]``
    float32 copy plus its log-softmax."""
    import torch

    if logits.shape[:-1] != targets.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} do not match")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    dtype = torch.float64 if logits.dtype == torch.float64 else torch.float32
    out = torch.empty(targets.shape, dtype=dtype, device=logits.device)
    n_pos = logits.shape[-2]
    rows = logits.reshape(-1, *logits.shape[-2:]) if logits.dim() != 3 else logits  # [R, T, V]
    flat_targets, flat_out = targets.reshape(-1, n_pos), out.view(-1, n_pos)
    for r in range(rows.shape[0]):
        for start in range(0, n_pos, chunk_size):
            stop = min(start + chunk_size, n_pos)
            flat_out[r, start:stop] = _chunk_logprobs(rows[r, start:stop], flat_targets[r, start:stop], dtype)
    return out


def _chunk_logprobs(logits, targets, dtype):
    """``[n, V]`` scores and ``[n]`` targets -> ``[n]`` log-probabilities."""
    x = logits.to(dtype)
    return x.gather(-1, targets[:, None].to(x.device)).squeeze(-1) - x.logsumexp(-1)


def training_arguments(
    cfg: TrainConfig,
    scratch_dir: str | Path,
    seed: int,
    device_type: str = "cpu",
    args_cls: type | None = None,
    **overrides: Any,
):
    """Map a :class:`TrainConfig` onto ``TrainingArguments`` (or a subclass such as
    trl's ``DPOConfig`` / ``SFTConfig``, given as ``args_cls``)."""
    if args_cls is None:
        from transformers import TrainingArguments as args_cls  # noqa: N813

    evaluate = cfg.eval_steps > 0
    kwargs: dict[str, Any] = {
        "output_dir": str(scratch_dir),
        "max_steps": cfg.max_steps,
        "num_train_epochs": cfg.epochs,
        "per_device_train_batch_size": cfg.batch_size,
        "per_device_eval_batch_size": cfg.batch_size,
        "gradient_accumulation_steps": cfg.grad_accum,
        "learning_rate": cfg.learning_rate,
        "weight_decay": cfg.weight_decay,
        "adam_beta1": cfg.adam_beta1,
        "adam_beta2": cfg.adam_beta2,
        "warmup_steps": cfg.warmup_ratio,  # a float < 1 is a ratio in transformers 5
        "lr_scheduler_type": cfg.lr_scheduler,
        "max_grad_norm": cfg.max_grad_norm,
        "save_strategy": "steps",
        "save_steps": cfg.save_steps,
        "save_total_limit": 2,
        "eval_strategy": "steps" if evaluate else "no",
        "eval_steps": cfg.eval_steps if evaluate else None,
        "logging_strategy": "steps",
        "logging_steps": cfg.logging_steps,
        "seed": seed,
        "data_seed": seed,
        "use_cpu": device_type != "cuda",
        "bf16": use_bf16(cfg, device_type),
        "activation_checkpointing": cfg.gradient_checkpointing,
        "report_to": "none",
        "disable_tqdm": not sys.stderr.isatty(),
        "dataloader_num_workers": 0,
        "restore_callback_states_from_checkpoint": True,
    }
    if cfg.early_stopping_patience:
        kwargs.update(
            load_best_model_at_end=True,
            metric_for_best_model="eval_loss",
            greater_is_better=False,
            save_steps=math.lcm(cfg.save_steps, cfg.eval_steps),
        )
    kwargs.update(overrides)
    return args_cls(**kwargs)


def make_trainer(
    model,
    cfg: TrainConfig,
    *,
    scratch_dir: str | Path,
    seed: int,
    device: str,
    train_set,
    eval_set=None,
    collator=None,
    tokenizer=None,
    callbacks: Iterable[Any] = (),
    trainer_cls: type | None = None,
    args_cls: type | None = None,
    trainer_kwargs: dict[str, Any] | None = None,
    **overrides: Any,
):
    """The one Trainer set-up of every training stage: ``TrainingArguments`` from ``cfg``
    (``overrides`` on top), the step-logging / early-stopping callbacks of
    :func:`callbacks_for` then ``callbacks``, the collator (for the plain Trainer
    ``default_data_collator`` unless given; a ``trainer_cls`` given None builds its own)
    and ``tokenizer`` as the processing class. ``trainer_cls`` /
    ``args_cls``: trl's trainers and configs; ``trainer_kwargs``: what they take beyond
    the Trainer's (``ref_model``, ``peft_config``)."""
    import torch

    if trainer_cls is None:  # the Trainer's own default collator does not stack our blocks
        from transformers import Trainer as trainer_cls  # noqa: N813

        if collator is None:
            from transformers import default_data_collator as collator
    # a trl trainer given collator None builds its own (and sets the pad token)
    args = training_arguments(cfg, scratch_dir, seed, torch.device(device).type, args_cls=args_cls, **overrides)
    kwargs = {"processing_class": tokenizer} if tokenizer is not None else {}
    return trainer_cls(
        model=model,
        args=args,
        train_dataset=train_set,
        eval_dataset=eval_set,
        data_collator=collator,
        callbacks=[*callbacks_for(cfg), *callbacks],
        **kwargs,
        **(trainer_kwargs or {}),
    )


def callbacks_for(cfg: TrainConfig) -> list[Any]:
    """Callbacks every training rule gets: step logging, and early stopping if asked."""
    out: list[Any] = [_callbacks()["LogCallback"]()]
    if cfg.early_stopping_patience:
        from transformers import EarlyStoppingCallback

        out.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))
    return out


@functools.cache
def _callbacks() -> dict[str, type]:
    """The Trainer callbacks, defined on first use: subclassing TrainerCallback imports
    the Trainer stack (transformers.trainer_utils, peft, ...), about 3 s of start-up that
    every job importing this module paid at import time, training or not."""
    from transformers import TrainerCallback

    class LogCallback(TrainerCallback):
        """Progress in the rule log (tqdm is off in non-TTY logs): step, loss, rate, ETA."""

        def __init__(self) -> None:
            self._start = None
            self._start_step = 0

        def on_train_begin(self, args, state, control, **kwargs):  # noqa: ARG002
            self._start, self._start_step = time.time(), state.global_step
            log.info("training: %d optimizer steps (starting at %d)", state.max_steps, state.global_step)

        def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: ARG002
            if not logs:
                return
            done = state.global_step - self._start_step
            elapsed = time.time() - (self._start or time.time())
            rate = done / elapsed if elapsed > 0 else float("nan")
            eta = (state.max_steps - state.global_step) / rate if rate and rate > 0 else float("nan")
            shown = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in logs.items())
            log.info("step %d/%d: %s (%.2f steps/s, eta %.0fs)", state.global_step, state.max_steps, shown, rate, eta)

    class StepCounter(TrainerCallback):
        """Optimizer steps actually run by this process (proof that a resume skipped the
        steps before its checkpoint)."""

        def __init__(self) -> None:
            self.steps = 0

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ARG002
            self.steps += 1

    return {"LogCallback": LogCallback, "StepCounter": StepCounter}


def __getattr__(name: str) -> type:
    """``training.LogCallback`` / ``training.StepCounter``, created on first access (PEP 562)."""
    if name in ("LogCallback", "StepCounter"):
        return _callbacks()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------- resume
def checkpoint_complete(path: Path) -> bool:
    """HF Trainer writes trainer_state.json last: a checkpoint without a parseable one
    was interrupted while being written."""
    state = path / "trainer_state.json"
    if not state.is_file():
        return False
    try:
        read_json(state)
    except ValueError:
        return False
    return True


def latest_checkpoint(scratch_dir: str | Path) -> Path | None:
    scratch = Path(scratch_dir)
    if not scratch.is_dir():
        return None
    found = []
    for child in scratch.iterdir():
        match = CHECKPOINT_RE.match(child.name)
        if match and child.is_dir():
            if checkpoint_complete(child):
                found.append((int(match.group(1)), child))
            else:
                log.warning("ignoring incomplete checkpoint %s", child)
    return max(found)[1] if found else None


def prepare_scratch(scratch_dir: str | Path, run_config: Any) -> Path | None:
    """Make ``scratch_dir`` belong to this exact run configuration and return the
    checkpoint to resume from (None for a fresh start). Checkpoints of a different
    configuration (changed params, other data) are discarded, never resumed."""
    scratch = Path(scratch_dir)
    marker = scratch / RUN_CONFIG
    wanted = config_hash(run_config)
    if scratch.exists():
        previous = read_json(marker).get("hash") if marker.is_file() else None
        if previous != wanted:
            if any(scratch.iterdir()):  # (the Trainer creates its output_dir empty: nothing to discard)
                log.warning("discarding scratch state in %s: it belongs to another configuration", scratch)
            shutil.rmtree(scratch)
    scratch.mkdir(parents=True, exist_ok=True)
    if not marker.is_file():
        write_json(marker, {"hash": wanted, "config": run_config})
    checkpoint = latest_checkpoint(scratch)
    if checkpoint is not None:
        log.info("resuming from %s", checkpoint)
    return checkpoint


def default_save(trainer, out_dir: Path) -> None:
    trainer.save_model(str(out_dir))


def fit(
    trainer,  # transformers.Trainer or a subclass (trl trainers too)
    *,
    scratch_dir: str | Path,
    out_dir: str | Path,
    metrics_path: str | Path,
    run_config: Any,
    save: Callable[[Any, Path], None] = default_save,
    keep_scratch: bool = False,
) -> dict[str, Any]:
    """Train with resume, save the final model to ``out_dir`` and metrics to
    ``metrics_path`` (both atomically), then drop the scratch state.

    ``run_config`` identifies the run (config, seed, data fingerprint); checkpoints made
    under another ``run_config`` are never resumed. ``trainer.args.output_dir`` must be
    ``scratch_dir``.
    """
    if Path(trainer.args.output_dir).resolve() != Path(scratch_dir).resolve():
        raise ValueError("trainer.args.output_dir must be the scratch directory")
    from transformers import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # LogCallback logs instead of print()
    counter = _callbacks()["StepCounter"]()
    trainer.add_callback(counter)
    checkpoint = prepare_scratch(scratch_dir, run_config)
    resumed_from = int(CHECKPOINT_RE.match(checkpoint.name).group(1)) if checkpoint else 0
    started = time.time()
    result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    final_eval = final_evaluation(trainer)
    with atomic_path(out_dir) as tmp:
        save(trainer, tmp)
    metrics = {
        "global_step": trainer.state.global_step,
        "epoch": trainer.state.epoch,
        "train_loss": result.training_loss,
        "final_eval": final_eval,
        "resumed_from_step": resumed_from,
        "steps_this_attempt": counter.steps,
        "wall_seconds_this_attempt": round(time.time() - started, 3),
        "best_checkpoint_step": _step_of(trainer.state.best_model_checkpoint),
        "log_history": trainer.state.log_history,
        "train_config": run_config,
    }
    write_json(metrics_path, metrics)
    if not keep_scratch:
        remove_scratch(scratch_dir)
    return metrics


def remove_scratch(scratch_dir: str | Path) -> None:
    """Delete a job's scratch state, and the shared ``.scratch`` folder once empty."""
    scratch = Path(scratch_dir)
    shutil.rmtree(scratch, ignore_errors=True)
    if scratch.parent.name == ".scratch":
        with contextlib.suppress(OSError):
            scratch.parent.rmdir()


def final_evaluation(trainer) -> dict[str, Any]:
    """Validation metrics of the final weights: those logged at the last step when the
    schedule already evaluated there (and no best checkpoint was reloaded), else a
    fresh evaluation."""
    if trainer.eval_dataset is None:
        return {}
    if not trainer.args.load_best_model_at_end:
        for entry in reversed(trainer.state.log_history):
            if "eval_loss" in entry:
                if entry.get("step") == trainer.state.global_step:
                    return {k: v for k, v in entry.items() if k.startswith("eval_") or k == "epoch"}
                break
    return trainer.evaluate()


def _step_of(checkpoint: str | None) -> int | None:
    if not checkpoint:
        return None
    match = CHECKPOINT_RE.match(Path(checkpoint).name)
    return int(match.group(1)) if match else None
