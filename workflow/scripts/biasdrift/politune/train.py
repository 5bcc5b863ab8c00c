"""Rule train_politune: LoRA (or QLoRA) DPO or SFT of a base model on one side's
preference pairs, with trl 1.x through the shared training loop
(:func:`biasdrift.training.fit`: resumable checkpoints in ``.scratch``, atomic outputs).

* DPO: ``DPOTrainer(ref_model=None, peft_config=...)``: the reference is the base with
  the adapter switched off, as in the original. Loss, beta and label smoothing from the
  config; the sequence log-probability is the sum over the answer's tokens.
* SFT: ``SFTTrainer`` on prompt -> chosen, loss on the answer tokens only.

The adapter is saved at each configured optimizer step into the job's scratch folder
(which survives a kill) and copied into the declared ``adapters/`` output at the end,
as ``step-<N>/`` beside ``final/``; each holds ``politune_adapter.json`` naming its base.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from biasdrift.politune.adapters import LoraSettings, base_fingerprint, load_base, write_adapter_meta
from biasdrift.politune.formatting import FormatConfig, check_lengths, format_pairs, prepare_tokenizer
from biasdrift.politune.pairs import read_pairs
from biasdrift.runtime import atomic_path, sha256_file
from biasdrift.training import TrainConfig, fit, make_trainer

log = logging.getLogger(__name__)

METHODS = ("dpo", "sft")
STEP_DIR = "step-{}"
FINAL_DIR = "final"
SCRATCH_ADAPTERS = "politune_adapters"


@dataclass(frozen=True)
class MethodSettings:
    """What a method adds to the shared training fields (schema: ``studies.politune.dpo``
    and ``.sft``, their ``train`` aside). ``beta`` is also the scale of the implicit reward
    in evaluation. SFT uses none of the DPO fields: its job carries DPO's schema defaults
    for them (the glue, :func:`biasdrift.politune.workflow.train_politune`), so that both
    methods record the same settings keys."""

    SCHEMA: ClassVar[str] = "studies.politune.dpo"  # the schema section it mirrors: its defaults

    max_length: int = field(metadata={"help": "Longest prompt + answer in tokens."})
    warmup_steps: int | None = field(metadata={"help": "Warm-up steps; overrides train.warmup_ratio."})
    beta: float = field(metadata={"help": "DPO temperature (implicit reward scale)."})
    loss_type: tuple[str, ...] = field(metadata={"help": "trl DPO loss type(s)."})
    label_smoothing: float = field(metadata={"help": "DPO label smoothing (robust / cDPO)."})

    def __post_init__(self) -> None:
        object.__setattr__(self, "loss_type", tuple(self.loss_type))


def total_steps(n_rows: int, cfg: TrainConfig) -> int:
    """Optimizer steps the HF Trainer will run (its own formula, transformers 5)."""
    if cfg.max_steps > 0:
        return cfg.max_steps
    batches = math.ceil(n_rows / cfg.batch_size)
    per_epoch = max(batches // cfg.grad_accum + int(batches % cfg.grad_accum > 0), 1)
    return math.ceil(cfg.epochs * per_epoch)


def check_steps(steps: list[int], n_rows: int, cfg: TrainConfig, where: str) -> int:
    total = total_steps(n_rows, cfg)
    late = [s for s in steps if s > total]
    if late:
        raise ValueError(
            f"{where}: checkpoint step(s) {late} come after the last optimizer step {total} "
            f"({n_rows} training pairs, batch {cfg.batch_size} x {cfg.grad_accum}, {cfg.epochs} epoch(s), "
            f"max_steps {cfg.max_steps})"
        )
    return total


def _callback_base():
    from transformers import TrainerCallback

    return TrainerCallback


class SaveAdapters(_callback_base()):
    """Save the adapter after the configured optimizer steps into ``folder/step-<N>``
    (atomically: a kill mid-write leaves nothing half-written). A resumed run reaches
    the same steps again only after its checkpoint, so saved steps are never lost."""

    def __init__(self, steps: list[int], folder: Path, expected_total: int) -> None:
        self.steps, self.folder, self.expected_total = set(steps), folder, expected_total

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: ARG002
        if state.max_steps != self.expected_total:
            raise RuntimeError(f"trainer plans {state.max_steps} optimizer steps, expected {self.expected_total}")

    def on_step_end(self, args, state, control, model=None, **kwargs):  # noqa: ARG002
        if state.global_step in self.steps:
            with atomic_path(self.folder / STEP_DIR.format(state.global_step)) as tmp:
                model.save_pretrained(str(tmp))
            log.info("saved the adapter of step %d", state.global_step)


def _report_to(report_to: str) -> str:
    if report_to == "wandb" and importlib.util.find_spec("wandb") is None:
        raise ImportError("report_to: wandb needs the wandb package (pip install wandb, then wandb login)")
    return report_to


def build_trainer(
    *,
    method: str,
    model,
    tokenizer,
    train_rows: list[dict[str, str]],
    eval_rows: list[dict[str, str]] | None,
    train_cfg: TrainConfig,
    settings: MethodSettings,
    lora: LoraSettings,
    scratch_dir: str | Path,
    seed: int,
    device_type: str,
    report_to: str = "none",
    callbacks: list[Any] = (),
):
    """A trl DPOTrainer or SFTTrainer on formatted rows (``prompt``, ``chosen``,
    ``rejected`` strings from :func:`format_pairs`), with a fresh LoRA adapter
    (:func:`biasdrift.training.make_trainer`)."""
    import datasets
    from datasets import Dataset

    datasets.disable_progress_bars()  # trl's dataset preparation: bars would flood the rule log
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    overrides: dict[str, Any] = {"max_length": settings.max_length, "report_to": _report_to(report_to)}
    if settings.warmup_steps is not None:
        overrides["warmup_steps"] = settings.warmup_steps
    from trl import DPOConfig, DPOTrainer, SFTConfig, SFTTrainer

    if method == "dpo":
        trainer_cls, args_cls = DPOTrainer, DPOConfig
        overrides.update(
            beta=settings.beta, loss_type=list(settings.loss_type), label_smoothing=settings.label_smoothing
        )
        trainer_kwargs: dict[str, Any] = {"ref_model": None}

        def rows(split):
            return split
    else:
        trainer_cls, args_cls = SFTTrainer, SFTConfig
        overrides["completion_only_loss"] = True
        trainer_kwargs = {}

        def rows(split):
            return [{"prompt": r["prompt"], "completion": r["chosen"]} for r in split]

    return make_trainer(
        model,
        train_cfg,
        scratch_dir=scratch_dir,
        seed=seed,
        device=device_type,
        train_set=Dataset.from_list(rows(train_rows)),
        eval_set=Dataset.from_list(rows(eval_rows)) if eval_rows else None,
        tokenizer=tokenizer,
        callbacks=callbacks,
        trainer_cls=trainer_cls,  # given no collator, trl builds its own (and sets the pad token)
        args_cls=args_cls,
        trainer_kwargs={**trainer_kwargs, "peft_config": lora.peft_config()},
        **overrides,
    )


def train_adapter(
    *,
    method: str,
    ref: dict[str, Any],
    pairs_path: str | Path,
    out_dir: str | Path,
    metrics_path: str | Path,
    scratch_dir: str | Path,
    fmt: FormatConfig,
    lora: LoraSettings,
    train_cfg: TrainConfig,
    settings: MethodSettings,
    checkpoint_steps: list[int],
    seed: int,
    device,
    report_to: str = "none",
    where: str = "train_politune",
) -> dict[str, Any]:
    """Train one adapter; write ``out_dir/{final,step-N}`` and the trainer's metrics."""
    from biasdrift.models import load_tokenizer

    train = read_pairs(pairs_path, "train")
    try:
        heldout = read_pairs(pairs_path, "heldout")
    except ValueError:
        heldout = None
    tokenizer = prepare_tokenizer(load_tokenizer(ref), fmt, f"model {ref.get('alias')!r}")
    train_rows = format_pairs(tokenizer, fmt, train.to_dict("records"))
    eval_rows = format_pairs(tokenizer, fmt, heldout.to_dict("records")) if heldout is not None else None
    lengths = check_lengths(tokenizer, train_rows + (eval_rows or []), settings.max_length, f"{pairs_path}")
    expected = check_steps(checkpoint_steps, len(train_rows), train_cfg, where)
    log.info(
        "%s on %d pairs (%d held out): %d optimizer steps; %s",
        method,
        len(train_rows),
        len(eval_rows or []),
        expected,
        lengths,
    )

    device_type = getattr(device, "type", str(device))
    model = load_base(ref, lora, device, for_training=True, checkpointing=train_cfg.gradient_checkpointing)
    fingerprint = base_fingerprint(model)
    scratch = Path(scratch_dir)
    step_folder = scratch / SCRATCH_ADAPTERS
    trainer = build_trainer(
        method=method,
        model=model,
        tokenizer=tokenizer,
        train_rows=train_rows,
        eval_rows=eval_rows,
        train_cfg=train_cfg,
        settings=settings,
        lora=lora,
        scratch_dir=scratch,
        seed=seed,
        device_type=device_type,
        report_to=report_to,
        callbacks=[SaveAdapters(checkpoint_steps, step_folder, expected)],
    )
    run_config = {
        "method": method,
        "base": fingerprint,
        "pairs_sha256": sha256_file(pairs_path),
        "format": asdict(fmt),
        "lora": asdict(lora),
        "train": train_cfg,
        "settings": asdict(settings),
        "checkpoint_steps": sorted(checkpoint_steps),
        "seed": seed,
    }

    def save(trainer, tmp: Path) -> None:
        export_adapters(trainer, tmp, step_folder, checkpoint_steps, ref=ref, fingerprint=fingerprint, method=method)

    metrics = fit(
        trainer, scratch_dir=scratch, out_dir=out_dir, metrics_path=metrics_path, run_config=run_config, save=save
    )
    return {k: metrics[k] for k in ("global_step", "train_loss", "final_eval", "resumed_from_step")}


def export_adapters(
    trainer, out_dir: Path, step_folder: Path, steps: list[int], *, ref: dict[str, Any], fingerprint: dict, method: str
) -> None:
    """Write ``out_dir/final`` (the trainer's adapter) and ``out_dir/step-N`` (copied
    from ``step_folder``), each with the identity of its base."""
    out_dir.mkdir(parents=True)
    trainer.save_model(str(out_dir / FINAL_DIR))
    write_adapter_meta(out_dir / FINAL_DIR, ref, fingerprint, method=method, step=trainer.state.global_step)
    for step in sorted(steps):
        source = step_folder / STEP_DIR.format(step)
        if not source.is_dir():
            raise RuntimeError(f"the adapter of step {step} was not saved (looked in {source})")
        shutil.copytree(source, out_dir / STEP_DIR.format(step))
        write_adapter_meta(out_dir / STEP_DIR.format(step), ref, fingerprint, method=method, step=step)
