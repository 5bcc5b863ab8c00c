"""The workflow end to end, in disposable copies: dry-runs, bad configs, the tiny demo,
no-op reruns, targeted reruns and token hygiene."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from biasdrift.config import duplicate_keys
from tests.conftest import FAKE_TOKEN, TINY, add_paper_placeholders, copy_workflow, snakemake

pytestmark = pytest.mark.workflow

REPO = Path(__file__).resolve().parents[1]
PAPER = sorted((REPO / "config" / "paper").glob("*.yaml"))


def planned_jobs(dry_run_stdout: str) -> list[tuple[str, str]]:
    """(rule, wildcards) of every job a dry-run lists."""
    jobs, current = [], None
    for line in dry_run_stdout.splitlines():
        match = re.match(r"^(?:local)?rule (\w+):$", line.strip())
        if match:
            current = [match.group(1), ""]
            jobs.append(current)
        elif current and line.strip().startswith("wildcards:"):
            current[1] = line.split(":", 1)[1].strip()
    return [tuple(j) for j in jobs]


# --------------------------------------------------------------------------- dry runs
@pytest.fixture(scope="module")
def dry_copy(tmp_path_factory):
    return add_paper_placeholders(copy_workflow(tmp_path_factory.mktemp("dry")))


def test_default_config_dry_runs(dry_copy):
    proc = snakemake(dry_copy, "-n", "--cores", "1")
    rules = {rule for rule, _ in planned_jobs(proc.stdout)}
    assert {"prepare_dataset", "train_tokenizer", "pretrain_lm", "plot_pretraining", "all"} <= rules
    pretrained = {wc for rule, wc in planned_jobs(proc.stdout) if rule == "pretrain_lm"}
    assert {"model=circuits-gpt2", "model=circuits-llama", "model=d3m-bert"} <= pretrained


@pytest.mark.parametrize("config", PAPER, ids=lambda p: p.stem)
def test_paper_config_dry_runs(dry_copy, config):
    proc = snakemake(dry_copy, "-n", "--cores", "1", "--configfile", str(config), "--replace-workflow-config")
    jobs = planned_jobs(proc.stdout)
    cfg = yaml.safe_load(config.read_text())
    for alias, spec in cfg.get("models", {}).items():
        if "hf_id" in spec:
            assert ("download_model", f"model={alias}") in jobs
    for alias in cfg.get("datasets", {}):
        assert ("prepare_dataset", f"dataset={alias}") in jobs
    assert not (dry_copy / "results").exists()


def test_slurm_profile_dry_runs(dry_copy):
    proc = snakemake(dry_copy, "-n", "--profile", "profiles/slurm", *TINY)
    assert "pretrain_lm" in proc.stdout


# --------------------------------------------------------------------------- bad configs
BAD_CONFIGS = {
    "typo": (
        ("models", "tiny-gpt2", "build", "pretrain"),
        "max_stepz",
        10,
        "models.tiny-gpt2.build.pretrain.max_stepz",
    ),
    "type": (("models", "tiny-llama", "build", "size"), "layers", "two", "models.tiny-llama.build.size.layers"),
    "alias": (("models", "tiny-bert", "build"), "tokenizer", "wordpeice", "models.tiny-bert.build.tokenizer"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_bad_config_fails_before_any_job_naming_the_key(case, tmp_path):
    work = copy_workflow(tmp_path / "w")
    cfg = yaml.safe_load((work / "tests/config/tiny.yaml").read_text())
    path, key, value, named = BAD_CONFIGS[case]
    node = cfg
    for part in path:
        node[part] = dict(node[part])  # break YAML anchors: change one model only
        node = node[part]
    node[key] = value
    (work / "bad.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(work, "--cores", "1", "--configfile", "bad.yaml", "--replace-workflow-config", check=False)
    assert proc.returncode != 0
    assert named in proc.stderr + proc.stdout
    assert not (work / "results").exists() and not (work / "logs").exists(), "no job may start"


def test_duplicated_yaml_key_fails_naming_the_key_and_lines(tmp_path):
    """PyYAML keeps the last of two equal keys: the workflow must refuse instead."""
    work = copy_workflow(tmp_path / "w")
    text = (work / "tests/config/tiny.yaml").read_text()
    anchor = "      pretrain: &pretrain\n"
    assert text.count(anchor) == 1
    (work / "dup.yaml").write_text(text.replace(anchor, anchor + "        max_steps: 5\n"))
    proc = snakemake(work, "--cores", "1", "--configfile", "dup.yaml", "--replace-workflow-config", check=False)
    assert proc.returncode != 0
    assert re.search(
        r"dup.yaml: models.tiny-gpt2.build.pretrain.max_steps \(lines \d+ and \d+\): duplicated key", proc.stderr
    )
    assert not (work / "results").exists() and not (work / "logs").exists(), "no job may start"


def test_merge_key_overridden_by_an_explicit_key_is_not_a_duplicate(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("a: &base {x: 1, y: 2}\nb:\n  <<: *base\n  x: 3\nc: {x: 1, x: 2}\n")
    assert duplicate_keys(path) == ["c.x (lines 5 and 5)"]


# --------------------------------------------------------------------------- the tiny demo
def test_tiny_demo_builds_and_pretrains_every_architecture(tiny_run):
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

    work, _ = tiny_run
    for alias, auto in (
        ("tiny-gpt2", AutoModelForCausalLM),
        ("tiny-llama", AutoModelForCausalLM),
        ("tiny-bert", AutoModelForMaskedLM),
    ):
        model_dir = work / "results/models" / alias / "model"
        assert (model_dir / "model.safetensors").is_file() and (model_dir / "tokenizer.json").is_file()
        model = auto.from_pretrained(model_dir, local_files_only=True)
        assert model.config.num_hidden_layers == 2
        manifest = yaml.safe_load((work / "results/models" / alias / "manifest.json").read_text())
        assert manifest["seed"] == 0 and manifest["params"]["job"]["arch"] in alias
        assert manifest["packages"]["torch"]
        assert not (work / "results/models" / alias / ".scratch").exists()
    svg = (work / "results/models/plots/pretrain_loss.svg").read_text()
    assert "<svg" in svg
    csv = (work / "results/models/plots/pretrain_loss.csv").read_text().splitlines()
    assert csv[0] == "model,step,split,loss" and len(csv) > 10
    report = (work / "results/report.html").read_text(errors="replace")
    assert "pretrain_loss.svg" in report


def test_second_run_does_nothing(tiny_run):
    work, env = tiny_run
    proc = snakemake(work, *TINY, "--cores", "2", env=env)
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_changing_one_param_reruns_only_its_dependents(tiny_run):
    work, env = tiny_run
    cfg = yaml.safe_load((work / "tests/config/tiny.yaml").read_text())
    bert = cfg["models"]["tiny-bert"]["build"]
    bert["pretrain"] = {**bert["pretrain"], "learning_rate": 1.0e-3}
    (work / "changed.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(work, "-n", "--cores", "2", "--configfile", "changed.yaml", "--replace-workflow-config", env=env)
    assert sorted(planned_jobs(proc.stdout)) == [
        ("all", ""),
        ("plot_pretraining", ""),
        ("pretrain_lm", "model=tiny-bert"),
    ]


def test_changing_one_study_param_reruns_only_that_studys_jobs(tiny_run):
    work, env = tiny_run
    cfg = yaml.safe_load((work / "tests/config/tiny.yaml").read_text())
    stats = cfg["studies"]["specdec"]["stats"]
    stats["n_boot"] += 1
    (work / "changed.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(work, "-n", "--cores", "2", "--configfile", "changed.yaml", "--replace-workflow-config", env=env)
    planned = {rule for rule, _ in planned_jobs(proc.stdout)} - {"all"}
    assert planned, "changing studies.specdec.stats.n_boot reran nothing"
    assert all("specdec" in rule for rule in planned), planned


def test_hf_token_appears_in_no_log_manifest_or_output(tiny_run):
    work, _ = tiny_run
    needle = FAKE_TOKEN.encode()
    scanned, leaks = 0, []
    for top in ("results", "logs", "benchmarks", ".snakemake"):
        for path in (work / top).rglob("*"):
            if path.is_file():
                scanned += 1
                if needle in path.read_bytes():
                    leaks.append(str(path.relative_to(work)))
    assert scanned > 20
    assert not leaks, f"HF_TOKEN leaked into: {leaks}"


# A SIGKILLed run resuming its training job to the same weights (and a broken resume
# failing that check): tests/test_slurm.py::test_a_killed_local_run_reruns_only_its_incomplete_jobs
# (it needs no cluster and runs everywhere).
