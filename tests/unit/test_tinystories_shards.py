"""Which shard each stage of the tinystories study reads: evaluation prompts come from no
training shard, and the entry script pretrains and fine-tunes on disjoint shards. Checked on
content, not on file names: the training streams are decoded back to text and searched for
the stories in question."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from biasdrift.config import config_from_dict, load_schema, validate_config
from biasdrift.tinystories import evaluation, jobs, training
from biasdrift.tinystories import workflow as ts_workflow
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


def stage_job(config: dict, rule: str, **wildcards):
    """The job of stage ``rule`` as snakejob.run builds it: the glue's params, strictly
    converted to the stage's dataclass."""
    from snakejob import stage_job_class

    fn = getattr(jobs, rule)
    params = getattr(ts_workflow, rule)(config, SimpleNamespace(**wildcards))
    return fn, config_from_dict(stage_job_class(fn), params, f"rule {rule}")


def test_the_training_stages_pretrain_and_finetune_on_disjoint_shards(world, monkeypatch):
    """The three training stages, built from the demo and the tiny config by the real glue:
    the shards (and stories) pretraining and deletion/recovery train on do not overlap."""
    calls = {}

    def capture(**kwargs):
        calls[current] = kwargs
        return dict.fromkeys(jobs.TRAINING_KEYS, 0)

    monkeypatch.setattr(training, "train_story_model", capture)
    schema = load_schema(REPO / "config" / "schema.yaml")
    files = {"data": str(world / "all"), "tokenizer": str(world / "tok.model"), "metrics": "m.json", "threads": 1}
    stages = {
        "pretrain_story_model": ({"base": "all"}, {"model": "model"}),
        "delete_feature": ({"protocol": "p", "lr": "0.001", "seed": "0"}, {"init": "init", "model": "model"}),
        "recover_feature": ({"source": "control", "seed": "0"}, {"init": "init"}),
    }
    for path in ("config/config.yaml", "tests/config/tiny.yaml"):
        config = validate_config(yaml.safe_load((REPO / path).read_text()), schema)
        streams = {}
        for current, (wildcards, outputs) in stages.items():
            fn, job = stage_job(config, current, **wildcards)
            if current == "recover_feature":
                outputs["checkpoints"] = [f"c{step}" for step in job.steps]
            fn(job, **files, **outputs)
            call = calls[current]
            assert call["pretrain_fraction"] == config["studies"]["tinystories"]["pretrain_fraction"] > 0
            streams[current] = split_files(bin_files(call["train_dir"]), call["split"], call["pretrain_fraction"])
        pretrain = set(streams.pop("pretrain_story_model"))
        seen_in_pretraining = stream_text(world, sorted(pretrain))
        training_stories = [
            r for shard in shard_files(world / "shards")[1:] for r in load_shard(shard) if r["story"].strip()
        ]
        stories = [r for r in training_stories if norm(r["story"]) in seen_in_pretraining]
        assert stories
        for rule, files_ in streams.items():
            assert files_ and not pretrain & set(files_), f"{path}: {rule} trains on pretraining shards"
            assert found(stories, stream_text(world, files_)) == 0, f"{path}: {rule} sees pretraining stories"
