"""Study politune, training side: trl DPO / SFT with LoRA on a tiny Llama built here.

The checks of the issue: the first DPO loss is ln 2 (policy == reference at step 0), the
adapter-off model is the base exactly, a reloaded adapter reproduces the logits, merged
weights equal base + adapter, SFT labels are -100 on prompt tokens; plus our own
tokenization and held-out margins against trl's, bad inputs failing before training,
and a SIGKILLed training job resuming to the same adapters.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from biasdrift import corpora
from biasdrift.config import from_schema
from biasdrift.politune import adapters, formatting, pairs, preference, train
from biasdrift.politune.adapters import AdapterMismatchError, LoraSettings
from biasdrift.politune.formatting import FormatConfig, FormatError
from biasdrift.politune.tiny import tiny_chat_model
from biasdrift.runtime import set_threads
from biasdrift.training import TrainConfig

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "resources" / "politune" / "chat_template.jinja"
FMT = from_schema(FormatConfig, template="chat")
LORA = from_schema(
    LoraSettings, r=4, alpha=8, dropout=0.0, target_modules=("q_proj", "v_proj", "gate_proj", "up_proj", "down_proj")
)
TRAIN = from_schema(TrainConfig, max_steps=6, batch_size=4, learning_rate=5e-3, logging_steps=1, save_steps=100)
DPO = from_schema(train.MethodSettings, max_length=128, warmup_steps=None, beta=0.1)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    set_threads(1)
    return tiny_chat_model(tmp_path_factory.mktemp("tiny"), TEMPLATE)


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory):
    root = tmp_path_factory.mktemp("pairs")
    corpora.generate("politune_preferences", {"n_pairs": 40, "rating_fraction": 0.2}, 0).to_csv(root / "raw.csv")
    out = root / "left.parquet"
    pairs.prepare_pairs(
        {"dataset": "raw"}, {"raw": root / "raw.csv"}, out, from_schema(pairs.PairsConfig, heldout_fraction=0.2)
    )
    return out


def tokenizer_for(ref):
    from biasdrift.models import load_tokenizer

    return formatting.prepare_tokenizer(load_tokenizer(ref), FMT)


def rows(path, split):
    return pairs.read_pairs(path, split).to_dict("records")


def make_trainer(base, pairs_file, tmp_path, method="dpo", train_cfg=TRAIN, callbacks=()):
    tokenizer = tokenizer_for(base)
    model = adapters.load_base(base, LORA, "cpu", for_training=True)
    return train.build_trainer(
        method=method,
        model=model,
        tokenizer=tokenizer,
        train_rows=formatting.format_pairs(tokenizer, FMT, rows(pairs_file, "train")),
        eval_rows=formatting.format_pairs(tokenizer, FMT, rows(pairs_file, "heldout")),
        train_cfg=train_cfg,
        settings=DPO,
        lora=LORA,
        scratch_dir=tmp_path / "scratch",
        seed=0,
        device_type="cpu",
        callbacks=callbacks,
    )


@pytest.fixture(scope="module")
def trained(base, pairs_file, tmp_path_factory):
    """A DPO adapter after 6 steps, saved by the study's own export (final + step-3)."""
    root = tmp_path_factory.mktemp("trained")
    steps = root / "steps"
    trainer = make_trainer(base, pairs_file, root, callbacks=[train.SaveAdapters([3], steps, expected_total=6)])
    trainer.train()
    fingerprint = adapters.base_fingerprint(adapters.load_base(base, LORA, "cpu"))
    train.export_adapters(trainer, root / "adapters", steps, [3], ref=base, fingerprint=fingerprint, method="dpo")
    trainer.model.eval()
    return trainer, root / "adapters"


def logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids).logits


@pytest.fixture(scope="module")
def probe_ids(base):
    tokenizer = tokenizer_for(base)
    text = formatting.render_prompt(tokenizer, FMT, "What should the town do about the harbour?")
    return torch.tensor([tokenizer(text)["input_ids"]])


# --------------------------------------------------------------------------- the checks
def test_first_dpo_loss_is_ln2(trained):
    trainer, _ = trained
    history = [h for h in trainer.state.log_history if "loss" in h]
    assert history[0]["step"] == 1
    assert history[0]["loss"] == pytest.approx(math.log(2), abs=1e-5)
    assert history[0]["rewards/margins"] == pytest.approx(0.0, abs=1e-6)
    assert history[-1]["loss"] < history[0]["loss"]  # it does train


def test_adapter_off_equals_the_base_exactly(trained, base, probe_ids):
    _, out = trained
    policy, _ = adapters.load_policy(base, out / "final", LORA, "cpu")
    plain = adapters.load_base(base, LORA, "cpu")
    with policy.disable_adapter():
        off = logits(policy, probe_ids)
    assert torch.equal(off, logits(plain, probe_ids))
    assert (logits(policy, probe_ids) - off).abs().max() > 1e-4  # the adapter is not a no-op


def test_reloaded_adapter_reproduces_the_logits(trained, base, probe_ids):
    trainer, out = trained
    policy, _ = adapters.load_policy(base, out / "final", LORA, "cpu")
    assert (logits(policy, probe_ids) - logits(trainer.model, probe_ids)).abs().max() <= 1e-6
    meta = adapters.check_adapter_base(
        out / "step-3", base, adapters.base_fingerprint(adapters.load_base(base, LORA, "cpu"))
    )
    assert meta["step"] == 3 and meta["base"]["alias"] == base["alias"]


def test_merged_weights_are_base_plus_adapter(trained, base, probe_ids, tmp_path):
    _, out = trained
    policy, _ = adapters.load_policy(base, out / "final", LORA, "cpu")
    plain = adapters.load_base(base, LORA, "cpu")
    expected = {}
    for name, module in policy.named_modules():
        if hasattr(module, "lora_A") and "default" in module.lora_A:
            delta = module.lora_B["default"].weight @ module.lora_A["default"].weight * module.scaling["default"]
            key = name.split("base_model.model.", 1)[1]
            expected[key] = plain.get_submodule(key).weight + delta
    assert len(expected) == 2 * 5  # 2 layers x 5 target modules
    policy_logits = logits(policy, probe_ids)
    merged = adapters.merge_adapter(policy)
    for key, weight in expected.items():
        torch.testing.assert_close(merged.get_submodule(key).weight, weight, atol=1e-5, rtol=0)
    torch.testing.assert_close(logits(merged, probe_ids), policy_logits, atol=1e-5, rtol=0)
    report = adapters.merge_and_save(base, out / "final", LORA, tmp_path / "merged", "cpu")
    assert report["max_abs_logit_difference"] <= 1e-5 and (tmp_path / "merged" / "config.json").is_file()


def test_sft_labels_are_masked_on_prompt_tokens(base, pairs_file, tmp_path):
    trainer = make_trainer(base, pairs_file, tmp_path, method="sft")
    tokenizer = tokenizer_for(base)
    row = rows(pairs_file, "train")[0]
    prompt_ids, completion_ids = formatting.encode(
        tokenizer,
        formatting.render_prompt(tokenizer, FMT, row["prompt"]),
        formatting.render_completion(tokenizer, FMT, row["prompt"], row["chosen"]),
    )
    batch = trainer.data_collator([trainer.train_dataset[0]])
    labels, ids = batch["labels"][0].tolist(), batch["input_ids"][0].tolist()
    assert ids == prompt_ids + completion_ids
    assert labels[: len(prompt_ids)] == [-100] * len(prompt_ids)
    assert labels[len(prompt_ids) :] == completion_ids


# --------------------------------------------------------------------------- our measurements against trl's
def test_our_tokenization_is_trls(trained, base, pairs_file):
    trainer, _ = trained
    tokenizer = tokenizer_for(base)
    formatted = formatting.format_pairs(tokenizer, FMT, rows(pairs_file, "train"))
    for example, row in zip(trainer.train_dataset, formatted, strict=True):
        prompt_ids, chosen_ids = formatting.encode(tokenizer, row["prompt"], row["chosen"])
        assert example["prompt_ids"] == prompt_ids and example["chosen_ids"] == chosen_ids
        assert formatting.encode(tokenizer, row["prompt"], row["rejected"])[1] == example["rejected_ids"]


def test_heldout_margins_match_trls_evaluation(trained, base, pairs_file):
    trainer, _ = trained
    trainer.args.per_device_eval_batch_size = 64  # one batch: trl averages per batch
    metrics = trainer.evaluate()
    heldout = pairs.read_pairs(pairs_file, "heldout")
    ours = preference.preference_margins(trainer.model, tokenizer_for(base), FMT, heldout, DPO.beta, "cpu")
    assert ours["margin"].mean() == pytest.approx(metrics["eval_rewards/margins"], rel=1e-4, abs=1e-6)
    assert ours["correct"].mean() == pytest.approx(metrics["eval_rewards/accuracies"])
    assert (ours["margin"] != 0).all()


# --------------------------------------------------------------------------- bad input, before training
def run_training(base, pairs_file, tmp_path, **overrides):
    kwargs = dict(
        method="dpo",
        ref=base,
        pairs_path=pairs_file,
        out_dir=tmp_path / "adapters",
        metrics_path=tmp_path / "metrics.json",
        scratch_dir=tmp_path / ".scratch",
        fmt=FMT,
        lora=LORA,
        train_cfg=TRAIN,
        settings=DPO,
        checkpoint_steps=[3],
        seed=0,
        device=torch.device("cpu"),
    )
    kwargs.update(overrides)
    return train.train_adapter(**kwargs)


def test_checkpoint_after_the_last_step_fails_before_training(base, pairs_file, tmp_path):
    with pytest.raises(ValueError, match=r"checkpoint step\(s\) \[99\] come after the last optimizer step 6"):
        run_training(base, pairs_file, tmp_path, checkpoint_steps=[3, 99])
    assert not (tmp_path / ".scratch").exists() and not (tmp_path / "adapters").exists()


def test_too_long_prompt_fails_before_training(base, pairs_file, tmp_path):
    short = from_schema(train.MethodSettings, max_length=12, warmup_steps=None)
    with pytest.raises(
        FormatError, match=r"left\.parquet: row 0: the formatted prompt has \d+ tokens, max_length is 12"
    ):
        run_training(base, pairs_file, tmp_path, settings=short)
    assert not (tmp_path / ".scratch").exists()


def test_missing_columns_and_empty_sets_fail_naming_the_file(base, tmp_path):
    bad = tmp_path / "bad.parquet"
    pd.DataFrame({"prompt": ["a"], "chosen": ["b"], "split": ["train"]}).to_parquet(bad)
    with pytest.raises(ValueError, match=r"bad\.parquet: missing column\(s\) \['rejected'\]"):
        run_training(base, bad, tmp_path)
    empty = tmp_path / "empty.parquet"
    pd.DataFrame({"prompt": ["a"], "chosen": ["b"], "rejected": ["c"], "split": ["heldout"]}).to_parquet(empty)
    with pytest.raises(ValueError, match=r"empty\.parquet: split\(s\) \['train'\] hold no rows"):
        run_training(base, empty, tmp_path)


def test_wandb_only_when_asked(base, pairs_file, tmp_path, monkeypatch):
    trainer = make_trainer(base, pairs_file, tmp_path)  # report_to defaults to none
    assert "wandb" not in (trainer.args.report_to or [])
    real_find_spec = train.importlib.util.find_spec
    monkeypatch.setattr(
        train.importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real_find_spec(name, *a)
    )
    with pytest.raises(ImportError, match="report_to: wandb needs the wandb package"):
        run_training(base, pairs_file, tmp_path / "wandb", report_to="wandb")
    assert not (tmp_path / "wandb" / "adapters").exists()


def test_adapter_on_another_base_is_refused(trained, tmp_path):
    _, out = trained
    other = tiny_chat_model(tmp_path / "other", TEMPLATE, seed=1)
    with pytest.raises(AdapterMismatchError, match=r"adapter trained on base .*tiny-0.* does not match model .*tiny-1"):
        adapters.load_policy(other, out / "final", LORA, "cpu")
    with pytest.raises(AdapterMismatchError, match="not a LoRA adapter"):
        adapters.check_adapter_base(tmp_path, other, {})


# --------------------------------------------------------------------------- kill and resume
KILL_RUN = dict(
    lora=from_schema(LoraSettings, r=4, alpha=8, dropout=0.0, target_modules=("q_proj", "v_proj")),
    train_cfg=from_schema(TrainConfig, max_steps=12, batch_size=4, learning_rate=5e-3, save_steps=4, logging_steps=1),
    checkpoint_steps=[3, 10],
)
SCRIPT = textwrap.dedent(
    """
    import sys, torch
    from biasdrift.runtime import set_threads
    set_threads(1)
    from pathlib import Path
    from biasdrift.config import from_schema
    from biasdrift.politune import train
    from biasdrift.politune.adapters import LoraSettings
    from biasdrift.politune.formatting import FormatConfig
    from biasdrift.training import TrainConfig
    base, pairs, root = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    train.train_adapter(
        method="dpo", ref={"alias": "tiny-0", "source": "path", "path": base}, pairs_path=pairs,
        out_dir=root / "adapters", metrics_path=root / "metrics.json", scratch_dir=root / ".scratch",
        fmt=from_schema(FormatConfig),
        lora=from_schema(LoraSettings, r=4, alpha=8, dropout=0.0, target_modules=("q_proj", "v_proj")),
        train_cfg=from_schema(
            TrainConfig, max_steps=12, batch_size=4, learning_rate=5e-3, save_steps=4, logging_steps=1
        ),
        settings=from_schema(train.MethodSettings, max_length=128, warmup_steps=None, beta=0.1),
        checkpoint_steps=[3, 10], seed=0,
        device=torch.device("cpu"),
    )
    """
)


def test_killed_training_resumes_to_the_same_adapters(base, pairs_file, tmp_path):
    """SIGKILL the training process after its checkpoint of step 8 and rerun it: the
    final adapter and the saved step adapters equal those of an uninterrupted run."""
    clean = tmp_path / "clean"
    run_training(base, pairs_file, clean, **KILL_RUN)  # the same run as SCRIPT, in this process
    script = tmp_path / "run.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "PYTHONPATH": str(REPO / "workflow" / "scripts"), "OMP_NUM_THREADS": "1"}
    killed = tmp_path / "killed"
    command = [sys.executable, str(script), base["path"], str(pairs_file), str(killed)]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if (killed / ".scratch" / "checkpoint-8" / "trainer_state.json").is_file():
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.02)
    assert proc.wait(timeout=30) == -signal.SIGKILL, "training finished before it could be killed"
    assert (killed / ".scratch" / "politune_adapters" / "step-3").is_dir() and not (killed / "adapters").exists()
    subprocess.run(command, env=env, check=True, capture_output=True, timeout=300)

    metrics = json.loads((killed / "metrics.json").read_text())
    assert metrics["resumed_from_step"] == 8 and metrics["global_step"] == 12
    for sub in ("final", "step-3", "step-10"):
        resumed = load_file(killed / "adapters" / sub / "adapter_model.safetensors")
        reference = load_file(clean / "adapters" / sub / "adapter_model.safetensors")
        assert resumed.keys() == reference.keys() and all(torch.equal(resumed[k], reference[k]) for k in reference), sub
    assert not (killed / ".scratch").exists()
