"""Fine-tuning with the milestone callback: dumps at step 0, every N steps and each epoch,
epoch models that are the weights at that epoch, fp32 weights, the KL curve, and a
SIGKILLed job that resumes to the same milestones."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from specdec_helpers import ASSISTANT_SIZE, MAIN_SIZE, make_model, make_tokenizer, one_thread, path_ref, prompts

from biasdrift import corpora
from biasdrift.config import from_schema
from biasdrift.specdec.finetune import (
    FinetuneDataConfig,
    MilestoneConfig,
    finetune_lm,
    load_milestones,
    template_log_probs,
)
from biasdrift.specdec.kl import kl_curve
from biasdrift.specdec.templates import TemplateConfig, build_templates
from biasdrift.training import TrainConfig

pytestmark = pytest.mark.usefixtures(one_thread.__name__)

REPO = Path(__file__).resolve().parents[2]
TRAIN = {
    "epochs": 2,
    "batch_size": 8,
    "learning_rate": 1e-3,
    "save_steps": 2,
    "logging_steps": 2,
    "lr_scheduler": "constant",
}
MILESTONES = {"every_n_steps": 3, "batch_size": 16}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("ft")
    tok = make_tokenizer(root / "tok")
    make_model(tok, MAIN_SIZE, seed=0, path=root / "main")
    make_model(tok, ASSISTANT_SIZE, seed=1, path=root / "assistant")
    corpora.generate("specdec_news", {"n_articles": 36, "test_fraction": 0.1}, 0).to_parquet(root / "news.parquet")
    return root


def _finetune(root: Path, role: str, out: Path, **train) -> dict:
    return finetune_lm(
        role=role,
        model_ref=path_ref(role, root / role),
        corpus_path=root / "news.parquet",
        data_cfg=from_schema(FinetuneDataConfig, dataset="news", max_length=32, eval_split="test"),
        train_cfg=from_schema(TrainConfig, **{**TRAIN, **train}),
        milestone_cfg=from_schema(MilestoneConfig, **MILESTONES),
        prompts=prompts(10),
        out_model=out / "model",
        out_epochs=out / "epochs",
        out_milestones=out / "milestones",
        metrics_path=out / "metrics.json",
        scratch_dir=out / ".scratch" / "ft",
        seed=0,
        device="cpu",
    )


@pytest.fixture(scope="module")
def tuned(setup):
    out = {role: setup / f"out-{role}" for role in ("main", "assistant")}
    for role, path in out.items():
        _finetune(setup, role, path)
    return out


def test_milestones_at_start_every_n_steps_and_each_epoch(tuned):
    dumps, epochs = load_milestones(tuned["main"] / "milestones")
    # 32 training articles / batch 8 = 4 steps per epoch, 8 in all; every 3 steps
    assert sorted(dumps) == [0, 3, 4, 6, 8]
    assert epochs == {1: 4, 2: 8}
    assert (
        dumps[0]["log_probs"].shape == (10, dumps[0]["log_probs"].shape[1])
        and dumps[0]["log_probs"].dtype == torch.float32
    )
    assert dumps[0]["prompts"] == prompts(10)
    assert dumps[4]["epoch"] == pytest.approx(1.0) and dumps[8]["epoch"] == pytest.approx(2.0)
    other, _ = load_milestones(tuned["assistant"] / "milestones")
    assert sorted(other) == sorted(dumps), "both roles store the same steps"
    assert not (tuned["main"] / ".scratch").exists()


def test_epoch_models_are_the_weights_at_that_epoch(tuned):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tuned["main"]
    final = load_file(out / "model" / "model.safetensors")
    last = load_file(out / "epochs" / "epoch_2" / "model.safetensors")
    first = load_file(out / "epochs" / "epoch_1" / "model.safetensors")
    assert all(torch.equal(final[k], last[k]) for k in final), "the final model is the model of the last epoch"
    assert any(not torch.equal(final[k], first[k]) for k in final)
    assert all(v.dtype == torch.float32 for v in final.values())
    model = AutoModelForCausalLM.from_pretrained(out / "epochs" / "epoch_1")
    tok = AutoTokenizer.from_pretrained(out / "epochs" / "epoch_1")
    dumps, _ = load_milestones(out / "milestones")
    assert torch.allclose(template_log_probs(model, tok, prompts(10)), dumps[4]["log_probs"], atol=1e-5)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["global_step"] == 8 and metrics["final_eval"]["eval_loss"] > 0


def test_fine_tuning_moves_the_template_distributions(tuned):
    from biasdrift.specdec.divergence import divergences

    dumps, _ = load_milestones(tuned["main"] / "milestones")
    moved = divergences(dumps[8]["log_probs"], dumps[0]["log_probs"])["kl_pq"]
    assert moved.mean() > 1e-4


def test_kl_curve_over_the_milestones(tuned, tmp_path):
    rows = [
        {"template_masked": p + " [M].", "identity": p.split(" ")[1], "category": "female" if i % 2 else "male"}
        for i, p in enumerate(prompts(10))
    ]
    tsv = tmp_path / "t.tsv"
    pd.DataFrame(rows).to_csv(tsv, sep="\t", index=False)
    build_templates([("t", tsv)], from_schema(TemplateConfig, categories=["female", "male"])).to_parquet(
        tmp_path / "t.parquet"
    )
    kl_curve(
        main_dir=tuned["main"] / "milestones",
        assistant_dir=tuned["assistant"] / "milestones",
        templates_path=tmp_path / "t.parquet",
        views=["clean_binary"],
        n_boot=50,
        ci=0.95,
        seed=0,
        out_path=tmp_path / "curve.csv",
    )
    curve = pd.read_csv(tmp_path / "curve.csv")
    main_term = curve[(curve["term"] == "KL(M_t‖A_t)") & (curve["category"] == "all")]
    assert main_term["step"].tolist() == [0, 3, 4, 6, 8]
    assert (main_term["mean"] > 0).all()
    drift = curve[(curve["term"] == "KL(M_t‖M_0)") & (curve["category"] == "all")].set_index("step")["mean"]
    assert drift.loc[0] == pytest.approx(0, abs=1e-6) and drift.loc[8] > 0
    assert set(curve.loc[curve["epoch_end"].notna(), "step"]) == {4, 8}
    assert set(curve["category"]) == {"all", "female", "male"}


def test_early_stopping_is_refused(setup, tmp_path):
    with pytest.raises(ValueError, match="early stopping reloads the best checkpoint"):
        _finetune(setup, "main", tmp_path, early_stopping_patience=1, eval_steps=2)


RUNNER = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {scripts!r}); sys.path.insert(0, {tests!r})
    import transformers
    from pathlib import Path
    from biasdrift.runtime import seed_everything, setup_logging
    import test_specdec_finetune as t

    if {kill_at}:  # die like a preempted job right after writing checkpoint-<kill_at>
        save = transformers.Trainer._save_checkpoint

        def save_then_die(self, model, trial):
            save(self, model, trial)
            if self.state.global_step == {kill_at}:
                os.kill(os.getpid(), signal.SIGKILL)

        transformers.Trainer._save_checkpoint = save_then_die
    setup_logging(None)
    seed_everything(0)
    t._finetune(Path({root!r}), "main", Path({out!r}))
    """
)


def test_a_killed_fine_tune_resumes_to_the_same_milestones(setup, tuned, tmp_path):
    def run(kill_at: int):
        script = RUNNER.format(
            scripts=str(REPO / "workflow" / "scripts"),
            tests=str(Path(__file__).parent),
            kill_at=kill_at,
            root=str(setup),
            out=str(tmp_path),
        )
        env = os.environ | {"OMP_NUM_THREADS": "1"}  # as the one_thread fixture
        return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600, env=env)

    proc = run(6)
    assert proc.returncode == -9, proc.stderr[-2000:]
    assert not (tmp_path / "milestones").exists()
    assert sorted(p.name for p in (tmp_path / ".scratch" / "ft" / "milestones").glob("step_*.pt")) == [
        "step_000000.pt",
        "step_000003.pt",
        "step_000004.pt",
        "step_000006.pt",
    ]
    proc = run(0)
    assert proc.returncode == 0, proc.stderr[-2000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["resumed_from_step"] == 6 and metrics["steps_this_attempt"] == 2
    resumed, _ = load_milestones(tmp_path / "milestones")
    clean, _ = load_milestones(tuned["main"] / "milestones")
    assert sorted(resumed) == sorted(clean)
    for step in clean:
        assert torch.equal(resumed[step]["log_probs"], clean[step]["log_probs"]), step
    assert (tmp_path / "epochs" / "epoch_1").is_dir() and (tmp_path / "epochs" / "epoch_2").is_dir()
