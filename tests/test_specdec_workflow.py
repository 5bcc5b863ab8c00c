"""Study specdec through Snakemake: the tiny run's outputs, bad templates and unpairable
models failing before generation, and a new draft length rerunning nothing that exists."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from tests.conftest import TINY, clean_env, copy_workflow, snakemake
from tests.test_workflow import planned_jobs

pytestmark = pytest.mark.workflow

DECODE = "results/specdec/decode/{condition}/clean_binary/k2_n6.parquet"
STATS = "results/specdec/stats/clean_binary/k2_n6"


def test_tiny_run_measures_decodes_and_reports(tiny_run):
    work, _ = tiny_run
    for condition in ("base", "ft"):
        frame = pd.read_parquet(work / DECODE.format(condition=condition))
        assert len(frame) == 20 and set(frame["category"]) == {"female", "male"}
        assert frame["greedy_equal"].all(), "the own loop reproduces plain greedy decoding"
        checked = frame["hf_equal"].dropna()
        assert len(checked) == 4 and checked.all(), "counts equal transformers' assisted generate"
        assert (frame["n_accepted"] == frame["n_new"] - frame["n_rounds"]).all()
        manifest = json.loads(
            (work / DECODE.format(condition=condition).replace(".parquet", ".manifest.json")).read_text()
        )
        assert manifest["results"]["hf_mismatches"] == 0 and manifest["params"]["job"]["decode"]["k"] == 2
    disparity = pd.read_csv(work / STATS / "disparity.csv")
    assert set(disparity["level"]) == {"prompt", "identity", "pattern_paired"}
    assert set(disparity["condition"]) == {"base", "ft"} and disparity["p_holm"].between(0, 1).all()
    did = pd.read_csv(work / STATS / "did.csv")
    assert set(did["condition"]) == {"ft"} and set(did["level"]) == {"prompt", "identity"}
    curve = pd.read_csv(work / "results/specdec/kl/curve.csv")
    assert sorted(set(curve["step"])) == [0, 2, 4], "32 articles / batch 8 = 4 steps, milestones every 2"
    kl = pd.read_parquet(work / "results/specdec/kl/base.parquet")
    assert kl_by_hand(work, kl["prompt"].iloc[:3].tolist()) == pytest.approx(kl["kl_pq"].iloc[:3].tolist(), rel=1e-4)
    tox = pd.read_csv(work / "results/specdec/toxicity/clean_binary/n6/summary.csv")
    assert set(tox["source"]) == {"main", "assistant"} and tox["ci_lo"].le(tox["rate"]).all()
    report = (work / "results/report.html").read_text(errors="replace")
    figures = ("share_by_category", "disparity_forest", "kl_curve", "toxicity", "kl_vs_share", "sampling")
    for figure in figures:
        assert f"{figure}.svg" in report
    plotted = pd.read_csv(work / "results/specdec/plots/clean_binary/k2_n6/sampling.csv")
    checks = pd.read_csv(work / "results/specdec/sample/clean_binary/k2_n6/acceptance.csv").query("kind == 'check'")
    assert plotted[["condition", "category", "acceptance", "expected"]].equals(
        checks[["condition", "category", "acceptance", "expected"]].reset_index(drop=True)
    ), "the sampling figure plots the acceptance table's checks"
    for svg in (work / "results/specdec/plots").rglob("*.svg"):
        assert svg.with_suffix(".csv").is_file(), f"{svg} has no CSV beside it"
    assert not list((work / "results/specdec/finetune").glob("*/.scratch"))


def kl_by_hand(work, prompts: list[str]) -> list[float]:
    """KL(main ‖ assistant) of the next token after each prompt, from the two pretrained
    models loaded and run here one prompt at a time: Σ p (log p − log q)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    models = [
        AutoModelForCausalLM.from_pretrained(work / f"results/models/{alias}/model", local_files_only=True).eval()
        for alias in ("specdec-main", "specdec-assistant")
    ]
    tokenizer = AutoTokenizer.from_pretrained(work / "results/models/specdec-main/model", local_files_only=True)
    out = []
    for prompt in prompts:
        ids = torch.tensor([tokenizer(prompt, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            p, q = (torch.softmax(m(ids).logits[0, -1].double(), -1) for m in models)
        out.append(float((p * (p.log() - q.log())).sum()))
    return out


def test_a_new_draft_length_runs_only_its_own_jobs(tiny_run):
    work, env = tiny_run
    cfg = yaml.safe_load((work / "tests/config/tiny.yaml").read_text())
    cfg["studies"]["specdec"]["decode"]["k"] = [2, 3]
    (work / "more_k.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(work, "-n", "--cores", "2", "--configfile", "more_k.yaml", "--replace-workflow-config", env=env)
    jobs = planned_jobs(proc.stdout)
    assert sorted(rule for rule, _ in jobs) == [
        "all",
        "measure_specdec_acceptance",
        "measure_specdec_acceptance",
        "plot_specdec_disparity",
        "plot_specdec_sampling",
        "sample_specdec_acceptance",  # the tiny config samples its base condition
        "summarize_specdec_disparity",
        "summarize_specdec_sampling",
    ]
    assert all("k=3" in wc for rule, wc in jobs if rule != "all")


BAD_TEMPLATES = {
    "no_mask": ("the woman should work as a nurse.", "female", r"every template needs exactly one [M]"),
    "category": ("the robot should work as a [M].", "robots", "unknown categor(ies) ['robots']"),
}


@pytest.mark.parametrize("case", sorted(BAD_TEMPLATES))
def test_bad_templates_fail_before_any_model_is_used(case, tmp_path):
    work = copy_workflow(tmp_path / "w")
    template, category, message = BAD_TEMPLATES[case]
    tsv = work / "resources/specdec/templates_en.tsv"
    frame = pd.read_csv(tsv, sep="\t")
    frame.loc[len(frame)] = [template, "[I] x [M].", "the robot", "singular", category, "occupation"]
    frame.to_csv(tsv, sep="\t", index=False)
    target = "results/specdec/templates/templates.parquet"
    proc = snakemake(work, *TINY, "--cores", "1", target, env=clean_env(), check=False)
    assert proc.returncode != 0
    log = (work / "logs/specdec/templates/prepare_specdec_templates.log").read_text()
    assert message in log and template in log
    assert not (work / target).exists()
    assert not (work / "results/models").exists(), "no model was built or loaded"


def test_main_and_assistant_with_different_tokenizers_fail_at_parse_time(tmp_path):
    work = copy_workflow(tmp_path / "w")
    cfg = yaml.safe_load((work / "tests/config/tiny.yaml").read_text())
    cfg["tokenizers"]["other-bpe"] = {"kind": "bpe", "corpus": "specdec-world", "vocab_size": 280}
    cfg["models"]["specdec-assistant"]["build"]["tokenizer"] = "other-bpe"
    (work / "bad.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(work, "--cores", "1", "--configfile", "bad.yaml", "--replace-workflow-config", check=False)
    assert proc.returncode != 0
    assert (
        "studies.specdec.assistant: model 'specdec-assistant' uses tokenizer 'other-bpe'" in proc.stdout + proc.stderr
    )
    assert not (work / "results").exists()
