"""Fine-tuning the main model or its assistant on a news corpus with the shared training
loop (:func:`biasdrift.training.fit`), storing the template next-token distributions at
milestones for the KL-over-training curve (specs/specdec.md §7).

Fixes to the original: weights are loaded and trained in float32 (bf16 only as autocast
on CUDA, never a ``.to(bfloat16)`` of the weights), the best checkpoint is never reloaded
(early stopping is refused), so the final model and "epoch k" are the weights at the end
of training and of epoch k.

Milestone dumps and epoch models go to the job's scratch directory first. A killed job
resumes from its newest checkpoint; milestones written before the kill are kept and those
after it are recomputed by the resumed run (identical on CPU, as training is). They are
copied into the declared outputs once training has finished.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path
from typing import Any

from biasdrift.data import DataError, read_dataset
from biasdrift.models import load_model, load_tokenizer
from biasdrift.runtime import atomic_path, read_json, sha256_file, write_json
from biasdrift.specdec.finetune_config import FinetuneDataConfig, MilestoneConfig
from biasdrift.training import TrainConfig, fit, make_trainer, remove_scratch

log = logging.getLogger(__name__)

MILESTONE_DIR = "milestones"
EPOCH_DIR = "epochs"


# --------------------------------------------------------------------------- data
class TokenizedTexts:
    """Map-style dataset of ``{"input_ids": list[int]}`` (one article per example)."""

    def __init__(self, ids: list[list[int]]):
        self.ids = ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, list[int]]:
        return {"input_ids": self.ids[i]}


class PadCollator:
    """Right-pad a batch; labels are the input ids with padding set to -100 (by the
    attention mask, so a real EOS equal to the pad id is still learnt)."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, features: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        width = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(features), width), dtype=torch.long)
        for row, f in enumerate(features):
            ids[row, : len(f["input_ids"])] = torch.tensor(f["input_ids"], dtype=torch.long)
            mask[row, : len(f["input_ids"])] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": ids.masked_fill(mask == 0, -100)}


def tokenize_split(path: str | Path, cfg: FinetuneDataConfig, split: str, tokenizer) -> TokenizedTexts:
    frame = read_dataset(path, [cfg.text_column], split=split)
    texts = [t for t in frame[cfg.text_column].tolist() if isinstance(t, str) and t.strip()]
    if split == cfg.train_split and cfg.max_examples is not None:
        texts = texts[: cfg.max_examples]
    if not texts:
        raise DataError(f"{path}: split {split!r} has no non-empty {cfg.text_column!r} texts")
    ids = tokenizer(texts, add_special_tokens=False, truncation=True, max_length=cfg.max_length)["input_ids"]
    return TokenizedTexts([x for x in ids if x])


# --------------------------------------------------------------------------- milestones
def template_log_probs(model, tokenizer, prompts: list[str], batch_size: int = 32):
    """float32 log-softmax of the next-token logits after each prompt: [n_prompts, V].
    Prompts are right-padded (safe with absolute and rotary positions starting at 0)."""
    import torch

    was_training = model.training
    model.eval()
    rows = []
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            for start in range(0, len(prompts), batch_size):
                encoded = [
                    tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts[start : start + batch_size]
                ]
                width = max(len(e) for e in encoded)
                ids = torch.full((len(encoded), width), pad_id, dtype=torch.long)
                mask = torch.zeros_like(ids)
                for i, e in enumerate(encoded):
                    ids[i, : len(e)], mask[i, : len(e)] = torch.tensor(e), 1
                logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits  # [b, T, V]
                last = (mask.sum(1) - 1).to(device)
                rows.append(
                    torch.log_softmax(logits[torch.arange(len(encoded), device=device), last].float(), -1).cpu()
                )
    finally:
        model.train(was_training)
    return torch.cat(rows)


def fingerprint(model) -> str:
    """A short hash of the weights (to tell milestones of different models apart)."""
    digest = hashlib.sha256()
    for name, param in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(f"{float(param.float().sum()):.6e}".encode())
    return digest.hexdigest()[:16]


def _callback_base():
    from transformers import TrainerCallback

    return TrainerCallback


class TemplateDistributionCallback(_callback_base()):
    """Store the template next-token distributions at step 0, every ``every_n_steps``
    steps, at the end of every epoch and at the end of training, and the epoch models.

    Files (in ``scratch_dir``): ``milestones/step_<step>.pt`` with ``log_probs`` [n, V],
    ``prompts``, ``global_step``, ``epoch``, ``fingerprint``; ``milestones/epoch_<k>.json``
    naming the step at which epoch k ended; ``epochs/epoch_<k>/`` (save_pretrained).
    A file that exists already (written before a kill) is kept."""

    def __init__(self, tokenizer, prompts: list[str], scratch_dir: str | Path, cfg: MilestoneConfig, role: str):
        self.tokenizer, self.prompts, self.cfg, self.role = tokenizer, list(prompts), cfg, role
        self.milestones = Path(scratch_dir) / MILESTONE_DIR
        self.epochs = Path(scratch_dir) / EPOCH_DIR

    def _dump(self, model, state, reason: str) -> None:
        import torch

        path = self.milestones / f"step_{state.global_step:06d}.pt"
        if path.exists():
            return
        log_probs = template_log_probs(model, self.tokenizer, self.prompts, self.cfg.batch_size)
        dtype = {"float32": torch.float32, "float16": torch.float16}[self.cfg.dtype]
        payload = {
            "log_probs": log_probs.to(dtype),
            "prompts": self.prompts,
            "global_step": int(state.global_step),
            "epoch": float(state.epoch or 0.0),
            "role": self.role,
            "fingerprint": fingerprint(model),
        }
        with atomic_path(path) as tmp:
            torch.save(payload, tmp)
        log.info("milestone %s: step %d (epoch %.2f, %s)", self.role, state.global_step, state.epoch or 0.0, reason)

    def on_train_begin(self, args, state, control, model=None, **kwargs):  # noqa: ARG002
        if state.global_step == 0:
            self._dump(model, state, "start")

    def on_step_end(self, args, state, control, model=None, **kwargs):  # noqa: ARG002
        if self.cfg.every_n_steps and state.global_step % self.cfg.every_n_steps == 0:
            self._dump(model, state, f"every {self.cfg.every_n_steps} steps")

    def on_epoch_end(self, args, state, control, model=None, **kwargs):  # noqa: ARG002
        epoch = round(state.epoch or 0)
        if self.cfg.each_epoch:
            self._dump(model, state, f"end of epoch {epoch}")
            write_json(self.milestones / f"epoch_{epoch}.json", {"epoch": epoch, "global_step": state.global_step})
        target = self.epochs / f"epoch_{epoch}"
        if self.cfg.save_epoch_models and not target.exists():
            with atomic_path(target) as tmp:
                model.save_pretrained(tmp)
                self.tokenizer.save_pretrained(tmp)
            log.info("saved the %s model at the end of epoch %d (step %d)", self.role, epoch, state.global_step)

    def on_train_end(self, args, state, control, model=None, **kwargs):  # noqa: ARG002
        self._dump(model, state, "end of training")


def load_milestones(directory: str | Path) -> tuple[dict[int, dict[str, Any]], dict[int, int]]:
    """(step -> dump, epoch -> step) of a milestones directory."""
    import torch

    directory = Path(directory)
    dumps = {}
    for path in sorted(directory.glob("step_*.pt")):
        payload = torch.load(path, map_location="cpu", weights_only=True)
        dumps[int(payload["global_step"])] = payload
    epochs = {int(d["epoch"]): int(d["global_step"]) for d in map(read_json, sorted(directory.glob("epoch_*.json")))}
    if not dumps:
        raise DataError(f"{directory}: no milestone dumps (step_*.pt)")
    return dumps, epochs


# --------------------------------------------------------------------------- the rule
def finetune_lm(
    *,
    role: str,
    model_ref: dict[str, Any],
    corpus_path: str | Path,
    data_cfg: FinetuneDataConfig,
    train_cfg: TrainConfig,
    milestone_cfg: MilestoneConfig,
    prompts: list[str],
    out_model: str | Path,
    out_epochs: str | Path,
    out_milestones: str | Path,
    metrics_path: str | Path,
    scratch_dir: str | Path,
    seed: int,
    device: Any,
) -> dict[str, Any]:
    """Rule finetune_specdec_model: causal-LM fine-tuning of one model (fp32 weights)."""
    import torch

    if train_cfg.early_stopping_patience:
        raise ValueError("early stopping reloads the best checkpoint; the study needs the weights of each epoch")
    if milestone_cfg.dtype not in {"float32", "float16"}:
        raise ValueError(f"milestones.dtype must be float32 or float16, got {milestone_cfg.dtype!r}")
    if not prompts:
        raise DataError("no template prompts for the milestone distributions")
    tokenizer = load_tokenizer(model_ref)
    tokenizer.padding_side = "right"
    train_set = tokenize_split(corpus_path, data_cfg, data_cfg.train_split, tokenizer)
    eval_set = tokenize_split(corpus_path, data_cfg, data_cfg.eval_split, tokenizer) if data_cfg.eval_split else None
    log.info("%s: %d training articles (max %d tokens)", role, len(train_set), data_cfg.max_length)

    torch.manual_seed(seed)
    model = load_model(model_ref, "causal_lm", device="cpu", dtype=torch.float32)
    wrong = sorted({str(p.dtype) for p in model.parameters() if p.dtype != torch.float32})
    if wrong:
        raise ValueError(f"weights must be float32 for fine-tuning (found {wrong}); bf16 is only used as autocast")
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    callback = TemplateDistributionCallback(tokenizer, prompts, scratch_dir, milestone_cfg, role)
    trainer = make_trainer(
        model,
        train_cfg,
        scratch_dir=scratch_dir,
        seed=seed,
        device=device,
        train_set=train_set,
        eval_set=eval_set,
        collator=PadCollator(pad_id),
        tokenizer=tokenizer,
        callbacks=[callback],
        load_best_model_at_end=False,
    )
    run_config = {
        "role": role,
        "model": model_ref,
        "data": data_cfg,
        "train": train_cfg,
        "milestones": milestone_cfg,
        "seed": seed,
        "corpus_sha256": sha256_file(corpus_path),
        "prompts_sha256": hashlib.sha256("\n".join(prompts).encode()).hexdigest(),
    }
    metrics = fit(
        trainer,
        scratch_dir=scratch_dir,
        out_dir=out_model,
        metrics_path=metrics_path,
        run_config=run_config,
        keep_scratch=True,
    )
    scratch = Path(scratch_dir)
    for name, out in ((MILESTONE_DIR, out_milestones), (EPOCH_DIR, out_epochs)):
        with atomic_path(out) as tmp:
            if (scratch / name).is_dir():
                shutil.copytree(scratch / name, tmp)
            else:
                tmp.mkdir()
    remove_scratch(scratch_dir)
    steps = sorted(int(p.stem.split("_")[1]) for p in Path(out_milestones).glob("step_*.pt"))
    log.info(
        "%s fine-tuned: %d steps, train loss %.4f, milestones at %s",
        role,
        metrics["global_step"],
        metrics["train_loss"],
        steps,
    )
    return {
        **{k: metrics[k] for k in ("global_step", "epoch", "train_loss", "resumed_from_step")},
        "milestone_steps": steps,
    }
