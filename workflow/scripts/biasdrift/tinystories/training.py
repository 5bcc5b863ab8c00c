"""Pretraining (base on all data, control without the feature), deletion and recovery:
one function, :func:`train_story_model`, on the shared HF Trainer loop
(:func:`biasdrift.training.training_arguments` + :func:`~biasdrift.training.fit`).

What the Trainer gives for free, and how it maps onto llama2.c's ``train.py``:
AdamW (betas and weight decay from the config; the Trainer exempts norm weights from
decay by name), warm-up + cosine or constant schedule, gradient clipping, gradient
accumulation over *distinct* micro-batches (the loss is normalised by the number of
targets of the whole step, so k micro-batches equal the full batch; the original reused
one micro-batch k times), evaluation every ``eval_steps``, resumable checkpoints in the
job's ``.scratch`` directory, bf16 autocast / fused AdamW / ``torch.compile`` on CUDA.
Recovery additionally snapshots the model at configured steps (outputs of the rule).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from biasdrift.runtime import atomic_path, set_threads, sha256_file
from biasdrift.training import TrainConfig, fit, make_trainer

log = logging.getLogger(__name__)

# Dense bf16 peak FLOP/s of the GPUs the MFU is reported against (spec 6.2).
PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


@dataclass
class StoryTrainConfig(TrainConfig):
    """Training fields plus what the story models add: a stage's ``train`` section, its
    ``eval_blocks`` and the study-wide window settings (workflow.stage_train)."""

    block_size: int = field(metadata={"help": "Tokens per training window."})
    eval_blocks: int = field(metadata={"help": "Test-split windows in each evaluation (0 = none)."})
    compile: bool = field(metadata={"help": "torch.compile the model (CUDA only)."})
    align_to_bos: bool = field(metadata={"help": "Windows start at an example's BOS (else packed)."})


@dataclass(kw_only=True)
class ModelSpec:
    """A model built from scratch (schema: ``studies.tinystories.model``)."""

    SCHEMA: ClassVar[str] = "studies.tinystories.model"  # the schema section it mirrors: its defaults

    preset: str = field(metadata={"help": "tiny, base8M, base30M, base91M or base210M."})
    overrides: Any = field(
        default=None, metadata={"help": "ModelArgs fields to override (mapping; schema $defs/llama2c_overrides)."}
    )


def build_story_model(spec: ModelSpec, vocab_size: int):
    """A fresh llama2c model; its vocabulary is the trained tokenizer's."""
    from biasdrift.tinystories.architectures import Llama2cForCausalLM, model_config, parse_overrides

    overrides = parse_overrides(spec.overrides)
    if "vocab_size" in overrides and overrides["vocab_size"] != vocab_size:
        raise ValueError(
            f"model override vocab_size={overrides['vocab_size']} differs from the tokenizer's {vocab_size}"
        )
    config = model_config(spec.preset, {**overrides, "vocab_size": vocab_size})
    return Llama2cForCausalLM(config)


class StepSnapshots:
    """Save the model (save_pretrained) at the given optimizer steps into
    ``<scratch>/snapshots/step<k>`` (atomically, so a kill mid-write leaves nothing);
    step 0 is the starting model. They survive a kill with the rest of the scratch
    state, so a resumed run still delivers every step."""

    def __init__(self, steps: list[int], directory: Path):
        self.steps, self.directory = sorted(set(steps)), directory

    def path(self, step: int) -> Path:
        return self.directory / f"step{step}"

    def save(self, model, step: int) -> None:
        if step in self.steps and not self.path(step).is_dir():
            with atomic_path(self.path(step)) as tmp:
                model.save_pretrained(tmp)
            log.info("snapshot at step %d", step)

    def callback(self):
        from transformers import TrainerCallback

        snapshots = self

        class _Callback(TrainerCallback):
            def on_train_begin(self, args, state, control, model=None, **kwargs):  # noqa: ARG002
                if state.global_step == 0:
                    snapshots.save(model, 0)

            def on_step_end(self, args, state, control, model=None, **kwargs):  # noqa: ARG002
                snapshots.save(model, state.global_step)

        return _Callback()


def device_peak_flops(device) -> float | None:
    import torch

    if getattr(device, "type", str(device)) != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_FLOPS.items() if key in name), None)


def throughput(metrics: dict, cfg: StoryTrainConfig, model, device) -> dict[str, Any]:
    """Tokens per second of this attempt and model FLOPs utilisation (PaLM estimate,
    divided by the peak of the actual device; None on CPU or an unknown GPU)."""
    from biasdrift.tinystories.architectures import count_parameters, flops_per_token

    tokens_per_step = cfg.batch_size * cfg.grad_accum * cfg.block_size
    seconds = metrics["wall_seconds_this_attempt"]
    rate = metrics["steps_this_attempt"] * tokens_per_step / seconds if seconds > 0 else None
    peak = device_peak_flops(device)
    flops = flops_per_token(model.config, cfg.block_size, count_parameters(model))
    return {
        "tokens_per_step": tokens_per_step,
        "tokens_per_second": rate,
        "flops_per_token": flops,
        "mfu": (rate * flops / peak) if (rate and peak) else None,
    }


def train_story_model(
    *,
    train_dir: str | Path,
    split: str,
    cfg: StoryTrainConfig,
    seed: int,
    device,
    out_dir: str | Path,
    metrics_path: str | Path,
    scratch_dir: str | Path,
    tokenizer_model: str | Path,
    pretrain_fraction: float = 0.0,
    build: ModelSpec | None = None,
    init_ref: dict[str, Any] | None = None,
    snapshot_steps: dict[int, str | Path] | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Train one story model on the ``split`` windows of the pretokenized dataset
    ``train_dir`` (evaluating on its test split), from scratch (``build``) or from a
    saved model (``init_ref``, loaded with the foundation's ``load_model``), and save it
    to ``out_dir``. With ``snapshot_steps`` ({step < max_steps: output dir}) the model
    at each of those steps is delivered too (step 0 = the starting model)."""
    import torch

    import biasdrift.tinystories.architectures  # noqa: F401 - registers llama2c with the Auto classes
    from biasdrift.models import load_model
    from biasdrift.tinystories.data import windows_for

    if (build is None) == (init_ref is None):
        raise ValueError("give exactly one of build (from scratch) or init_ref (fine-tune)")
    import sentencepiece as spm

    vocab_size = spm.SentencePieceProcessor(model_file=str(tokenizer_model)).vocab_size()
    device = torch.device(device)
    if threads:
        set_threads(threads)
    torch.manual_seed(seed)
    model = build_story_model(build, vocab_size) if build else load_model(init_ref, device="cpu")
    if model.config.vocab_size != vocab_size:
        raise ValueError(f"model vocabulary {model.config.vocab_size} != tokenizer's {vocab_size}")
    if cfg.block_size > model.config.max_seq_len:  # spec 7.8: fail at start-up, not deep inside RoPE
        raise ValueError(f"block_size {cfg.block_size} exceeds the model's max_seq_len {model.config.max_seq_len}")
    if snapshot_steps and not all(0 <= s < cfg.max_steps for s in snapshot_steps):
        raise ValueError(f"snapshot steps {sorted(snapshot_steps)} must lie in [0, max_steps={cfg.max_steps})")

    train_set = windows_for(train_dir, split, cfg.block_size, pretrain_fraction, align_to_bos=cfg.align_to_bos)
    eval_set = None
    if cfg.eval_blocks:
        eval_set = windows_for(
            train_dir, "test", cfg.block_size, max_windows=cfg.eval_blocks, align_to_bos=cfg.align_to_bos
        )
    log.info(
        "train %s: %d windows of %d tokens (%s split), %d tokens per optimizer step",
        train_dir,
        len(train_set),
        cfg.block_size,
        split,
        cfg.batch_size * cfg.grad_accum * cfg.block_size,
    )
    overrides: dict[str, Any] = {}
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        overrides.update(optim="adamw_torch_fused", torch_compile=cfg.compile)
    snapshots = None
    callbacks = []
    if snapshot_steps:
        snapshots = StepSnapshots(list(snapshot_steps), Path(scratch_dir) / "snapshots")
        callbacks.append(snapshots.callback())
    trainer = make_trainer(
        model,
        cfg,
        scratch_dir=scratch_dir,
        seed=seed,
        device=device.type,
        train_set=train_set,
        eval_set=eval_set,
        callbacks=callbacks,
        **overrides,
    )
    run_config = {
        "train": asdict(cfg),
        "split": split,
        "pretrain_fraction": pretrain_fraction,
        "seed": seed,
        "build": asdict(build) if build else None,
        "init": init_ref,
        "init_sha256": _weights_hash(init_ref),
        "data": [sha256_file(p) for p in sorted(Path(train_dir).glob("*.bin"))],
        "tokenizer_sha256": sha256_file(tokenizer_model),
        "snapshot_steps": sorted(snapshot_steps) if snapshot_steps else None,
    }

    def save(trainer_, tmp: Path) -> None:
        trainer_.save_model(str(tmp))
        for step, dest in (snapshot_steps or {}).items():
            with atomic_path(dest) as dest_tmp:
                shutil.copytree(snapshots.path(step), dest_tmp)

    metrics = fit(
        trainer, scratch_dir=scratch_dir, out_dir=out_dir, metrics_path=metrics_path, run_config=run_config, save=save
    )
    speed = throughput(metrics, cfg, model, device)
    log.info("done: %s", {k: metrics[k] for k in ("global_step", "train_loss", "final_eval")} | speed)
    return {**metrics, **speed, "model_args": model.config.model_args()}


def _weights_hash(ref: dict[str, Any] | None) -> str | None:
    if not ref or ref.get("source") not in {"path", "build"}:
        return None
    weights = Path(ref["path"]) / "model.safetensors"
    return sha256_file(weights) if weights.is_file() else None
