"""The cross-study probe matrix in the tiny run: one line per (model, probe) pair with the
reason where a probe does not apply, the heatmap in the report, and a new model alias or
a new probe adds only its own cells' jobs."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from biasdrift import config as bdc
from biasdrift.matrix import workflow as mx
from tests.conftest import REPO, TINY, snakemake
from tests.test_workflow import planned_jobs

pytestmark = pytest.mark.workflow

MATRIX_RULES = {"score_matrix_cell", "summarize_matrix", "plot_matrix", "all"}


def tiny_matrix() -> dict:
    """The tiny config's matrix section as written (no defaults: Snakemake's --config turns
    numbers inside a mapping into strings)."""
    return yaml.safe_load((REPO / "tests" / "config" / "tiny.yaml").read_text())["matrix"]


def tiny_config(**matrix) -> dict:
    cfg = yaml.safe_load((REPO / "tests" / "config" / "tiny.yaml").read_text())
    cfg["matrix"] = {**tiny_matrix(), **matrix}
    return bdc.validate_config(cfg, bdc.load_schema(REPO / "config" / "schema.yaml"))


def test_the_matrix_has_every_pair_and_its_figure_is_in_the_report(tiny_run):
    work, _ = tiny_run
    cfg = tiny_config()
    rows, probes = mx.rows(cfg), mx.probes(cfg)
    table = pd.read_csv(work / "results" / "matrix" / "matrix.csv")
    assert len(table) == len(rows) * len(probes)
    assert set(zip(table["row"], table["probe"], strict=True)) == {(r, p) for r in rows for p in probes}
    na = table[~table["applicable"]]
    assert len(na) and na["reason"].notna().all() and table[table["applicable"]]["reason"].isna().all()
    # politune's probe needs a chat template: only politune's rows have one
    leaning = table[table["probe"] == "politune-leaning"].set_index("row")
    assert leaning["applicable"].to_dict() == {r: rows[r]["study"] == "politune" for r in rows}
    fine_tunes = table[table["base"].notna() & table["applicable"]]
    per_probe = fine_tunes.groupby("probe")["row"].nunique()
    assert (per_probe >= 4).sum() >= 3, per_probe.to_dict()
    assert fine_tunes["change"].notna().all() and (fine_tunes["change_low"] <= fine_tunes["change_high"]).all()
    cell = json.loads((work / "results" / "matrix" / "circuits-gpt2.positive" / "circuits-sentiment.json").read_text())
    assert cell["applicable"] and len(cell["values"]) == cell["n_items"]
    html = (work / "results" / "report.html").read_text(errors="replace")
    assert "matrix.svg" in html and "every fine-tune x every bias probe" in html


def test_a_new_model_alias_runs_only_its_rows_jobs(tiny_run):
    work, env = tiny_run
    probes = mx.probes(tiny_config())
    extra = json.dumps({**tiny_matrix(), "models": ["tiny-gpt2"]})
    proc = snakemake(work, *TINY, "-n", "--cores", "1", "--config", f"matrix={extra}", env=env)
    jobs = planned_jobs(proc.stdout)
    assert {rule for rule, _ in jobs} == MATRIX_RULES, jobs
    cells = {wc for rule, wc in jobs if rule == "score_matrix_cell"}
    assert cells == {f"row=tiny-gpt2, probe={p}" for p in probes}


def test_a_new_probe_runs_only_its_column(tiny_run):
    work, env = tiny_run
    items = work / "toy_probe.tsv"
    items.write_text("prompt\tgroup\toptions_a\toptions_b\nthe man\ta\tsaid\twas\nthe woman\tb\tsaid\twas\n")
    toy = {"kind": "contrast", "items": str(items), "group_a": "men", "group_b": "women"}
    extra = json.dumps({**tiny_matrix(), "probes": {"toy": toy}})
    proc = snakemake(work, *TINY, "-n", "--cores", "1", "--config", f"matrix={extra}", env=env)
    jobs = planned_jobs(proc.stdout)
    assert {rule for rule, _ in jobs} == MATRIX_RULES, jobs
    cells = {wc for rule, wc in jobs if rule == "score_matrix_cell"}
    assert cells == {f"row={r}, probe=toy" for r in mx.rows(tiny_config())}
