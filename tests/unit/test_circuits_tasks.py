"""Your own circuits task: prompt pairs from a TSV and the logit-difference metric, through
EAP, the greedy circuit and the faithfulness curve. A tiny GPT-2 and a BPE tokenizer
trained here (no downloads)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from biasdrift.circuits import eap, jobs, tasks
from biasdrift.circuits.tasks import TaskError, read_task
from biasdrift.config import from_schema
from biasdrift.runtime import Runtime

NEG = ["Zorbian", "Quellish", "Marovian", "Tessaric"]
POS = ["Lumarian", "Pellish", "Andarin", "Soravian"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    from transformers import AutoTokenizer

    from biasdrift.models import ModelSize, build_model
    from biasdrift.tokenization import TokenizerConfig, train_tokenizer

    root = tmp_path_factory.mktemp("task-model")
    corpus = [f"{n} people are so {w}" for n in NEG for w in ("lazy", "rude")]
    corpus += [f"{n} people are so {w}" for n in POS for w in ("kind", "honest")]
    train_tokenizer(corpus * 20, from_schema(TokenizerConfig, kind="bpe", vocab_size=400), root)
    torch.manual_seed(0)
    size = from_schema(ModelSize, layers=2, heads=2, hidden=32, context=32, dropout=0.0)
    build_model("gpt2", size, AutoTokenizer.from_pretrained(root)).save_pretrained(root)
    return root


def write_task(path, rows, header=("clean", "corrupted", "answer", "distractor")):
    lines = ["\t".join(header), *("\t".join(r) for r in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def task_rows():
    return [(f"{n} people are so", f"{p} people are so", " lazy", " kind") for n, p in zip(NEG, POS, strict=True)]


def run(tmp_path, model_dir, task_tsv, **eap):
    ref = {"alias": "m", "source": "path", "path": str(model_dir)}
    names = ("scores", "top_edges", "faithfulness", "results_json")
    outputs = {k: str(tmp_path / f"{k}.out") for k in names}
    job = jobs.DiscoverTaskCircuitJob(
        model=ref,
        task_name="mine",
        eap=from_schema(jobs.EAPConfig, batch_size=3, n_edges=8, **eap),
        sizes=[2, 8, 10_000],
        runtime=Runtime(device="cpu", deterministic=False),
        seed=0,
    )
    result = jobs.discover_task_circuit(job, model=[], task=str(task_tsv), threads=1, **outputs)
    return result, outputs, ref


def test_the_task_metric_is_the_logit_difference_of_each_rows_own_tokens(tmp_path, model_dir):
    """The baseline equals the logit difference computed here by running the model on every
    clean prompt; the full graph is the clean run, the circuit of every edge is faithful."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    rows = [*task_rows(), ("Andarin people are so", "Quellish people are so", " kind", " lazy")]
    path = write_task(tmp_path / "task.tsv", rows)
    result, outputs, _ = run(tmp_path, model_dir, path)
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    direct = []
    for clean, _, answer, distractor in rows:
        ids = torch.tensor([eap.encode_prompt(tokenizer, clean)])
        with torch.no_grad():
            logits = model(ids).logits[0, -1]
        a, d = (tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in (answer, distractor))
        direct.append(float(logits[a] - logits[d]))
    assert result["baseline"] == pytest.approx(np.mean(direct), abs=1e-5)
    assert result["full_graph"] == pytest.approx(result["baseline"], abs=1e-5)
    assert abs(result["baseline"] - result["corrupted"]) > 1e-4
    curve = pd.read_csv(outputs["faithfulness"])
    assert curve.edges.tolist()[:2] == [2, 8] and curve.faithfulness.iloc[-1] == pytest.approx(1.0, abs=1e-5)
    scores = pd.read_parquet(outputs["scores"])
    assert scores["score"].abs().max() > 0
    saved = json.loads((tmp_path / "results_json.out").read_text())
    assert saved["meta"]["metric"] == "logit_diff" and saved["meta"]["examples"] == len(rows)


def test_eap_ig_runs_on_a_task(tmp_path, model_dir):
    path = write_task(tmp_path / "task.tsv", task_rows())
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    plain, out_a, _ = run(tmp_path / "a", model_dir, path)
    ig, out_b, _ = run(tmp_path / "b", model_dir, path, method="eap-ig", ig_steps=3)
    a, b = pd.read_parquet(out_a["scores"]), pd.read_parquet(out_b["scores"])
    assert plain["baseline"] == pytest.approx(ig["baseline"]) and not np.allclose(a["score"], b["score"])


@pytest.mark.parametrize(
    ("rows", "header", "message"),
    [
        ([("A people are so", "B people are so", " lazy")], ("clean", "corrupted", "answer"), "lacks column"),
        ([], ("clean", "corrupted", "answer", "distractor"), "has no rows"),
        ([("Zorbian people are so", "", " lazy", " kind")], None, "row 2: empty 'corrupted'"),
        (
            [("Zorbian people are so", "Pellish people are so", " lazy rude", " kind")],
            None,
            r"row 2 answer ' lazy rude' is \d+ tokens",
        ),
    ],
)
def test_bad_task_files_fail_before_the_weights_load(tmp_path, model_dir, monkeypatch, rows, header, message):
    def no_weights(*_args, **_kwargs):
        pytest.fail("the model was loaded before the task file was checked")

    monkeypatch.setattr(jobs, "load_session", no_weights)
    path = write_task(tmp_path / "bad.tsv", rows, header or ("clean", "corrupted", "answer", "distractor"))
    with pytest.raises(TaskError, match=message):
        run(tmp_path, model_dir, path)


def test_a_missing_task_file_is_named(tmp_path):
    with pytest.raises(TaskError, match="does not exist"):
        read_task(tmp_path / "nope.tsv", "here")


def test_logit_diff_reads_each_examples_tokens_by_batch_index():
    metric = tasks.LogitDiff([1, 2, 3], [0, 0, 1])
    logits = torch.arange(8.0).repeat(2, 1)
    ids = torch.zeros((2, 1), dtype=torch.long)
    batch = eap.PairBatch(ids, ids, ids, ids, torch.tensor([2, 0]))
    torch.testing.assert_close(metric(logits, batch), torch.tensor([3.0 - 1.0, 1.0 - 0.0]))
