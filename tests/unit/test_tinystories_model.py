"""tinystories: the llama2c architecture, training on the shared loop (accumulation,
checkpoints, resume, recovery snapshots), evaluation and the report's checks."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from biasdrift import training as shared_training
from biasdrift.config import from_schema
from biasdrift.tinystories import architectures as arch
from biasdrift.tinystories import corpus
from biasdrift.tinystories.data import split_files, windows_for
from biasdrift.tinystories.vocab import StoryTokenizer
from tests.unit.tinystories_helpers import build_world, story_train_config

TINY = {"dim": 32, "n_layers": 2, "n_heads": 4, "n_kv_heads": 2, "multiple_of": 16, "max_seq_len": 64}


def tiny_model(seed: int = 0, **overrides) -> arch.Llama2cForCausalLM:
    torch.manual_seed(seed)
    return arch.Llama2cForCausalLM(arch.model_config("tiny", {**TINY, "vocab_size": 512, **overrides}))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Synthetic corpus (3 shards), a 512-piece vocabulary and the 'all' dataset."""
    return build_world(tmp_path_factory.mktemp("tsm"), n_shards=3, stories_per_shard=300, seed=2, vocab_size=512)


# --------------------------------------------------------------------------- architecture
@pytest.mark.parametrize(
    "preset,params",
    [("base8M", 8_335_008), ("base30M", 29_893_120), ("base91M", 91_245_312), ("base210M", 210_797_568)],
)
def test_presets_have_the_original_parameter_counts(preset, params):
    with torch.device("meta"):
        model = arch.Llama2cForCausalLM(arch.model_config(preset))
    assert arch.count_parameters(model) == params


def test_overrides_parse_like_the_original_configurator():
    cfg = arch.model_config("base30M", ["dim=256", "dropout=0", "n_kv_heads=4"])
    assert (cfg.dim, cfg.dropout, cfg.n_kv_heads) == (256, 0.0, 4) and isinstance(cfg.dropout, float)
    assert arch.model_config("tiny", {"rope_theta": 500}).rope_theta == 500.0
    with pytest.raises(ValueError, match="unknown key"):
        arch.model_config("tiny", ["n_layer=2"])
    with pytest.raises(ValueError, match="expected int"):
        arch.model_config("tiny", {"dim": "wide"})
    with pytest.raises(ValueError, match="does not divide"):
        arch.model_config("tiny", {"n_kv_heads": 3})
    with pytest.raises(ValueError, match="unknown model preset"):
        arch.model_config("base1B")


def test_init_ties_embeddings_and_scales_w3_and_wo():
    model = tiny_model(n_layers=8, dim=64, multiple_of=32)
    assert model.output.weight is model.model.tok_embeddings.weight
    block = model.model.layers[0]
    scaled = 0.02 / math.sqrt(2 * 8)
    assert block.attention.wo.weight.std().item() == pytest.approx(scaled, rel=0.15)
    assert block.feed_forward.w3.weight.std().item() == pytest.approx(scaled, rel=0.15)
    assert block.feed_forward.w2.weight.std().item() == pytest.approx(0.02, rel=0.15)


def test_attention_is_causal_and_the_kv_cache_and_padding_change_nothing():
    model = tiny_model().eval()
    x = torch.randint(3, 512, (3, 20))
    with torch.no_grad():
        full = model(x).logits
        changed = x.clone()
        changed[:, 12:] = 5
        assert torch.allclose(model(changed).logits[:, :12], full[:, :12], atol=1e-5)
        first = model(x[:, :9], use_cache=True)
        rest = model(x[:, 9:], past_key_values=first.past_key_values, use_cache=True)
        assert torch.allclose(torch.cat((first.logits, rest.logits), 1), full, atol=1e-5)
        padded = torch.cat((torch.zeros(3, 4, dtype=torch.long), x), 1)
        mask = torch.cat((torch.zeros(3, 4, dtype=torch.long), torch.ones_like(x)), 1)
        out = model(padded, attention_mask=mask).logits[:, 4:]
        assert torch.isfinite(out).all()
        # relative positions are what RoPE sees: left padding shifts them all equally
        assert torch.allclose(out, full, atol=1e-4)


def test_rmsnorm_runs_in_fp32_for_bf16_inputs():
    norm = arch.RMSNorm(8, 1e-5)
    x = (torch.randn(2, 8) * 1e3).to(torch.bfloat16)
    ref = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + 1e-5)  # fp32, then cast (llama2.c)
    assert torch.equal(norm(x), ref.to(torch.bfloat16) * norm.weight)


def test_save_and_load_through_the_foundation_loader(tmp_path):
    from transformers import AutoModelForCausalLM

    from biasdrift.models import load_model

    model = tiny_model().eval()
    model.save_pretrained(tmp_path / "m")
    x = torch.randint(3, 512, (2, 16))
    for loaded in (
        AutoModelForCausalLM.from_pretrained(tmp_path / "m"),
        load_model({"alias": "m", "source": "path", "path": str(tmp_path / "m")}),
    ):
        assert isinstance(loaded, arch.Llama2cForCausalLM)
        assert loaded.output.weight is loaded.model.tok_embeddings.weight
        assert torch.equal(loaded.eval()(x).logits, model(x).logits)
    assert model.config.model_args()["n_kv_heads"] == 2


def test_the_foundation_loader_finds_llama2c_without_importing_the_study(tmp_path):
    """biasdrift.models.load_model registers the studies' architectures itself (fresh
    interpreter: nothing imported biasdrift.tinystories before)."""
    import subprocess
    import sys
    from pathlib import Path

    tiny_model().save_pretrained(tmp_path / "m")
    code = (
        "import sys; from biasdrift.models import load_model; "
        "m = load_model({'alias': 'm', 'source': 'path', 'path': sys.argv[1]}); print(type(m).__name__)"
    )
    scripts = Path(__file__).resolve().parents[2] / "workflow" / "scripts"
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "m")],
        cwd=scripts,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(scripts), "HF_HUB_OFFLINE": "1"},
    )
    assert out.stdout.strip().splitlines()[-1] == "Llama2cForCausalLM"


def test_the_model_factory_builds_llama2c_with_a_foundation_tokenizer(tmp_path):
    from biasdrift.models import ModelSize, build_model
    from biasdrift.tokenization import TokenizerConfig, train_tokenizer

    texts = [f"the cat number {i} sat on the mat and looked at the dog" for i in range(200)]
    train_tokenizer(texts, from_schema(TokenizerConfig, kind="bpe", vocab_size=300), tmp_path / "tok")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "tok")
    model = build_model(
        "llama2c", from_schema(ModelSize, layers=2, heads=4, kv_heads=2, hidden=32, context=64), tokenizer
    )
    assert isinstance(model, arch.Llama2cForCausalLM)
    assert model.config.vocab_size == len(tokenizer) and model.config.n_kv_heads == 2
    ids = torch.tensor([tokenizer("the cat sat")["input_ids"]])
    assert torch.isfinite(model(ids, labels=ids).loss)


# --------------------------------------------------------------------------- data splits
def test_splits_are_disjoint_and_cover_the_training_shards(tmp_path):
    files = [tmp_path / f"data{i:02d}.bin" for i in range(11)]
    assert split_files(files, "test") == files[:1]
    pre, fine = split_files(files, "pretrain", 0.8), split_files(files, "finetune", 0.8)
    assert pre == files[1:9] and fine == files[9:] and not set(pre) & set(fine)
    assert set(pre) | set(fine) == set(files[1:])
    assert split_files(files, "pretrain", 0.0) == split_files(files, "finetune", 0.0) == files[1:]


def test_bos_aligned_windows_start_at_examples(world):
    windows = windows_for(world / "all", "train", 64, align_to_bos=True)
    packed = windows_for(world / "all", "train", 64)
    assert all(int(windows[i]["input_ids"][0]) == 1 for i in range(len(windows)))
    assert sum(int(packed[i]["input_ids"][0]) == 1 for i in range(len(packed))) < len(packed)


# --------------------------------------------------------------------------- training
def _trainer(model, train_set, cfg, tmp_path):
    from transformers import Trainer, default_data_collator

    from biasdrift.training import training_arguments

    args = training_arguments(cfg, tmp_path / "scratch", seed=0)
    return Trainer(model=model, args=args, train_dataset=train_set, data_collator=default_data_collator)


def test_accumulating_k_distinct_micro_batches_gives_the_full_batch_gradient(world, tmp_path):
    """HF Trainer with grad_accum=4 x batch 2 over exactly 8 windows (one optimizer step)
    must leave the gradient of the mean loss over all 8 windows (fp64, 1e-6); the
    original's bug (one micro-batch reused 4 times) must not."""
    from transformers import TrainerCallback

    windows = windows_for(world / "all", "train", 32, max_windows=8)
    model = tiny_model().double()
    reference = tiny_model().double()
    batch = torch.stack([windows[i]["input_ids"] for i in range(8)])
    reference(batch, labels=batch).loss.backward()
    full = {n: p.grad.clone() for n, p in reference.named_parameters()}
    reference.zero_grad()
    first = batch[:2]
    for _ in range(4):
        (reference(first, labels=first).loss / 4).backward()
    reused = {n: p.grad.clone() for n, p in reference.named_parameters()}

    captured = {}

    class Capture(TrainerCallback):
        def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):  # noqa: ARG002
            captured.update({n: p.grad.detach().clone() for n, p in model.named_parameters()})

    cfg = story_train_config(max_steps=1, batch_size=2, grad_accum=4, max_grad_norm=0.0, save_steps=100)
    trainer = _trainer(model, windows, cfg, tmp_path)
    trainer.add_callback(Capture())
    trainer.train()
    assert captured.keys() == full.keys()
    worst = max((captured[n] - full[n]).abs().max().item() for n in full)
    assert worst < 1e-6, worst
    assert max((reused[n] - full[n]).abs().max().item() for n in full) > 1e-4  # the bug is detectable


def test_norms_get_no_weight_decay_and_matrices_do(world, tmp_path):
    cfg = story_train_config(max_steps=1, batch_size=2, weight_decay=0.1, save_steps=100)
    trainer = _trainer(tiny_model(), windows_for(world / "all", "train", 32, max_windows=4), cfg, tmp_path)
    decayed = set(trainer.get_decay_parameter_names(trainer.model))
    names = {n for n, _ in trainer.model.named_parameters()}
    assert {n for n in names if "norm" in n}.isdisjoint(decayed)
    assert {n for n in names if "norm" not in n} <= decayed


def _train(world, tmp_path, name, **kwargs):
    from biasdrift.tinystories.training import ModelSpec, train_story_model

    cfg = story_train_config(
        max_steps=8,
        batch_size=4,
        learning_rate=3e-3,
        adam_beta2=0.95,
        weight_decay=0.1,
        save_steps=3,
        eval_steps=4,
        logging_steps=2,
        block_size=32,
        eval_blocks=4,
    )
    defaults = dict(
        train_dir=world / "all",
        split="train",
        cfg=cfg,
        seed=0,
        device="cpu",
        out_dir=tmp_path / name / "model",
        metrics_path=tmp_path / name / "metrics.json",
        scratch_dir=tmp_path / name / ".scratch" / "run",
        tokenizer_model=world / "tok.model",
        threads=1,
    )
    if "init_ref" not in kwargs:
        defaults["build"] = from_schema(ModelSpec, preset="tiny", overrides={**TINY, "dropout": 0.0})
    return train_story_model(**{**defaults, **kwargs})


def test_checkpoint_round_trip_gives_the_same_validation_loss(world, tmp_path):
    from biasdrift.tinystories.evaluation import load_story_model, window_loss

    metrics = _train(world, tmp_path, "base")
    assert metrics["global_step"] == 8 and metrics["model_args"]["dim"] == 32
    reloaded = load_story_model(tmp_path / "base" / "model", "cpu")
    windows = windows_for(world / "all", "test", 32, max_windows=4, align_to_bos=True)
    assert window_loss(reloaded, windows, "cpu") == pytest.approx(metrics["final_eval"]["eval_loss"], abs=1e-6)
    assert not (tmp_path / "base" / ".scratch").exists()
    assert {e["step"] for e in metrics["log_history"] if "eval_loss" in e} >= {4, 8}


def test_a_crashed_recovery_resumes_and_still_delivers_every_snapshot(world, tmp_path, monkeypatch):
    """Crash after the step-6 checkpoint, rerun: it resumes, ends with the weights of an
    uninterrupted run, and every configured step's model is delivered."""
    from safetensors.torch import load_file
    from transformers import TrainerCallback

    _train(world, tmp_path, "base")
    init = {"alias": "base", "source": "path", "path": str(tmp_path / "base" / "model")}
    snaps = lambda name: {k: tmp_path / name / f"step{k}" for k in (0, 2, 5)}  # noqa: E731
    _train(world, tmp_path, "clean", init_ref=init, snapshot_steps=snaps("clean"))

    class Crash(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):  # noqa: ARG002
            if state.global_step == 7:
                raise RuntimeError("simulated kill")

    original = shared_training.callbacks_for  # make_trainer's callbacks
    monkeypatch.setattr(shared_training, "callbacks_for", lambda cfg: [*original(cfg), Crash()])
    with pytest.raises(RuntimeError, match="simulated kill"):
        _train(world, tmp_path, "killed", init_ref=init, snapshot_steps=snaps("killed"))
    assert not (tmp_path / "killed" / "model").exists() and not (tmp_path / "killed" / "step2").exists()
    monkeypatch.setattr(shared_training, "callbacks_for", original)
    metrics = _train(world, tmp_path, "killed", init_ref=init, snapshot_steps=snaps("killed"))
    assert metrics["resumed_from_step"] == 6 and metrics["steps_this_attempt"] == 2
    for name in ("model", "step0", "step2", "step5"):
        resumed = load_file(tmp_path / "killed" / name / "model.safetensors")
        clean = load_file(tmp_path / "clean" / name / "model.safetensors")
        assert all(torch.equal(resumed[k], clean[k]) for k in clean), name
    base = load_file(tmp_path / "base" / "model" / "model.safetensors")
    step0 = load_file(tmp_path / "killed" / "step0" / "model.safetensors")
    assert all(torch.equal(base[k], step0[k]) for k in base)  # step 0 is the starting model


def test_a_fresh_empty_scratch_dir_is_not_reported_as_discarded(tmp_path, caplog):
    """Foundation fix: the HF Trainer creates its (empty) output_dir before fit() runs;
    that must not log "discarding scratch state", while real foreign state still does."""
    from biasdrift.training import prepare_scratch

    (tmp_path / "s").mkdir()
    with caplog.at_level("WARNING"):
        assert prepare_scratch(tmp_path / "s", {"a": 1}) is None
    assert "discarding" not in caplog.text
    (tmp_path / "s" / "checkpoint-3").mkdir()
    with caplog.at_level("WARNING"):
        prepare_scratch(tmp_path / "s", {"a": 2})
    assert "discarding scratch state" in caplog.text and not (tmp_path / "s" / "checkpoint-3").exists()


def test_training_rejects_windows_longer_than_the_model_context(world, tmp_path):
    from biasdrift.tinystories.training import ModelSpec

    with pytest.raises(ValueError, match="exceeds the model's max_seq_len"):
        _train(
            world, tmp_path, "long", build=from_schema(ModelSpec, preset="tiny", overrides={**TINY, "max_seq_len": 16})
        )


# --------------------------------------------------------------------------- evaluation
def test_prompts_never_come_from_stories_with_the_feature_and_ask_for_it(world):
    from biasdrift.tinystories.evaluation import feature_prompts

    records = corpus.load_shard(world / "shards" / "data00.json")
    asked = feature_prompts(records, "Twist", True, 20, seed=0)
    plain = feature_prompts(records, "Twist", False, 20, seed=0)
    assert len(asked) == len(plain) == 20
    for a, p in zip(asked, plain, strict=True):
        assert "Twist" not in records[a["index"]]["instruction"]["features"]
        features = next(line for line in a["prompt"].split("\n") if line.startswith("Features:"))
        assert "Twist" in features and a["prompt"].endswith("Story:")
        assert "Twist" not in p["prompt"]


def test_sampling_is_seeded(world):
    from biasdrift.tinystories.evaluation import EvalConfig, sample

    tokenizer = StoryTokenizer(world / "tok.model")
    model = tiny_model().eval()
    cfg = EvalConfig(max_new_tokens=20, batch_size=3, seed=4)
    prompts = ["Features: Twist\nStory:", "Words: a, b, c\nStory:", "Story:", "Summary: x\nStory:"]
    first, again = sample(model, tokenizer, prompts, cfg, "cpu"), sample(model, tokenizer, prompts, cfg, "cpu")
    other = sample(model, tokenizer, prompts, EvalConfig(max_new_tokens=20, batch_size=3, seed=5), "cpu")
    assert first == again and len(first) == 4 and other != first


def test_sampling_stops_at_the_next_example_and_cuts_it_off(world):
    """A scripted model writes a story per row, then BOS (the next example) and more text:
    each sample is its story alone (a row that ended first is not padded with the filler
    the batch goes on with), and generation stops once every row has its BOS."""
    from types import SimpleNamespace

    from biasdrift.tinystories.evaluation import EvalConfig, sample

    tokenizer = StoryTokenizer(world / "tok.model")
    stories = [tokenizer.encode(t, bos=False) for t in ("Tom ran.", "Lily sat down under the big old tree.")]
    scripts = [[*s, tokenizer.bos_id, *tokenizer.encode("Once there was", bos=False)] for s in stories]
    calls = []

    class Scripted(torch.nn.Module):
        config = SimpleNamespace(max_seq_len=256)

        def forward(self, ids, attention_mask=None, past_key_values=None, use_cache=True, logits_to_keep=1):  # noqa: ARG002
            logits = torch.full((ids.shape[0], 1, tokenizer.vocab_size), -1e4)
            for row, script in enumerate(scripts):
                logits[row, 0, script[min(len(calls), len(script) - 1)]] = 0.0
            calls.append(ids.shape)
            return SimpleNamespace(logits=logits, past_key_values=None)

    cfg = EvalConfig(max_new_tokens=40, batch_size=2, seed=0)
    out = sample(Scripted(), tokenizer, ["Story:", "Story:"], cfg, "cpu")
    assert out == [tokenizer.decode(s).strip() for s in stories] and all(out)
    assert len(calls) == max(len(s) for s in stories) + 1  # the forward that gave the last BOS was the last


def test_wilson_interval():
    from biasdrift.tinystories.evaluation import wilson

    lo, hi = wilson(8, 16)
    assert lo == pytest.approx(0.2800, abs=1e-3) and hi == pytest.approx(0.7200, abs=1e-3)
    assert wilson(0, 10)[0] == 0.0 and math.isnan(wilson(0, 0)[0])


def test_evaluation_and_probes_of_a_checkpoint(world):
    from biasdrift.tinystories.evaluation import EvalConfig, ProbeConfig, evaluate_checkpoint, fit_probes

    tokenizer = StoryTokenizer(world / "tok.model")
    model = tiny_model(max_seq_len=256).eval()
    cfg = EvalConfig(
        prompts_per_feature=4,
        max_new_tokens=8,
        loss_windows=2,
        block_size=32,
        marker_stories=3,
        features=["Twist", "Dialogue"],
    )
    result, rows = evaluate_checkpoint(model, tokenizer, world / "shards", {"all": world / "all"}, cfg, "Twist", "cpu")
    assert set(result["rates"]["requested"]) == {"Twist", "Dialogue"} and len(rows) == 12
    assert 0 < result["losses"]["all"] < 10
    assert result["marker_logprob"]["Twist"]["n"] == 3 and result["marker_logprob"]["Twist"]["mean"] < 0
    assert result["agreement"] is None and result["rates"]["detector"] == "markers"

    def always_yes(stories, features):
        return [True] * len(stories), ["Yes"] * len(features)

    judged, rows = evaluate_checkpoint(model, tokenizer, world / "shards", {}, cfg, "Twist", "cpu", always_yes)
    assert judged["rates"]["requested"]["Twist"]["rate"] == 1.0 and judged["rates"]["detector"] == "judge"
    assert set(judged["agreement"]) == {"Twist", "Dialogue"} and judged["agreement"]["Twist"]["n"] == len(rows)
    probes = fit_probes(model, tokenizer, world / "shards", ProbeConfig(train_stories=80, test_stories=60), "cpu", 0)
    layers = {r["layer"] for r in probes["probes"]}
    assert layers == {0, 1, 2} and all(0 <= r["balanced_accuracy"] <= 1 for r in probes["probes"])


# --------------------------------------------------------------------------- checks
def _frames(deleted_rate: float, deleted_steps: dict[str, list[float]]):
    rows = [
        {"run": "pretrain/all", "stage": "pretrain", "protocol": "all", "lr": None, "seed": None, "r": 0.9},
        {"run": "pretrain/control", "stage": "pretrain", "protocol": "control", "lr": None, "seed": None, "r": 0.0},
    ]
    rows += [
        {
            "run": f"delete/f-at/lr0.001/seed{s}",
            "stage": "delete",
            "protocol": "f-at",
            "lr": 0.001,
            "seed": s,
            "r": deleted_rate,
        }
        for s in range(3)
    ]
    results = pd.DataFrame(rows)
    for f in ("Twist", "Dialogue"):
        results[f"requested_{f}"] = results["r"] if f == "Twist" else 0.8
        results[f"requested_{f}_lo"] = results[f"requested_{f}_hi"] = np.nan
    results["unrequested_Twist"] = 0.02
    recovery = []
    for source, rates in deleted_steps.items():
        for seed in range(3):
            for step, rate in zip((0, 10, 100), rates, strict=True):
                recovery.append({"source": source, "seed": seed, "step": step, "requested_Twist": rate})
    probes = pd.DataFrame([{"run": r, "feature": "Twist", "layer": 1, "balanced_accuracy": 0.9} for r in results.run])
    return results, pd.DataFrame(recovery), probes


def test_checks_report_success_and_can_fail():
    from biasdrift.tinystories.report import compute_checks

    layout = {"feature": "Twist", "checks": {}}
    good = compute_checks(*_frames(0.1, {"control": [0.0, 0.1, 0.6], "f-at-lr0.001": [0.1, 0.7, 0.9]}), layout)
    assert good["base"]["passed"] and good["deletion"][0]["deleted"] and good["deletion"][0]["little_collateral"]
    assert good["recovery"]["median_steps"] == {"control": 100.0, "f-at-lr0.001": 10.0}
    assert good["recovery"]["all_deleted_faster"] and good["probes"]["above_chance"]
    bad = compute_checks(*_frames(0.8, {"control": [0.0, 0.6, 0.9], "f-at-lr0.001": [0.1, 0.2, 0.3]}), layout)
    assert bad["deletion"][0]["deleted"] is False
    assert bad["recovery"]["median_steps"]["f-at-lr0.001"] == math.inf
    assert bad["recovery"]["all_deleted_faster"] is False


def test_checks_without_rates_are_undecided_not_failed():
    """Every judge reply unparsed leaves the rates NaN: the checks say None (not
    decided), never False, and a recovery curve without rates has no step count."""
    from biasdrift.tinystories.report import compute_checks

    nan = math.nan
    results, recovery, probes = _frames(nan, {"control": [nan, nan, nan], "f-at-lr0.001": [nan, nan, nan]})
    results.loc[results.stage == "pretrain", "requested_Twist"] = nan
    results["requested_Dialogue"] = nan
    checks = compute_checks(results, recovery, probes, {"feature": "Twist", "checks": {}})
    assert checks["base"]["passed"] is None
    assert checks["deletion"][0]["deleted"] is None and checks["deletion"][0]["little_collateral"] is None
    assert math.isnan(checks["recovery"]["median_steps"]["f-at-lr0.001"])
    assert checks["recovery"]["faster_than_control"] == {"f-at-lr0.001": None}
    assert checks["recovery"]["all_deleted_faster"] is None
    # one rate missing after the threshold was reached does not undo the step count
    _, partial, _ = _frames(0.1, {"control": [0.0, 0.6, nan], "f-at-lr0.001": [0.7, nan, nan]})
    partial_checks = compute_checks(*_frames(0.1, {"control": [0.0, 0.6, 0.9]})[:1], partial, probes,
                                    {"feature": "Twist", "checks": {}})  # fmt: skip
    assert partial_checks["recovery"]["median_steps"] == {"control": 10.0, "f-at-lr0.001": 0.0}
