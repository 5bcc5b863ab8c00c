"""The shared training loop: argument mapping, checkpoints, a SIGKILL mid-run and resume."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from biasdrift import corpora, training
from biasdrift.config import from_schema
from biasdrift.models import ModelSize, build_model
from biasdrift.pretrain import BlockDataset, pack_blocks
from biasdrift.tokenization import TokenizerConfig, train_tokenizer

ARCH_TOKENIZER = {"gpt2": "bpe", "llama": "bpe", "bert": "wordpiece"}


def test_training_arguments_follow_the_config(tmp_path):
    cfg = from_schema(
        training.TrainConfig,
        max_steps=30,
        batch_size=4,
        grad_accum=2,
        learning_rate=1e-3,
        warmup_ratio=0.1,
        save_steps=7,
        eval_steps=5,
    )
    args = training.training_arguments(cfg, tmp_path, seed=3)
    assert args.output_dir == str(tmp_path) and args.max_steps == 30
    assert args.per_device_train_batch_size == 4 and args.gradient_accumulation_steps == 2
    assert args.get_warmup_steps(30) == 3
    assert args.use_cpu and not args.bf16
    assert args.report_to in ([], "none", ["none"])
    assert args.save_steps == 7 and args.save_total_limit == 2 and args.eval_strategy == "steps"
    assert args.seed == args.data_seed == 3


def test_config_checks():
    with pytest.raises(ValueError, match="warmup_ratio"):
        from_schema(training.TrainConfig, warmup_ratio=1.0)
    with pytest.raises(ValueError, match="early_stopping_patience needs eval_steps"):
        from_schema(training.TrainConfig, early_stopping_patience=2)
    with pytest.raises(ValueError, match="bf16 needs a CUDA device"):
        training.use_bf16(from_schema(training.TrainConfig, precision="bf16"), "cpu")
    with pytest.raises(ValueError, match=r"unknown key\(s\) lr"):
        training.config_from_dict(training.TrainConfig, {"lr": 1}, "x")


def _fake_checkpoint(scratch, step, complete=True):
    path = scratch / f"checkpoint-{step}"
    path.mkdir(parents=True)
    if complete:
        (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return path


def test_latest_checkpoint_skips_incomplete_ones(tmp_path):
    assert training.latest_checkpoint(tmp_path / "none") is None
    _fake_checkpoint(tmp_path, 10)
    _fake_checkpoint(tmp_path, 30)
    _fake_checkpoint(tmp_path, 40, complete=False)  # killed while writing
    (tmp_path / "checkpoint-50").mkdir()
    (tmp_path / "checkpoint-50" / "trainer_state.json").write_text('{"glob')  # truncated
    assert training.latest_checkpoint(tmp_path).name == "checkpoint-30"


def test_scratch_of_another_configuration_is_discarded(tmp_path):
    scratch = tmp_path / ".scratch"
    assert training.prepare_scratch(scratch, {"lr": 1}) is None
    _fake_checkpoint(scratch, 20)
    assert training.prepare_scratch(scratch, {"lr": 1}).name == "checkpoint-20"
    assert training.prepare_scratch(scratch, {"lr": 2}) is None
    assert not (scratch / "checkpoint-20").exists()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    frame = corpora.generate("neutral_text", {"n_documents": 400, "sentences_per_document": 2}, 0)
    frame.to_parquet(root / "data.parquet")
    for kind in ("bpe", "wordpiece"):
        train_tokenizer(
            frame.loc[frame.split == "train", "text"].tolist(),
            from_schema(TokenizerConfig, kind=kind, vocab_size=300, lowercase=kind == "wordpiece"),
            root / kind,
        )
    return root


RUNNER = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {scripts!r})
    import transformers
    from biasdrift.config import from_schema
    from biasdrift.models import ModelSize
    from biasdrift.pretrain import PretrainConfig, pretrain_lm
    from biasdrift.runtime import seed_everything, setup_logging

    kill_at = {kill_at}
    if kill_at:  # die like a preempted job right after writing checkpoint-<kill_at>
        save = transformers.Trainer._save_checkpoint

        def save_then_die(self, model, trial):
            save(self, model, trial)
            if self.state.global_step == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

        transformers.Trainer._save_checkpoint = save_then_die
    setup_logging({work!r} + "/log.txt")
    seed_everything(0)
    cfg = from_schema(PretrainConfig, max_steps={steps}, batch_size=4, learning_rate=3e-3, save_steps=8,
                      logging_steps=8, warmup_ratio=0.1, lr_scheduler="cosine", block_size=16, valid_blocks=4)
    size = from_schema(ModelSize, layers=2, heads=4, kv_heads=2 if {arch!r} == "llama" else None, hidden=32, context=32)
    pretrain_lm(arch={arch!r}, size=size, tokenizer_dir={tok!r}, corpus_path={data!r}, text_column="text",
                out_dir={work!r} + "/model", metrics_path={work!r} + "/metrics.json",
                scratch_dir={work!r} + "/.scratch", cfg=cfg, seed=0, device="cpu")
    """
)


def _run(repo, corpus, work, arch, kill_at=0, steps=24):
    script = RUNNER.format(
        steps=steps,
        scripts=str(repo / "workflow" / "scripts"),
        kill_at=kill_at,
        work=str(work),
        arch=arch,
        tok=str(corpus / ARCH_TOKENIZER[arch]),
        data=str(corpus / "data.parquet"),
    )
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("arch", sorted(ARCH_TOKENIZER))
def test_sigkilled_training_resumes_to_identical_weights(arch, repo, corpus, tmp_path):
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    proc = _run(repo, corpus, clean, arch)
    assert proc.returncode == 0, proc.stderr
    proc = _run(repo, corpus, killed, arch, kill_at=16)
    assert proc.returncode == -9, "the run should have been SIGKILLed after checkpoint-16"
    assert not (killed / "model").exists() and not (killed / "metrics.json").exists()
    assert (killed / ".scratch" / "checkpoint-16").is_dir()
    proc = _run(repo, corpus, killed, arch)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((killed / "metrics.json").read_text())
    assert metrics["resumed_from_step"] == 16 and metrics["global_step"] == 24
    assert metrics["steps_this_attempt"] == 8, "the resumed run must only run the steps after its checkpoint"
    assert not (killed / ".scratch").exists(), "scratch state is removed once the outputs exist"
    a, b = load_file(clean / "model" / "model.safetensors"), load_file(killed / "model" / "model.safetensors")
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"weights differ after resume: {different[:5]}"


def test_gradient_accumulation_equals_the_full_batch(corpus, tmp_path):
    """One SGD step on 8 blocks equals one step of 2 accumulated micro-batches of 4
    distinct blocks (and differs from using one micro-batch twice)."""
    from transformers import AutoTokenizer, Trainer, default_data_collator

    tok = AutoTokenizer.from_pretrained(corpus / "bpe")
    texts = pd.read_parquet(corpus / "data.parquet")["text"].tolist()
    blocks = pack_blocks(texts[:200], tok, 16, "clm")[:8]

    def one_step(batch_size, accum, data):
        torch.manual_seed(0)
        model = build_model(
            "gpt2", from_schema(ModelSize, layers=1, heads=2, hidden=16, context=16, dropout=0.0), tok
        ).double()
        cfg = from_schema(training.TrainConfig, max_steps=1, batch_size=batch_size, grad_accum=accum, learning_rate=0.5)
        args = training.training_arguments(cfg, tmp_path / f"s{batch_size}", 0, optim="sgd", max_grad_norm=0.0)
        Trainer(model=model, args=args, train_dataset=BlockDataset(data), data_collator=default_data_collator).train()
        return torch.cat([p.detach().flatten() for p in model.parameters()])

    full = one_step(8, 1, blocks)
    accumulated = one_step(4, 2, blocks)
    assert torch.allclose(full, accumulated, atol=1e-10, rtol=0)
    repeated = one_step(4, 2, blocks[:4] * 2)
    assert not torch.allclose(full, repeated, atol=1e-6)


def test_masked_lm_masks_are_a_function_of_the_index(corpus):
    from transformers import AutoTokenizer

    from biasdrift.pretrain import MaskedBlockDataset

    tok = AutoTokenizer.from_pretrained(corpus / "wordpiece")
    texts = pd.read_parquet(corpus / "data.parquet")["text"].tolist()
    blocks = pack_blocks(texts, tok, 32, "mlm")
    ds = MaskedBlockDataset(blocks, tok, 0.15, seed=0, repeats=2)
    assert len(ds) == 2 * len(blocks)
    assert torch.equal(ds[5]["input_ids"], ds[5]["input_ids"]) and torch.equal(ds[5]["labels"], ds[5]["labels"])
    assert not torch.equal(ds[5]["labels"], ds[5 + len(blocks)]["labels"]), "each pass gets fresh masks"
    labels = torch.stack([ds[i]["labels"] for i in range(len(blocks))])
    ids = torch.stack([ds[i]["input_ids"] for i in range(len(blocks))])
    chosen = labels != -100
    assert 0.12 < chosen.float().mean() < 0.18
    special = torch.tensor(tok.all_special_ids)
    assert not torch.isin(labels[chosen], special).any(), "special tokens are never masked"
    assert 0.7 < (ids[chosen] == tok.mask_token_id).float().mean() < 0.9


def test_pack_blocks_separates_documents_with_eos(corpus):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(corpus / "bpe")
    blocks = pack_blocks(["a b", "c d e"], tok, 2, "clm")
    stream = tok("a b")["input_ids"] + [tok.eos_token_id] + tok("c d e")["input_ids"] + [tok.eos_token_id]
    assert [t for b in blocks for t in b] == stream[: len(blocks) * 2]
    assert all(len(b) == 2 for b in blocks)


def test_pretraining_learns(repo, corpus, tmp_path):
    """Loss falls well below the uniform-guess loss: the loop really trains."""
    proc = _run(repo, corpus, tmp_path / "run", "gpt2", steps=120)
    assert proc.returncode == 0, proc.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    losses = [e["loss"] for e in metrics["log_history"] if "loss" in e]
    assert losses[-1] < losses[0] - 1.0
    assert metrics["final_eval"]["eval_loss"] < torch.log(torch.tensor(300.0)).item() - 1.0


class _LrRecorder(training.StepCounter):
    """The learning rate each optimizer step uses (read before the step)."""

    def __init__(self) -> None:
        super().__init__()
        self.lrs: list[float] = []

    def on_step_begin(self, args, state, control, optimizer=None, **kwargs):  # noqa: ARG002
        self.lrs.append(optimizer.param_groups[0]["lr"])


def test_paper_warmup_ratio_gives_ceil_ratio_times_steps_of_linear_warmup(tmp_path):
    """The paper config's ``warmup_ratio`` (circuits fine-tunes) on an epoch-based run of
    42 optimizer steps (the original's Shakespeare run): ceil(0.1 * 42) = 5 warm-up steps
    (round or floor would give 4), lr 0 at step 0, the peak at step 5, then linear decay."""
    import dataclasses
    from pathlib import Path

    import yaml
    from transformers import GPT2Config, GPT2LMHeadModel, Trainer

    from biasdrift.circuits.finetune import FinetuneConfig

    paper = yaml.safe_load((Path(__file__).resolve().parents[2] / "config/paper/circuits.yaml").read_text())
    block = paper["studies"]["circuits"]["finetunes"]["shakespeare"]["train"]
    ratio = block["warmup_ratio"]
    cfg = from_schema(FinetuneConfig, **block)
    cfg = dataclasses.replace(cfg, epochs=2, batch_size=1, early_stopping_patience=None, eval_steps=0, save_steps=1000)
    n_examples, total = 21, 42
    warmup = math.ceil(ratio * total)
    assert warmup > int(ratio * total)  # 42 steps make the rounding rule visible
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=8, n_positions=8, vocab_size=11))
    data = [{"input_ids": [i % 11, (i + 1) % 11, 3], "labels": [i % 11, (i + 1) % 11, 3]} for i in range(n_examples)]
    recorder = _LrRecorder()
    trainer = Trainer(
        model=model, args=training.training_arguments(cfg, tmp_path, seed=0), train_dataset=data, callbacks=[recorder]
    )
    trainer.train()
    peak = cfg.learning_rate
    expected = [peak * s / warmup if s < warmup else peak * (total - s) / (total - warmup) for s in range(total)]
    assert len(recorder.lrs) == total and trainer.state.max_steps == total
    assert recorder.lrs[0] == 0.0 and recorder.lrs[warmup] == pytest.approx(peak, rel=1e-12)
    assert recorder.lrs == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_half_precision_trainable_weights_are_refused_frozen_ones_are_not():
    from transformers import GPT2Config, GPT2LMHeadModel

    model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=8, n_positions=8, vocab_size=11))
    training.require_fp32_trainable(model, "fp32 model")
    model.to(torch.bfloat16)
    with pytest.raises(ValueError, match=r"job x: \d+ trainable parameter\(s\) are bfloat16 .*float32 master weights"):
        training.require_fp32_trainable(model, "job x")
    model.requires_grad_(False)  # a frozen half-precision base (LoRA / QLoRA) is fine
    model.lm_head.weight.data = model.lm_head.weight.data.float()
    model.lm_head.requires_grad_(True)
    training.require_fp32_trainable(model, "frozen base")


@pytest.mark.parametrize("chunk", [1, 3, 7, 64])
def test_chunked_token_logprobs_equal_the_full_log_softmax_and_stay_bounded(chunk, monkeypatch):
    gen = torch.Generator().manual_seed(0)
    batch, width, vocab = 3, 8, 501
    logits = torch.randn(batch, width, vocab, generator=gen)
    ids = torch.randint(0, vocab, (batch, width), generator=gen)
    shapes = []
    inner = training._chunk_logprobs

    def recording(x, t, dtype):
        shapes.append(tuple(x.shape))
        return inner(x, t, dtype)

    monkeypatch.setattr(training, "_chunk_logprobs", recording)
    # a non-contiguous slice, as the probe passes it (position t predicts token t+1)
    got = training.token_logprobs(logits[:, :-1], ids[:, 1:], chunk_size=chunk)
    full = torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    assert got.shape == (batch, width - 1) and got.dtype == torch.float32
    torch.testing.assert_close(got, full, rtol=0, atol=1e-6)
    assert max(rows for rows, _ in shapes) == min(chunk, width - 1)  # at most chunk x vocab at once
    assert all(v == vocab for _, v in shapes) and sum(rows for rows, _ in shapes) == batch * (width - 1)
    half = training.token_logprobs(logits.to(torch.bfloat16), ids, chunk_size=chunk)  # upcast per chunk
    reference = torch.log_softmax(logits.to(torch.bfloat16).float(), -1).gather(-1, ids[..., None]).squeeze(-1)
    assert half.dtype == torch.float32
    torch.testing.assert_close(half, reference, rtol=0, atol=1e-5)
    wide = logits.double() * 10
    exact = torch.log_softmax(wide, -1).gather(-1, ids[..., None]).squeeze(-1)
    torch.testing.assert_close(training.token_logprobs(wide, ids, chunk_size=chunk), exact, rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="do not match"):
        training.token_logprobs(logits, ids[:, 1:])
