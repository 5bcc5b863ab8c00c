"""Which shard each stage of the tinystories study reads: evaluation prompts come from no
training shard, and the entry script pretrains and fine-tunes on disjoint shards. Checked on
content, not on file names: the training streams are decoded back to text and searched for
the stories in question."""

from __future__ import annotations

import contextlib
import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from biasdrift.tinystories import evaluation
from biasdrift.tinystories.corpus import load_shard, shard_files
from biasdrift.tinystories.data import bin_files, split_files
from biasdrift.tinystories.pretokenize import read_tokens, split_examples
from biasdrift.tinystories.vocab import StoryTokenizer
from tests.unit.tinystories_helpers import build_world

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """4 JSON shards (shard 0 = test, 1-3 = training), a vocabulary, the 'all' dataset."""
    return build_world(tmp_path_factory.mktemp("shards"), n_shards=4, stories_per_shard=120, seed=5, vocab_size=400)


def nothing(*_args, **_kwargs) -> dict:
    return {}


def norm(text: str) -> str:
    return " ".join(text.split())


def stream_text(world: Path, files: list[Path]) -> str:
    """The decoded training examples of token shards ``files``, one long string."""
    tokenizer = StoryTokenizer(world / "tok.model")
    return " | ".join(
        norm(tokenizer.decode([int(t) for t in example]))
        for path in files
        for example in split_examples(read_tokens(path))
    )


def found(records: list[dict], text: str) -> float:
    stories = [norm(r["story"]) for r in records if r["story"].strip()]
    return sum(s in text for s in stories) / len(stories)


def test_evaluation_prompts_come_from_no_training_shard(world, monkeypatch):
    """evaluate_checkpoint itself is run (its model-facing parts stubbed) and the records it
    builds prompts from are searched for in every training split's decoded stream."""
    seen = {}

    def spy(model, tokenizer, records, cfg, device, deleted, judge=None):  # noqa: ARG001
        seen["records"] = records
        return {"requested": {}, "unrequested": {}}, []

    monkeypatch.setattr(evaluation, "feature_rates", spy)
    monkeypatch.setattr(evaluation, "test_losses", nothing)
    monkeypatch.setattr(evaluation, "marker_logprob", nothing)
    cfg = evaluation.EvalConfig(features=["Twist"], block_size=32)
    evaluation.evaluate_checkpoint(None, None, world / "shards", {}, cfg, "Twist", "cpu")
    records = seen["records"]
    assert len(records) > 50
    tokens = bin_files(world / "all")
    for split, fraction in (("train", 0.0), ("pretrain", 0.5), ("finetune", 0.5)):
        share = found(records, stream_text(world, split_files(tokens, split, fraction)))
        assert share == 0, f"{share:.0%} of the evaluation records are in the {split} stream"
    assert found(records, stream_text(world, split_files(tokens, "test"))) > 0.95  # the search finds them


def load_entry_script(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "workflow/scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_job(rule: str, world: Path, settings: dict) -> SimpleNamespace:
    """The parts of a Snakemake job object train_story_model.py reads."""
    stage = {"seed": 0, "train": {"max_steps": 2, "batch_size": 2}, "eval_blocks": 0}
    params = SimpleNamespace(
        stage=stage,
        settings=settings,
        model={"preset": "base8M"},
        seed=0,
        learning_rate=1e-3,
        steps=[1, 2],
        scratch="scratch",
        runtime={"device": "cpu", "deterministic": False},
    )
    return SimpleNamespace(
        rule=rule,
        params=params,
        input=SimpleNamespace(data=str(world / "all"), tokenizer=str(world / "tok.model"), init="init"),
        output=SimpleNamespace(model="model", metrics="metrics.json", checkpoints=["c1", "c2"]),
        threads=1,
    )


def test_the_entry_script_pretrains_and_finetunes_on_disjoint_shards(world, monkeypatch):
    """train_story_model.py's pretraining and deletion/recovery jobs, with the demo and the
    tiny config's pretrain_fraction: the shards (and stories) they train on do not overlap."""
    script = load_entry_script("train_story_model")
    calls = {}

    def capture(**kwargs):
        calls[current] = kwargs
        return {
            k: 0 for k in ("global_step", "train_loss", "final_eval", "resumed_from_step", "tokens_per_second", "mfu")
        }

    monkeypatch.setattr(script, "train_story_model", capture)
    monkeypatch.setattr(script, "job_for", lambda *_a, **_k: contextlib.nullcontext({}))
    settings = {"block_size": 32, "align_to_bos": False, "compile": False}
    for config in ("config/config.yaml", "tests/config/tiny.yaml"):
        fraction = yaml.safe_load((REPO / config).read_text())["studies"]["tinystories"]["pretrain_fraction"]
        streams = {}
        for current in ("pretrain_story_model", "delete_feature", "recover_feature"):
            script.main(fake_job(current, world, {**settings, "pretrain_fraction": fraction}))
            call = calls[current]
            streams[current] = split_files(bin_files(call["train_dir"]), call["split"], call["pretrain_fraction"])
        pretrain = set(streams.pop("pretrain_story_model"))
        seen_in_pretraining = stream_text(world, sorted(pretrain))
        training = [r for path in shard_files(world / "shards")[1:] for r in load_shard(path) if r["story"].strip()]
        stories = [r for r in training if norm(r["story"]) in seen_in_pretraining]
        assert stories
        for rule, files in streams.items():
            assert files and not pretrain & set(files), f"{config}: {rule} trains on pretraining shards"
            assert found(stories, stream_text(world, files)) == 0, f"{config}: {rule} sees pretraining stories"
