"""Study politune on a GPU: bf16 + gradient checkpointing, and QLoRA (4-bit base).

The GPU tests are skipped on CPU machines and in CI (``-m "not gpu"``); the CPU test
checks that asking for QLoRA without CUDA fails before any model is loaded.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from biasdrift import corpora
from biasdrift.config import from_schema
from biasdrift.politune import adapters, pairs, train
from biasdrift.politune.adapters import LoraSettings
from biasdrift.politune.formatting import FormatConfig
from biasdrift.politune.tiny import tiny_chat_model
from biasdrift.training import TrainConfig

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "resources" / "politune" / "chat_template.jinja"
TARGETS = ("q_proj", "v_proj", "gate_proj", "up_proj", "down_proj")


def test_qlora_without_cuda_fails_before_loading():
    lora = from_schema(LoraSettings, load_in_4bit=True)
    with pytest.raises(ValueError, match="load_in_4bit needs a CUDA device"):
        adapters.load_base({"alias": "never-loaded", "source": "path", "path": "/nonexistent"}, lora, "cpu")


gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(scope="module")
def gpu_setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpu")
    base = tiny_chat_model(root / "base", TEMPLATE, hidden=256)
    corpora.generate("politune_preferences", {"n_pairs": 40, "rating_fraction": 0.2}, 0).to_csv(root / "raw.csv")
    out = root / "left.parquet"
    pairs.prepare_pairs(
        {"dataset": "raw"}, {"raw": root / "raw.csv"}, out, from_schema(pairs.PairsConfig, heldout_fraction=0.2)
    )
    return base, out


def train_on_gpu(base, pairs_file, tmp_path, method, lora):
    cfg = from_schema(
        TrainConfig,
        max_steps=4,
        batch_size=4,
        learning_rate=1e-3,
        logging_steps=1,
        precision="auto",
        gradient_checkpointing=True,
    )
    return train.train_adapter(
        method=method,
        ref=base,
        pairs_path=pairs_file,
        out_dir=tmp_path / "adapters",
        metrics_path=tmp_path / "metrics.json",
        scratch_dir=tmp_path / ".scratch",
        fmt=from_schema(FormatConfig),
        lora=lora,
        train_cfg=cfg,
        settings=from_schema(train.MethodSettings, max_length=128, warmup_steps=None, beta=0.1),
        checkpoint_steps=[2],
        seed=0,
        device=torch.device("cuda"),
    )


def logged_losses(metrics_path: Path) -> list[float]:
    history = json.loads(metrics_path.read_text())["log_history"]
    return [row["loss"] for row in history if "loss" in row]


@pytest.mark.gpu
@gpu
@pytest.mark.parametrize("method", ["dpo", "sft"])
def test_bf16_with_checkpointing_trains_on_cuda(gpu_setup, tmp_path, method):
    base, pairs_file = gpu_setup
    model = adapters.load_base(base, from_schema(LoraSettings), torch.device("cuda"))
    assert next(model.parameters()).dtype == torch.bfloat16  # model_dtype auto -> bf16 on CUDA
    result = train_on_gpu(
        base, pairs_file, tmp_path, method, from_schema(LoraSettings, r=8, alpha=16, target_modules=TARGETS)
    )
    assert result["global_step"] == 4
    losses = logged_losses(tmp_path / "metrics.json")
    assert losses and all(math.isfinite(x) for x in losses)
    if method == "dpo":
        assert losses[0] == pytest.approx(math.log(2), abs=1e-2)  # bf16 rounding only
    for sub in ("final", "step-2"):
        assert (tmp_path / "adapters" / sub / "adapter_model.safetensors").is_file()


@pytest.mark.gpu
@gpu
def test_qlora_trains_a_4bit_base(gpu_setup, tmp_path):
    pytest.importorskip("bitsandbytes")
    base, pairs_file = gpu_setup
    lora = from_schema(LoraSettings, r=8, alpha=16, target_modules=TARGETS, load_in_4bit=True)
    model = adapters.load_base(base, lora, torch.device("cuda"))
    assert any(type(m).__name__ == "Linear4bit" for m in model.modules())
    result = train_on_gpu(base, pairs_file, tmp_path, "dpo", lora)
    assert result["global_step"] == 4
    losses = logged_losses(tmp_path / "metrics.json")
    assert losses and all(math.isfinite(x) for x in losses)
    policy, _ = adapters.load_policy(base, tmp_path / "adapters" / "final", lora, torch.device("cuda"))
    assert any("lora_A" in name for name, _ in policy.named_parameters())
